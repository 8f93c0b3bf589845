"""mmengine's CheckpointHook with checkpoints that survive a kill at any moment and resume the same run."""

import difflib
import inspect
import os
import os.path as osp

from mmengine.dist import get_rank, get_world_size, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from mmmst.engine.random_states import gather_random_states, set_random_states
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
    mmengine's file handling.

    **Exact resume.** mmengine re-seeds a resumed run from the config's seed, so the crops, flips, blur sigmas, the
    masks (MST draws them from torch's generator) and the dataloader workers' seeds (drawn from torch's generator
    each epoch) after a resume would differ from those of the uninterrupted run. So every checkpoint also holds the
    python, numpy and torch (CPU and CUDA) generator states of every process (``checkpoint['random_states']``, a
    list indexed by rank: gathered on all processes, since mmengine writes the file and calls the save hooks on
    rank 0 only), and a resume gives each process back its own. N iterations straight then equal N / 2, a kill and
    a resume, tensor for tensor (on the CPU; cuDNN kernels may still differ on a GPU), on 1 or N processes. A resume
    on another number of processes is re-seeded by mmengine, with a warning; ``load_from`` restores nothing.

    **Checked at build time.** mmengine passes unknown keyword arguments on to ``Runner.save_checkpoint``, which
    refuses them at the first save, after a whole epoch; here a misspelt option (``intervl``, ``max_keep_ckpt``)
    is refused when the hook is built, naming the likely intended one.
    """

    def __init__(self, *args, **kwargs):
        # every option Runner.save_checkpoint takes is already one of CheckpointHook's (mmengine 0.10.7)
        known = set(inspect.signature(CheckpointHook.__init__).parameters) - {'self', 'kwargs'}
        for key in kwargs:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f' (known: {", ".join(sorted(known))})'
                raise TypeError(f'{type(self).__name__}: unknown option {key!r}{hint}')
        super().__init__(*args, **kwargs)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        # a save interrupted by a kill or a full disk leaves `<name>.partial`: never a checkpoint, only space
        if is_main_process() and isinstance(self.file_backend, LocalBackend) and osp.isdir(self.out_dir):
            for name in sorted(os.listdir(self.out_dir)):
                if name.endswith('.partial'):
                    os.remove(osp.join(self.out_dir, name))
                    runner.logger.warning(f'removed {osp.join(self.out_dir, name)}, left by an interrupted save')

    def _save_checkpoint_with_step(self, runner, step, meta):
        # every process, at the moment of the save (a hook drawing random numbers later would break exactness)
        self._random_states = gather_random_states()
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

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states, self._random_states = getattr(self, '_random_states', None), None
        if states is None and get_world_size() == 1:  # a save outside _save_checkpoint_with_step (best checkpoint)
            states = gather_random_states()
        if states is not None:  # (with several processes, such a save is on rank 0 only: no collective possible)
            checkpoint['random_states'] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('random_states')
        if saved is None or not runner._resume:
            return  # a checkpoint without them, or a load_from (fine-tuning)
        if isinstance(saved, dict):  # written by an earlier mmmst on one process
            saved = [saved]
        if len(saved) != runner.world_size:
            runner.logger.warning(
                f'{type(self).__name__}: the checkpoint holds the random states of {len(saved)} process(es), this '
                f'run has {runner.world_size}; the resumed run is re-seeded (seed {runner.seed}), not continued exactly'
            )
            return
        set_random_states(saved[get_rank()])
