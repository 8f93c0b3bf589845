"""Refuse to write, resume from or evaluate a checkpoint whose weights hold NaN or Inf."""

import os.path as osp

from mmengine.hooks import Hook

from mmmst.registry import HOOKS
from mmmst.runtime.non_finite import NonFiniteError, first_non_finite


@HOOKS.register_module()
class FiniteCheckpointHook(Hook):
    """Before any checkpoint is written, check every model tensor (student, teacher, centre) is finite.

    A run whose weights went non-finite without a non-finite loss (the last step of an epoch, say) would otherwise
    save them, and with ``max_keep_ckpts`` rotate the good checkpoints out. Raises :class:`NonFiniteError` naming
    the tensor; nothing is written and the earlier checkpoints stay. A checkpoint loaded by the Runner (resume,
    ``load_from``, ``tools/test.py``) is checked the same way.
    """

    priority = 'VERY_HIGH'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = first_non_finite(checkpoint.get('state_dict', {}))
        if bad is not None:
            # `last_checkpoint` is written only once a save has completed
            record = osp.join(runner.work_dir, 'last_checkpoint')
            last = osp.join(runner.work_dir, open(record).read().strip()) if osp.isfile(record) else 'none'
            raise NonFiniteError(
                f'refusing to write a checkpoint at epoch {runner.epoch}, iteration {runner.iter}: {bad} holds '
                f'NaN or Inf (last good checkpoint: {last})'
            )

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = first_non_finite(checkpoint.get('state_dict', {}))
        if bad is not None:
            raise NonFiniteError(f'the loaded checkpoint holds NaN or Inf in {bad}; resume from an earlier one')
