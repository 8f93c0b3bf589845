"""mmengine's CheckpointHook with checkpoints that survive a kill at any moment."""

import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from mmmst.registry import HOOKS


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose files are always complete, and never lost to a kill.

    mmengine 0.10.7 deletes the oldest checkpoint *before* writing the new one, writes in place, then updates
    ``last_checkpoint``: a kill during the write leaves a half-written file and, with ``max_keep_ckpts=1``, nothing
    to resume from. Here, on a local disk:

    1. the checkpoint is written to ``<name>.partial`` and renamed to ``<name>`` (``os.replace``: atomic), so a
       file named ``epoch_N.pth`` is always complete;
    2. only then is the oldest checkpoint rotated out;
    3. ``last_checkpoint`` is replaced last, in the same way.

    A kill at any point leaves ``last_checkpoint`` naming a complete checkpoint. Other storage backends keep
    mmengine's behaviour.
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        # the bookkeeping mmengine does first (it is saved in the checkpoint, for resume) ...
        rotated_out = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                rotated_out = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        # ... but the file is complete before it gets its name, and before anything is deleted
        runner.save_checkpoint(
            self.out_dir,
            filename + '.partial',
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args,
        )
        if not is_main_process():
            return
        os.replace(self.last_ckpt + '.partial', self.last_ckpt)
        if rotated_out is not None:
            old = osp.join(self.out_dir, self.filename_tmpl.format(rotated_out))
            if osp.isfile(old):
                os.remove(old)
        record = osp.join(runner.work_dir, 'last_checkpoint')
        with open(record + '.partial', 'w') as f:
            f.write(self.last_ckpt)
        os.replace(record + '.partial', record)
