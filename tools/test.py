"""Evaluate a checkpoint with a config's test loop (mmpretrain's tools/test.py interface).

python tools/test.py configs/mst/benchmarks/<linear-probe config> <checkpoint>
bash tools/dist_test.sh <config> <checkpoint> <gpus>
"""

import argparse
import os
import os.path as osp
import sys

from mmengine.runner import Runner

from mmmst.cli import CfgOptionsAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--amp', action='store_true', help='enable automatic-mixed-precision inference')
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


def main(argv=None):
    args = parse_args(argv)
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            sys.exit(f'error: {path!r} does not exist')
    import mmmst  # noqa: F401
    from mmmst.cli import check_checkpoint_fits, check_model_builds, load_checked_config
    from mmmst.errors import exit_on_refusal
    from mmmst.runtime.cpu_dist import close_cpu_process_group, init_cpu_process_group, use_cpu_wrapper

    with exit_on_refusal():
        cfg = load_checked_config(args.config, args.cfg_options, loaders=('test_dataloader',))
        # mmengine would evaluate whatever part of the model the checkpoint fills (a linear probe's backbone from a
        # pretraining checkpoint, its head untrained) and print a top-1: the checkpoint must fit the model
        check_checkpoint_fits(
            cfg,
            check_model_builds(cfg),
            args.checkpoint,
            'tools/test.py',
            "Evaluate a checkpoint trained with this config (a pretraining checkpoint goes into a linear probe's "
            'model.backbone.init_cfg.checkpoint, for tools/train.py)',
        )
    cfg.launcher = args.launcher
    on_cpu = init_cpu_process_group(args.launcher)
    if on_cpu:  # no GPU: gloo processes, DDP over CPU modules
        use_cpu_wrapper(cfg)
    cfg.load_from = args.checkpoint
    cfg.work_dir = (
        args.work_dir or cfg.get('work_dir') or osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    )
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    runner = Runner.from_cfg(cfg)
    runner.test()
    if on_cpu:
        close_cpu_process_group()


if __name__ == '__main__':
    main()
