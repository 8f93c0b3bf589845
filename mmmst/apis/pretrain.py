"""A small pretraining on a CPU, then its k-NN evaluation: a config shortened to a budget, one Runner, the teacher
beside the same network untrained and raw pixels.

The driver of ``tools/demo.py`` (``make demo``) and of the small-scale experiments beside the library
(``projects/small_scale_lab``). The config needs ``knn_bank_dataloader`` and ``knn_query_dataloader`` next to
``train_dataloader`` (the Fashion-MNIST configs have them).
"""

from typing import Dict, Optional

import torch
from mmengine.config import Config


def budgeted_cfg(
    config: str,
    work_dir: str,
    data_root: str,
    train_size: int,
    bank_size: int,
    query_size: int,
    max_epochs: Optional[int] = None,
) -> Config:
    """The config with data paths and subset sizes set, and (``max_epochs``) its training length changed.

    Schedules follow the new length: one that ran to the end of training still does (its cosine is stretched or
    shrunk), a warm-up keeps its length (cut where the new run is shorter).
    """
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    for loader in ('train_dataloader', 'knn_bank_dataloader', 'knn_query_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg.train_dataloader.dataset.indices = train_size
    cfg.knn_bank_dataloader.dataset.indices = bank_size
    cfg.knn_query_dataloader.dataset.indices = query_size
    if max_epochs is not None:
        old_epochs = cfg.train_cfg.max_epochs
        cfg.train_cfg.max_epochs = max_epochs
        cfg.default_hooks.checkpoint.interval = max_epochs
        for scheduler in cfg.param_scheduler:
            end = scheduler.get('end', old_epochs)
            scheduler.end = max_epochs if end >= old_epochs else min(end, max_epochs)
            scheduler.begin = min(scheduler.get('begin', 0), max(max_epochs - 1, 0))
            if 'T_max' in scheduler:
                scheduler.T_max = scheduler.end - scheduler.begin
    return cfg


@torch.no_grad()
def knn_top1_on_loaders(
    encode, preprocessor_model, cfg: Config, num_classes: int = 10, log=print, name: str = 'features'
) -> float:
    """k-NN top-1 (percent) of ``encode`` with the config's ``knn_bank_dataloader`` / ``knn_query_dataloader``.

    Images pass through ``preprocessor_model.data_preprocessor`` (normalisation) before ``encode``.
    """
    from mmengine.runner import Runner

    from mmmst.evaluation import knn_evaluate

    bank_loader, query_loader = (
        Runner.build_dataloader(cfg[n], seed=0) for n in ('knn_bank_dataloader', 'knn_query_dataloader')
    )
    log(f'k-NN of the {name}: {len(bank_loader.dataset)} bank and {len(query_loader.dataset)} query images')
    top1 = knn_evaluate(encode, preprocessor_model, bank_loader, query_loader, num_classes)
    print(flush=True)
    return top1


def epoch_progress_hook(log=print):
    """A hook printing one line per training epoch: the epoch, its mean loss, and the training time left."""
    import time

    from mmengine.hooks import Hook

    class EpochProgress(Hook):
        priority = 'LOWEST'

        def before_train(self, runner):
            self.start, self.start_epoch = time.time(), runner.epoch

        def after_train_epoch(self, runner):
            epoch = runner.epoch + 1  # mmengine counts the epoch up after this hook
            per_epoch = (time.time() - self.start) / max(epoch - self.start_epoch, 1)
            left = per_epoch * (runner.max_epochs - epoch)
            losses = runner.message_hub.get_scalar('train/loss')
            log(
                f'epoch {epoch}/{runner.max_epochs} done: loss {losses.mean(len(runner.train_dataloader)):.3f}, '
                f'{per_epoch:.0f} s per epoch, training ETA {left / 60:.1f} min (then the k-NN)'
            )

    return EpochProgress()


def pretrain_and_evaluate(
    cfg: Config, baselines: bool = True, log=print, after_training=None, quiet: bool = False
) -> Dict[str, float]:
    """Pretrain with a Runner, then k-NN top-1 of the teacher, and (``baselines``) of the same network randomly
    initialised (the weights of ``cfg.load_from`` where the run started from those) and of raw pixels. Returns the
    metrics, in percent, plus the iteration count, the k-NN curve ``knn_top1_per_epoch`` when the config has a
    ``KNNMonitorHook``, and whatever ``after_training(trained_model, cfg)`` returns. ``quiet``: the terminal shows
    errors and ``log``'s lines only (one per epoch), the log file keeps everything."""
    import logging

    from mmengine.runner import Runner, load_checkpoint

    from mmmst.apis import init_model

    if quiet:
        cfg.log_level = 'ERROR'  # the config dump and the environment stay out of the terminal
    runner = Runner.from_cfg(cfg)
    if quiet:
        runner.logger.setLevel(logging.INFO)
        for handler in runner.logger.handlers:
            # the training log still goes to the log file (the config is saved beside it)
            handler.setLevel(logging.INFO if isinstance(handler, logging.FileHandler) else logging.ERROR)
    runner.register_hook(epoch_progress_hook(log))
    runner.train()
    model = runner.model.eval()
    metrics = dict(iterations=runner.iter)
    if 'train/knn_top1' in runner.message_hub.log_scalars:  # written by KNNMonitorHook
        metrics['knn_top1_per_epoch'] = runner.message_hub.get_scalar('train/knn_top1').data[0].tolist()
    metrics['knn_top1_mst'] = knn_top1_on_loaders(model.extract_feat, model, cfg, log=log, name='MST teacher')
    if after_training is not None:
        metrics.update(after_training(model, cfg))
    if baselines:
        # the same network, randomly initialised, never trained; on the trained one's device (a GPU run)
        initial = init_model(cfg, seed=cfg.get('randomness', {}).get('seed') or 0)
        if cfg.get('load_from'):  # the run started from these weights, not from its own draw
            load_checkpoint(initial, cfg.load_from, map_location='cpu', strict=False, logger='silent')
        initial.to(next(model.parameters()).device)
        metrics['knn_top1_random_init'] = knn_top1_on_loaders(
            initial.extract_feat, model, cfg, log=log, name='untrained network'
        )
        metrics['knn_top1_raw_pixels'] = knn_top1_on_loaders(
            lambda x: x.flatten(1), model, cfg, log=log, name='raw pixels'
        )
    return metrics
