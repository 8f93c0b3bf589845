"""mmengine's CheckpointHook with checkpoints that survive a kill at any moment and resume the same run."""

import difflib
import inspect
import os
import os.path as osp
import time

from mmengine.dist import get_rank, get_world_size, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from mmmst.registry import HOOKS
from mmmst.runtime.preemption import Preempted, StopRequest, release_early_stop_signals
from mmmst.runtime.random_states import gather_random_states, set_random_states
from mmmst.runtime.resumable_loop import ResumableEpochBasedTrainLoop, ResumeError


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

    **Iteration checkpoints and signals** (with ``train_cfg=dict(type='ResumableEpochBasedTrainLoop', ...)``):

    * ``iter_interval=N`` (default -1: off) also writes ``iter_<i>.pth`` every N iterations, inside epochs, the
      last ``max_keep_iter_ckpts`` (default 2) of those this hook wrote kept (with ``by_epoch=False``, mmengine
      writes its own ``iter_<i>.pth`` every ``interval`` iterations: ``iter_interval`` is refused there, and a
      signal's checkpoint deletes none of mmengine's). They hold, besides the model, teacher, optimizer, schedulers
      and centre, the data's position (the epoch, the batches each process has trained on, the sampler's seed)
      and every dataloader worker's random states, so a resume continues the epoch tensor for tensor.
    * ``save_on_signal=True`` (default): SIGTERM or SIGUSR1 (a preemption, slurm's ``--signal``) lets the current
      iteration finish on every process, writes ``iter_<i>.pth``, waits on every process until the file and
      ``last_checkpoint`` are complete, logs one line naming it and stops the run with
      :class:`~mmmst.runtime.preemption.Preempted` (``tools/train.py`` exits with code 75).

    Each save logs the seconds it took to write.
    """

    def __init__(
        self, *args, iter_interval: int = -1, max_keep_iter_ckpts: int = 2, save_on_signal: bool = True, **kwargs
    ):
        # every option Runner.save_checkpoint takes is already one of CheckpointHook's (mmengine 0.10.7)
        known = set(inspect.signature(CheckpointHook.__init__).parameters) - {'self', 'kwargs'}
        known |= {'iter_interval', 'max_keep_iter_ckpts', 'save_on_signal'}
        for key in kwargs:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f' (known: {", ".join(sorted(known))})'
                raise TypeError(f'{type(self).__name__}: unknown option {key!r}{hint}')
        if not isinstance(iter_interval, int) or iter_interval == 0 or iter_interval < -1:
            raise ValueError(
                f'{type(self).__name__}: iter_interval={iter_interval!r}; give a positive number of '
                'iterations, or -1 for no iteration checkpoints'
            )
        if not isinstance(max_keep_iter_ckpts, int) or max_keep_iter_ckpts < 1:
            raise ValueError(f'{type(self).__name__}: max_keep_iter_ckpts={max_keep_iter_ckpts!r}; keep at least 1')
        super().__init__(*args, **kwargs)
        if iter_interval > 0 and not self.by_epoch:
            raise ValueError(
                f'{type(self).__name__}: iter_interval={iter_interval} with by_epoch=False: the hook already writes '
                f'iter_<i>.pth every interval={self.interval} iterations; set interval instead (and iter_interval=-1)'
            )
        self.iter_interval, self.max_keep_iter_ckpts, self.save_on_signal = (
            iter_interval,
            max_keep_iter_ckpts,
            save_on_signal,
        )
        self._stop = None

    def before_train(self, runner) -> None:
        super().before_train(runner)
        states, self._random_states_to_restore = getattr(self, '_random_states_to_restore', None), None
        if states is not None:  # (the last hook before the first iteration: nothing draws in between)
            set_random_states(states)
        # a save interrupted by a kill or a full disk leaves `<name>.partial`: never a checkpoint, only space
        if is_main_process() and isinstance(self.file_backend, LocalBackend) and osp.isdir(self.out_dir):
            for name in sorted(os.listdir(self.out_dir)):
                if name.endswith('.partial'):
                    os.remove(osp.join(self.out_dir, name))
                    runner.logger.warning(f'removed {osp.join(self.out_dir, name)}, left by an interrupted save')
        self.check_loop(type(runner.train_loop))
        # the iteration checkpoints this hook wrote (a resume restores the list), the only ones it rotates out
        self.iter_ckpt_ids = list(runner.message_hub.get_info('iter_ckpt_ids', []))
        if self.save_on_signal and isinstance(runner.train_loop, ResumableEpochBasedTrainLoop):
            self._stop = StopRequest()
            self._stop.install()
        else:
            release_early_stop_signals()

    def check_loop(self, loop_type: type) -> None:
        """Iteration checkpoints need a loop that can continue an epoch from one; ValueError otherwise."""
        if self.iter_interval > 0 and not issubclass(loop_type, ResumableEpochBasedTrainLoop):
            raise ValueError(
                f'{type(self).__name__}: iter_interval={self.iter_interval} needs a loop that can resume inside an '
                f"epoch: train_cfg=dict(type='ResumableEpochBasedTrainLoop', ...), not {loop_type.__name__}"
            )

    def after_train(self, runner) -> None:
        super().after_train(runner)
        if self._stop is not None:
            self._stop.uninstall()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        stop = self._stop is not None and self._stop.agreed()  # every rank, every iteration
        due = self.iter_interval > 0 and (runner.iter + 1) % self.iter_interval == 0
        if due and not stop and batch_idx + 1 == len(runner.train_loop.dataloader):
            # the epoch's checkpoint, written right after, has it all
            due = not (
                self.every_n_epochs(runner, self.interval, self.save_begin)
                or (self.save_last and self.is_last_train_epoch(runner))
            )
        if not (stop or due):
            return
        path = self._save_iteration_checkpoint(runner)
        if stop:
            self._stop.wait_for_save()  # no process leaves before rank 0's files are complete
            seen = self._stop.signal_name or 'a signal on another process'
            message = (
                f'{seen}: stopped after iteration {runner.iter + 1} (epoch {runner.epoch + 1}, batch {batch_idx + 1}'
                f' of {len(runner.train_loop.dataloader)}) and saved {path}; continue with --resume'
            )
            runner.logger.warning(message)
            raise Preempted(message)

    def _save_iteration_checkpoint(self, runner) -> str:
        """Write ``iter_<i>.pth`` (atomically), then keep only the newest ``max_keep_iter_ckpts`` of them."""
        step = runner.iter + 1
        filename = f'iter_{step}.pth'
        meta = dict(epoch=runner.epoch, iter=step)
        if step not in self.iter_ckpt_ids:
            self.iter_ckpt_ids.append(step)
        keep = self.max_keep_iter_ckpts
        rotated_out, self.iter_ckpt_ids = self.iter_ckpt_ids[:-keep], self.iter_ckpt_ids[-keep:]
        runner.message_hub.update_info('iter_ckpt_ids', list(self.iter_ckpt_ids))  # saved in the checkpoint
        self._write(runner, filename, meta, by_epoch=False)
        if is_main_process():
            for old in rotated_out:  # (only once the new file is complete)
                old_path = self.file_backend.join_path(self.out_dir, f'iter_{old}.pth')
                if self.file_backend.isfile(old_path):
                    self.file_backend.remove(old_path)
        return self.file_backend.join_path(self.out_dir, filename)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            self._random_states = self._gather_states(runner)
            self._data_position = self._position(runner, epoch_complete=self.by_epoch)
            return super()._save_checkpoint_with_step(runner, step, meta)
        # the bookkeeping mmengine does first (it is saved in the checkpoint, for resume) ...
        rotated_out = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                rotated_out = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        # ... but the file is complete (and on the disk) before it gets its name, and before anything is deleted
        self._write(runner, self.filename_tmpl.format(step), meta, by_epoch=self.by_epoch)
        if is_main_process() and rotated_out is not None:
            old = osp.join(self.out_dir, self.filename_tmpl.format(rotated_out))
            if osp.isfile(old):
                os.remove(old)

    def _write(self, runner, filename: str, meta: dict, by_epoch: bool) -> None:
        """Write ``<filename>.partial``, sync it, rename it to ``filename``, then point ``last_checkpoint`` at it (on
        another storage backend: write ``filename`` through the backend)."""
        # every process, at the moment of the save (a hook drawing random numbers later would break exactness)
        self._random_states = self._gather_states(runner)
        self._data_position = self._position(runner, epoch_complete=by_epoch)
        local = isinstance(self.file_backend, LocalBackend)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        started = time.perf_counter()
        runner.save_checkpoint(
            self.out_dir,
            filename + '.partial' if local else filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=by_epoch,
            backend_args=self.backend_args,
            **self.args,
        )
        if not is_main_process():
            return
        if local:
            _durable_replace(self.last_ckpt + '.partial', self.last_ckpt)
        record = osp.join(runner.work_dir, 'last_checkpoint')
        with open(record + '.partial', 'w') as f:
            f.write(self.last_ckpt)
        _durable_replace(record + '.partial', record)
        runner.logger.info(f'wrote {self.last_ckpt} in {time.perf_counter() - started:.2f} s')

    @staticmethod
    def _gather_states(runner) -> list:
        loop = runner.train_loop
        workers = loop.worker_states if isinstance(loop, ResumableEpochBasedTrainLoop) else None
        return gather_random_states(dataloader_workers=workers)

    @staticmethod
    def _position(runner, epoch_complete: bool):
        loop = runner.train_loop
        return loop.data_position(epoch_complete) if isinstance(loop, ResumableEpochBasedTrainLoop) else None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states, self._random_states = getattr(self, '_random_states', None), None
        position, self._data_position = getattr(self, '_data_position', None), None
        if states is None and get_world_size() == 1:  # a save outside _write (best checkpoint)
            states = gather_random_states()
        if states is not None:  # (with several processes, such a save is on rank 0 only: no collective possible)
            checkpoint['random_states'] = states
        if position is not None:
            checkpoint['data_position'] = position

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:
            return  # a load_from (fine-tuning): weights only
        position = checkpoint.get('data_position')
        if position is not None and position['epoch'] != checkpoint['meta']['epoch']:
            raise ResumeError(
                f'the checkpoint says epoch {checkpoint["meta"]["epoch"]} in its meta but {position["epoch"]} in its '
                'data position: it was not written by this hook'
            )
        loop = runner.train_loop
        resumable = isinstance(loop, ResumableEpochBasedTrainLoop)
        if position is not None and position['consumed_batches'] and not resumable:
            raise ResumeError(
                f'the checkpoint was written in the middle of epoch {position["epoch"] + 1}; continuing it needs '
                f"train_cfg=dict(type='ResumableEpochBasedTrainLoop', ...), not {type(loop).__name__}"
            )
        saved = checkpoint.get('random_states')
        if saved is None:
            return  # written by a plain CheckpointHook
        if isinstance(saved, dict):  # written by an earlier mmmst on one process
            saved = [saved]
        mine = None
        if len(saved) != runner.world_size:
            runner.logger.warning(
                f'{type(self).__name__}: the checkpoint holds the random states of {len(saved)} process(es), this '
                f'run has {runner.world_size}; the resumed run is re-seeded (seed {runner.seed}), not continued exactly'
            )
        else:
            # restored in before_train: mmengine's resume re-seeds every generator after this hook when the config's
            # seed differs from the checkpoint's (another seed, or seed=None), which would undo a restore here
            mine = self._random_states_to_restore = saved[get_rank()]
        if position is not None and resumable:
            loop.resume_data_position(position, None if mine is None else mine.get('dataloader_workers'))


def _durable_replace(partial: str, path: str) -> None:
    """``os.replace(partial, path)`` that survives a power cut: the data is on the disk before the new name, and the
    new name before the caller goes on (to delete an older checkpoint, say)."""
    with open(partial, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(partial, path)
    fd = os.open(osp.dirname(path) or '.', os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
