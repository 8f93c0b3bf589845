"""After each training epoch, how many unreadable images the loaders skipped (``LoadImageWithPath``)."""

from mmengine.hooks import Hook

from mmmst.registry import HOOKS


def _skipping_loaders(dataset):
    """The ``LoadImageWithPath(skip_unreadable=True)`` transforms of a dataset (and of the datasets it wraps)."""
    from mmmst.datasets.transforms.loading import LoadImageWithPath

    for inner in [dataset, *getattr(dataset, 'datasets', []), getattr(dataset, 'dataset', None)]:
        pipeline = getattr(inner, 'pipeline', None)
        for transform in getattr(pipeline, 'transforms', []):
            if isinstance(transform, LoadImageWithPath) and transform.skipped_everywhere is not None:
                yield transform


@HOOKS.register_module()
class SkippedImagesHook(Hook):
    """Logs one line per epoch when the training loader skips unreadable images: how many in this epoch and since
    the start of this run, summed over the dataloader workers. Silent when nothing was skipped or nothing may be.
    """

    priority = 'LOW'

    def before_train(self, runner) -> None:
        self._reported = 0

    def after_train_epoch(self, runner) -> None:
        total = sum(t.skipped_everywhere.value for t in _skipping_loaders(runner.train_dataloader.dataset))
        if total > self._reported:
            runner.logger.warning(
                f'epoch {runner.epoch + 1}: {total - self._reported} unreadable images skipped '
                f'({total} since this run started; each named above)'
            )
        self._reported = total
