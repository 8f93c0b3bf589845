"""k-NN monitor: every ``interval`` epochs, k-NN top-1 of the teacher features on a small labelled set."""

from typing import Optional

import torch
from mmengine.dist import broadcast_object_list, collect_results, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmst.evaluation import knn_top1, loader_features
from mmmst.registry import HOOKS


def _gather(feats, labels, size):
    rows = collect_results(list(zip(feats, labels)), size, device='cpu')
    if rows is None:  # not rank 0
        return None, None
    return torch.stack([f for f, _ in rows]), torch.stack([lab for _, lab in rows])


@HOOKS.register_module()
class KNNMonitorHook(Hook):
    """Logs ``knn_top1`` (percent) like any metric: in the log, ``vis_data/scalars.json`` and TensorBoard.

    The teacher backbone (``model.extract_feat``) encodes ``bank_dataloader`` (labelled) and
    ``query_dataloader``; each query is classified by DINO's weighted k-NN (``k`` neighbours, ``temperature``).

    Args:
        bank_dataloader (dict): labelled dataloader config of the feature bank.
        query_dataloader (dict): labelled dataloader config of the evaluated images.
        num_classes (int): number of classes.
        interval (int): epochs between evaluations. Defaults to 1.
        k (int): neighbours. Defaults to 20 (DINO).
        temperature (float): vote temperature. Defaults to 0.07 (DINO).
        at_start (bool): also evaluate before the first iteration (step 0) of a run that starts, not resumes:
            with a backbone to continue from, the curve then starts at what it knew. Defaults to False.
    """

    priority = 'LOW'

    def __init__(
        self,
        bank_dataloader: dict,
        query_dataloader: dict,
        num_classes: int,
        interval: int = 1,
        k: int = 20,
        temperature: float = 0.07,
        at_start: bool = False,
    ):
        if interval < 1:
            raise ValueError(f'KNNMonitorHook: interval must be >= 1, got {interval}')
        if k < 1:
            raise ValueError(f'KNNMonitorHook: k must be >= 1, got {k}')
        if not temperature > 0:
            raise ValueError(f'KNNMonitorHook: temperature must be > 0, got {temperature}')
        self.bank_cfg = bank_dataloader
        self.query_cfg = query_dataloader
        self.num_classes = num_classes
        self.interval = interval
        self.k = k
        self.temperature = temperature
        self.at_start = at_start
        self._loaders: Optional[tuple] = None

    def evaluate(self, runner) -> float:
        from mmengine.runner import Runner

        if self._loaders is None:
            seed = runner.seed
            self._loaders = (
                Runner.build_dataloader(self.bank_cfg, seed=seed),
                Runner.build_dataloader(self.query_cfg, seed=seed),
            )
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        was_training = model.training
        model.eval()
        feats = [loader_features(model.extract_feat, model, loader, progress=False) for loader in self._loaders]
        model.train(was_training)
        if get_world_size() > 1:
            # each rank encoded its shard: gather all samples in dataset order on rank 0
            feats = [_gather(f, lab, len(loader.dataset)) for (f, lab), loader in zip(feats, self._loaders)]
        top1 = [None]
        if get_rank() == 0:
            (bank, bank_labels), (query, query_labels) = feats
            top1 = [knn_top1(bank, bank_labels, query, query_labels, self.num_classes, self.k, self.temperature)]
        broadcast_object_list(top1)
        return top1[0]

    def before_train(self, runner) -> None:
        if self.at_start and runner.iter == 0:
            self._log(runner, self.evaluate(runner), 'Before training')

    def after_train_epoch(self, runner) -> None:
        if not self.every_n_epochs(runner, self.interval) and not self.is_last_train_epoch(runner):
            return
        # after_train_epoch runs before the loop counts the epoch: runner.epoch is the 0-based index of the finished one
        self._log(runner, self.evaluate(runner), f'Epoch {runner.epoch + 1}')

    def _log(self, runner, top1: float, when: str) -> None:
        runner.logger.info(f'{when}: k-NN top-1 (teacher, k={self.k}) = {top1:.2f}')
        runner.message_hub.update_scalar('train/knn_top1', top1)
        runner.visualizer.add_scalars(dict(knn_top1=top1), step=runner.iter)
