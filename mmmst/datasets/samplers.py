"""A data order that can start in the middle of an epoch, for a resume inside an epoch."""

from typing import Iterator

from mmengine.dataset import DefaultSampler

from mmmst.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ResumableSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` (same arguments, same order) that can skip the samples already consumed.

    The order of epoch ``e`` is a function of ``(seed, e)`` alone (``DefaultSampler``: one ``randperm`` seeded with
    ``seed + e``, then every ``world_size``-th index from ``rank``), so a resumed run rebuilds it exactly; what it
    needs besides is how far this process had got. ``start_at(n)`` makes the next ``iter()`` yield the epoch's
    indices from the ``n``-th on (the indices ``n, n + 1, ...`` of this rank's share), once: the epoch after starts
    at 0 again. ``len()`` stays the whole epoch's, so ``len(dataloader)`` and with it ``max_iters`` and the
    iteration-based schedules do not change in a resumed epoch.

    ``ResumableEpochBasedTrainLoop`` calls ``start_at`` when it continues an epoch from an iteration checkpoint.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._start = 0

    def start_at(self, consumed: int) -> None:
        """Skip this rank's first ``consumed`` indices of the next epoch iterated (``0 <= consumed <= len(self)``)."""
        if not 0 <= consumed <= len(self):
            raise ValueError(f'{type(self).__name__}.start_at: {consumed} is outside 0..{len(self)} (one epoch)')
        self._start = consumed

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        start, self._start = self._start, 0
        return iter(indices[start:])
