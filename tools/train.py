"""Pretrain with an mmmst config (mmpretrain's tools/train.py interface).

python tools/train.py configs/mst/mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py
bash tools/dist_train.sh <config> <gpus> [--amp] [--resume] [--cfg-options k=v ...]
"""

import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.runner import Runner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an mmmst model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in the work dir when none is given',
    )
    parser.add_argument('--amp', action='store_true', help='enable automatic-mixed-precision training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr by the real total batch size')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. train_cfg.max_epochs=1 (mmengine rules: any key may be set, key=None '
        'clears a value); a new key that looks like a typo of an existing one gets a warning',
    )
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        # mmengine would start over silently (and overwrite epoch_*.pth) when there is nothing to resume
        record = osp.join(cfg.work_dir, 'last_checkpoint')
        if not osp.isfile(record):
            sys.exit(
                f'error: --resume: no checkpoint to resume in {cfg.work_dir} (no last_checkpoint file); '
                'give a checkpoint (--resume <file>) or start without --resume'
            )
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            sys.exit(f'error: --resume: checkpoint {args.resume!r} does not exist')
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    cfg.launcher = args.launcher
    return cfg


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        sys.exit(f'config file {args.config!r} does not exist')
    from mmmst_tools.config_checks import check_model_builds, load_checked_config

    import mmmst  # noqa: F401  (registers the components and the safe checkpoint loader)
    from mmmst.engine.cpu_dist import close_cpu_process_group, init_cpu_process_group, use_cpu_wrapper
    from mmmst.engine.non_finite import NonFiniteError
    from mmmst.engine.safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError

    try:
        cfg = load_checked_config(args.config, args.cfg_options)
        check_model_builds(cfg)  # a bad value fails here in one line, not after the Runner's log and a traceback
    except (KeyError, FileNotFoundError, ValueError, TypeError) as err:
        sys.exit(f'error: {err.args[0] if err.args else err}')
    cfg = merge_args(cfg, args)
    on_cpu = init_cpu_process_group(args.launcher)
    if on_cpu:  # no GPU: gloo processes, DDP over CPU modules
        use_cpu_wrapper(cfg)
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    except (NonFiniteError, CorruptCheckpointError, UnsafeCheckpointError) as err:
        # a diverged run, or a checkpoint that cannot be resumed: one line naming the culprit
        sys.exit(f'error: {err}')
    if on_cpu:
        close_cpu_process_group()


if __name__ == '__main__':
    main()
