"""Pretrain with an mmmst config (mmpretrain's tools/train.py interface).

python tools/train.py configs/mst/mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py
bash tools/dist_train.sh <config> <gpus> [--amp] [--resume] [--cfg-options k=v ...]
"""

import argparse
import errno
import os
import os.path as osp
import re
import sys
from typing import List, Tuple

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmmst.cli import CfgOptionsAction
from mmmst.errors import ConfigError
from mmmst.files import unreadable_file


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an mmmst model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    fresh_or_not = parser.add_mutually_exclusive_group()  # argparse refuses both in one line
    fresh_or_not.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in the work dir when none is given',
    )
    parser.add_argument(
        '--non-strict',
        action='store_true',
        help='accept a checkpoint (--resume, load_from) that does not fit the model exactly: load what fits, '
        'keep the rest as initialised',
    )
    fresh_or_not.add_argument(
        '--start-over',
        action='store_true',
        help="train from the start in a work dir that holds another run's checkpoints: its epoch_*.pth, iter_*.pth, "
        'best_*.pth and last_checkpoint are deleted first (each named), its logs and the load_from checkpoint kept; '
        'not with --resume',
    )
    parser.add_argument('--amp', action='store_true', help='enable automatic-mixed-precision training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr by the real total batch size')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override config keys, e.g. train_cfg.max_epochs=1 (mmengine rules: any key may be set, key=None '
        'clears a value); a new key that looks like a typo of an existing one gets a warning',
    )
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def last_checkpoint(work_dir: str, out_dir: str = None) -> str:
    """The checkpoint ``work_dir/last_checkpoint`` names (mmengine writes an absolute path; a relative one is read
    relative to the work dir). ``out_dir``: where the checkpoint hook writes, when not in the work dir.

    mmengine would start over silently (and overwrite ``epoch_*.pth``) when there is nothing to resume, and would
    follow the absolute path of a copied work dir back into the original: both are refused here, in one line.
    """
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        sys.exit(
            f'error: --resume: no checkpoint to resume in {work_dir} (no last_checkpoint file); '
            'give a checkpoint (--resume <file>) or start without --resume'
        )
    name = open(record).read().strip()
    path = osp.normpath(osp.join(work_dir, name))  # an absolute name stays as it is
    inside = [d for d in (work_dir, out_dir) if d and osp.realpath(path).startswith(osp.realpath(d) + os.sep)]
    if osp.isabs(name) and not inside:
        sys.exit(
            f'error: --resume: {record} names {name}, outside this work dir (a copied work dir?); give the '
            f'checkpoint to resume explicitly: --resume {osp.join(work_dir, osp.basename(name))}'
        )
    if not osp.isfile(path):
        sys.exit(
            f'error: --resume: {record} names {path}, which does not exist; give another checkpoint with '
            '--resume <file>'
        )
    return path


def merge_args(cfg, args):
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, last_checkpoint(cfg.work_dir, checkpoint_dir(cfg))
    elif args.resume is not None:
        if unreadable_file(args.resume):
            sys.exit(f'error: --resume: checkpoint {args.resume!r} {unreadable_file(args.resume)}')
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    cfg.launcher = args.launcher
    return cfg


def checkpoint_dir(cfg) -> str:
    """Where the checkpoint hook writes: ``<out_dir>/<work dir's name>`` when ``out_dir`` is set (mmengine's rule),
    else the work dir."""
    out_dir = (cfg.get('default_hooks') or {}).get('checkpoint', {}).get('out_dir')
    return osp.join(out_dir, osp.basename(cfg.work_dir.rstrip(os.sep))) if out_dir else cfg.work_dir


#: the names mmengine's CheckpointHook (and AtomicCheckpointHook) gives a run's checkpoints: a fresh run in the same
#: work dir would overwrite or rotate them out (``best_<metric>_<epoch|iter>_<n>.pth``: save_best)
RUN_CHECKPOINT = re.compile(r'(epoch|iter)_\d+\.pth|best_.+_(epoch|iter)_\d+\.pth')


def earlier_run(cfg) -> Tuple[List[str], List[Tuple[str, str]]]:
    """What an earlier run left where this one writes: ``(its files, files in the way)``.

    Its files: checkpoints under a run's name (:data:`RUN_CHECKPOINT`) whose content is an mmengine checkpoint
    (``meta`` and ``state_dict``), and ``last_checkpoint`` when it names a ``.pth`` file. In the way: a file under
    such a name that is not one of those (a user's), with what it is; the run would overwrite it.
    """
    from mmmst.runtime.safe_checkpoint import not_a_run_checkpoint

    def written_by_a_run(path: str, name: str) -> str:
        """'' for a run's own file, else what the file is."""
        if name == 'last_checkpoint':
            with open(path, errors='replace') as f:
                return '' if f.read(4097).strip().endswith('.pth') else 'names no checkpoint'
        return not_a_run_checkpoint(path)

    own, in_the_way = [], []
    for folder in dict.fromkeys((cfg.work_dir, checkpoint_dir(cfg))):
        names = sorted(os.listdir(folder)) if osp.isdir(folder) else []
        for name in names:
            path = osp.join(folder, name)
            if not (name == 'last_checkpoint' or RUN_CHECKPOINT.fullmatch(name)) or not osp.isfile(path):
                continue
            try:
                found = written_by_a_run(path, name)
            except OSError:  # gone: rank 0 of this run's --start-over deleted it meanwhile
                continue
            if not osp.lexists(path):  # ... or just after it was read
                continue
            if found:
                in_the_way.append((path, found))
            else:
                own.append(path)
    return own, in_the_way


def refuse_to_overwrite(cfg, start_over: bool) -> None:
    """A run that does not resume, in a work dir holding another run's checkpoints: ConfigError naming them and the
    ways on, or (``--start-over``, on rank 0) their deletion, listed, except the checkpoint ``load_from`` reads. A
    user's file under a name the run writes is refused in any case, naming it.
    """
    if cfg.get('resume'):
        return
    own, in_the_way = earlier_run(cfg)
    if in_the_way:
        path, what = in_the_way[0]
        raise ConfigError(
            f'{path} {what}, and this run would overwrite it (its name is one a run gives its checkpoints); move '
            'it out of the work dir or give another --work-dir'
        )
    if not own:
        return
    if not start_over:
        names = ', '.join(osp.basename(f) for f in own[:3]) + (f' and {len(own) - 3} more' if len(own) > 3 else '')
        raise ConfigError(
            f'work dir {cfg.work_dir} holds the checkpoints of an earlier run ({names}); continue it with --resume, '
            'give another --work-dir, or pass --start-over to delete them and train from the start'
        )
    start = cfg.get('load_from')
    kept = [f for f in own if start and osp.realpath(f) == osp.realpath(start)]
    if kept and not osp.basename(kept[0]).startswith('best_'):
        raise ConfigError(
            f'--start-over: load_from {start} is a checkpoint under a name the new run writes in this work dir, '
            f'and would be replaced at that point; copy it out of {osp.dirname(kept[0])} and set load_from to the '
            'copy, or give another --work-dir'
        )
    if is_first_process():
        deleted = [f for f in own if f not in kept]
        for path in deleted:
            os.remove(path)
        names = ', '.join(osp.relpath(f, cfg.work_dir) for f in deleted)
        keep = f'; kept {osp.basename(kept[0])} (load_from)' if kept else ''
        print(f"--start-over: deleted the earlier run's {names} in {cfg.work_dir}{keep}")


def is_first_process() -> bool:
    """Rank 0 before the process group exists: torchrun sets RANK, srun SLURM_PROCID, Open MPI
    OMPI_COMM_WORLD_RANK, MPICH and Intel MPI PMI_RANK."""
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        if name in os.environ:
            return os.environ[name] == '0'
    return True


def fall_back_to_full_precision(cfg) -> None:
    """Without a GPU, ``AmpOptimWrapper`` (the ImageNet configs' ``-amp-``) becomes ``OptimWrapper``, one warning.

    mmengine's ``AmpOptimWrapper`` refuses a machine without CUDA, so the documented commands would not run on a
    CPU machine as written; full precision there computes the same losses without the loss scaler.
    """
    import torch

    wrapper = cfg.optim_wrapper
    if wrapper.get('type') != 'AmpOptimWrapper' or torch.cuda.is_available():
        return
    for key in ('loss_scale', 'dtype', 'use_fsdp'):
        wrapper.pop(key, None)
    wrapper.type = 'OptimWrapper'
    if is_first_process():  # one line, not one per process
        print(
            'warning: no GPU visible: mixed precision (AmpOptimWrapper) needs one; training in full precision',
            file=sys.stderr,
        )


def main(argv=None):
    args = parse_args(argv)
    if unreadable_file(args.config):
        sys.exit(f'error: config file {args.config!r} {unreadable_file(args.config)}')
    from mmmst.runtime import preemption

    preemption.catch_stop_signals_early()  # a stop while the run starts: it stops after its first iteration
    import mmmst  # noqa: F401  (registers the components and the safe checkpoint loader)
    from mmmst.cli import (
        check_checkpoint_fits,
        check_hooks_build,
        check_model_builds,
        load_checked_config,
    )
    from mmmst.errors import exit_on_refusal
    from mmmst.runtime import cpu_dist
    from mmmst.runtime.hooks import AtomicCheckpointHook
    from mmmst.runtime.work_dir_lock import lock_work_dir

    lock = None
    with exit_on_refusal():
        cfg = load_checked_config(args.config, args.cfg_options)
        # a bad value fails here in one line, not after the Runner's log and a traceback (or after an epoch)
        model = check_model_builds(cfg)
        check_hooks_build(cfg)
        cfg = merge_args(cfg, args)
        if cfg.get('load_from') and not args.non_strict:
            usage = '--resume' if cfg.get('resume') else 'load_from'
            check_checkpoint_fits(
                cfg,
                model,
                cfg.load_from,
                usage,
                'Give a checkpoint of this config, or pass --non-strict to load what fits and initialise the rest',
            )
        own_compile = hasattr(model, 'compile_networks')  # MST: its networks, not mmengine's whole train_step
        del model
        if is_first_process():
            try:
                lock = lock_work_dir(cfg.work_dir)
            except OSError as err:  # a read-only file system, no permission
                raise ConfigError(f'work dir {cfg.work_dir} is not writable ({err.strerror})') from None
        try:
            refuse_to_overwrite(cfg, args.start_over)
        except BaseException:  # the lock goes with the refusal
            if lock is not None:
                lock.release()
            raise
    fall_back_to_full_precision(cfg)
    on_cpu = cpu_dist.init_cpu_process_group(args.launcher)
    if on_cpu:  # no GPU: gloo processes, DDP over CPU modules
        cpu_dist.use_cpu_wrapper(cfg)

    def leave(code: int) -> None:
        """Every process ends here, on every backend: the work dir's lock released, then the exit."""
        if on_cpu:
            cpu_dist.close_cpu_process_group(code, before_exit=lock and lock.release)
        if lock is not None:
            lock.release()
        sys.exit(code)

    compile_cfg = cfg.pop('compile', None) if own_compile else None
    runner = Runner.from_cfg(cfg)
    if compile_cfg:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        runner.logger.info(model.compile_networks({} if compile_cfg is True else compile_cfg))
    if not any(isinstance(hook, AtomicCheckpointHook) for hook in runner.hooks):
        preemption.release_early_stop_signals()  # nothing would save on a signal: it stops the run as usual
    try:
        with exit_on_refusal():  # a diverged run, a checkpoint that cannot be resumed, an unreadable image
            runner.train()
    except preemption.Preempted:
        # SIGTERM / SIGUSR1: the iteration checkpoint is complete (every process waited for it) and the log names it
        preemption.record_exit_code(preemption.PREEMPTED_EXIT_CODE)
        leave(preemption.PREEMPTED_EXIT_CODE)
    except (OSError, RuntimeError) as err:
        # a full disk or a lost write permission during a save (torch.save reports a failed write as a
        # RuntimeError): the checkpoints already written are intact, the half-written one is removed at the next start
        full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)
        if not (full or 'PytorchStreamWriter failed writing' in str(err) or 'file write failed' in str(err)):
            raise
        record = osp.join(cfg.work_dir, 'last_checkpoint')  # written only once a save is complete
        last = osp.join(cfg.work_dir, open(record).read().strip()) if osp.isfile(record) else 'none written yet'
        reason = err.strerror if isinstance(err, OSError) else 'a write failed (disk full?)'
        sys.exit(
            f'error: {reason} while writing into {cfg.work_dir}; the last complete checkpoint is {last} '
            '(--resume continues from it once there is space)'
        )
    leave(0)


if __name__ == '__main__':
    main()
