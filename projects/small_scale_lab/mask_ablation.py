r"""Mask-strategy ablation (paper tables 4 and 5) at CPU scale on Fashion-MNIST, with k-NN evaluation.

Run from the repository root:

    python -m projects.small_scale_lab.mask_ablation --seeds 0 1 --max-epochs 2 --train-size 10000
    python -m projects.small_scale_lab.mask_ablation --seeds 0 --arms mst-num4-p0.9 mst-num16-p0.1   # table 5
    python -m projects.small_scale_lab.mask_ablation --arms dino mst --max-epochs 8 --knn-interval 1 \
        --work-dir work_dirs/mask_ablation_8e                                                       # k-NN curves
    python -m projects.small_scale_lab.mask_ablation --arms mst --seeds 0 --max-epochs 5 \
        --cfg-options model.neck.norm_last_layer=True --work-dir work_dirs/recipe_nll               # a recipe

The same small ViT, budget and seeds in every arm; only what the arm's name says differs. Not the initial weights,
unless ``--shared-init``: an arm with a decoder draws its network from the seed in another order than one without,
so each run is compared with its own untrained network. With ``--shared-init`` every arm of a seed starts from the
seed's untrained full-MST network (``<work-dir>/init_seed<k>.pth``; an arm without a decoder or [MASK] token skips
those weights), so arms of one seed share their start.

Arm names (``dino``, ``random-p0.45``, ``mst-num4-p0.9-lambda0.3``, ...) are explained in :mod:`.arms`.

Each teacher is evaluated by k-NN (20 neighbours, T = 0.07) beside a randomly initialised network and raw pixels.
The table (mean and spread over seeds, the gain over each run's own untrained network, plus the measured masked
fraction of each arm) goes to ``<work-dir>/results.md`` and ``results.json``. Several runner processes may share a
work dir (one per seed, say, on a machine with cores to spare): each adds its runs to ``results.json`` under a file
lock. With ``--knn-interval`` the teacher is also evaluated during training and its gain over the untrained network
after every epoch is drawn to ``<work-dir>/knn_curves.png``. The DINO loss and two collapse monitors, the
teacher's entropy and KL(P_t || P_s), are drawn against the iteration to ``<work-dir>/dino_losses.png``,
``teacher_entropy.png`` and ``kl_teacher_student.png``. Every picture has one line per arm, the mean over its
seeds. Every run keeps its log, checkpoint and a picture of the teacher's attention and the arm's masks on test
images (``attention_and_masks.png``) under ``<work-dir>/<arm>_seed<k>/``; finished runs are skipped when the
command is repeated.
"""

import argparse
import os
import os.path as osp
import sys
import time

import torch
from mmengine.config import DictAction

from mmmst.apis import budgeted_cfg, init_model, pretrain_and_evaluate
from mmmst.datasets.fashion_mnist import FashionMNISTUnavailableError, prepare_fashion_mnist
from mmmst.dino_recipe import NUM_GLOBAL_VIEWS
from mmmst.visualization import draw_attention_and_masks

from .arms import BASE_ARMS, arm_name, arm_overrides
from .results import ARM_CURVES, check_budget, load_results, plot_arm_curves, plot_knn_curves, record_run, results_table

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# the 4-layer recipe of the tables in experiment_log.md (the demo's 2-layer, 10-epoch recipe: pass --config)
CONFIG = osp.join(ROOT, 'configs/mst/mst_vit-4l128-p4_1xb64-coslr-5e_fashion-mnist.py')


@torch.no_grad()
def masked_fraction(model, cfg, num_batches=4) -> float:
    """Fraction of patches the arm's generator masks on training views, with the trained teacher's attention."""
    if model.mask_generator is None:
        return 0.0
    from mmengine.runner import Runner

    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    fractions = []
    for i, data in enumerate(loader):
        if i == num_batches:
            break
        views = model.data_preprocessor(data, False)['inputs']
        _, mask = model.teacher_and_mask(torch.cat(views[:NUM_GLOBAL_VIEWS]))
        fractions.append(mask.float().mean().item())
    return sum(fractions) / len(fractions)


def add_knn_monitor(cfg, interval: int) -> None:
    """Evaluate the teacher every ``interval`` epochs during training (``KNNMonitorHook``), on the same bank and
    queries as the final evaluation, so that the curve's last point is the final figure."""
    hook = dict(
        type='KNNMonitorHook',
        bank_dataloader=cfg.knn_bank_dataloader.to_dict(),
        query_dataloader=cfg.knn_query_dataloader.to_dict(),
        num_classes=10,
        interval=interval,
    )
    cfg.custom_hooks = [*cfg.get('custom_hooks', []), hook]


def inspect_run(model, cfg) -> dict:
    """After training: the teacher's attention and the arm's masks on 8 test images (a picture in the run's
    directory), and the measured masked fraction."""
    draw_attention_and_masks(model, cfg, osp.join(cfg.work_dir, 'attention_and_masks.png'))
    return dict(masked_fraction=masked_fraction(model, cfg))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arms', nargs='+', type=arm_name, default=list(BASE_ARMS), metavar='ARM')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    parser.add_argument('--max-epochs', type=int, default=2)
    parser.add_argument('--train-size', type=int, default=10000)
    parser.add_argument('--bank-size', type=int, default=10000)
    parser.add_argument('--query-size', type=int, default=10000)
    parser.add_argument(
        '--knn-interval', type=int, default=0, help='also evaluate the teacher every N epochs (0: only at the end)'
    )
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/mask_ablation'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    parser.add_argument(
        '--config',
        default=CONFIG,
        help='the recipe every arm starts from (default: the 4-layer recipe of the tables in the experiment log)',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='recipe overrides applied to every arm before its own, e.g. model.neck.norm_last_layer=True',
    )
    parser.add_argument(
        '--shared-init',
        action='store_true',
        help="every arm of a seed starts from the seed's untrained full-MST network (one start per seed)",
    )
    return parser.parse_args(argv)


def run_budget(args) -> dict:
    """What every run of one work dir shares: sizes, epochs and (if not the default's) the recipe."""
    budget = dict(
        max_epochs=args.max_epochs, train_size=args.train_size, bank_size=args.bank_size, query_size=args.query_size
    )
    if args.config != CONFIG or args.cfg_options:  # a recipe other than the default's is part of what runs share
        budget['recipe'] = dict(config=osp.relpath(args.config, ROOT), **args.cfg_options)
    if args.shared_init:
        budget['shared_init'] = True
    return budget


def arm_cfg(args, arm: str, seed: int):
    """The arm's config: the recipe, the run's sizes and length, then the arm's own settings."""
    cfg = budgeted_cfg(
        args.config,
        osp.join(args.work_dir, f'{arm}_seed{seed}'),
        args.data_root,
        args.train_size,
        args.bank_size,
        args.query_size,
        args.max_epochs,
    )
    cfg.merge_from_dict(args.cfg_options)
    cfg.merge_from_dict(arm_overrides(arm))
    return cfg


def shared_init(args, seed: int) -> str:
    """The seed's untrained full-MST network, written once to ``<work-dir>/init_seed<seed>.pth``; its path.

    Every arm of the seed loads it (``load_from``, not strict): an arm without a decoder or [MASK] token skips those
    weights, and all arms start from the same backbone, projection head and teacher. (Without it, building the
    decoder takes draws from the seed's stream and moves the backbone's initial weights.)"""
    path = osp.join(args.work_dir, f'init_seed{seed}.pth')
    if not osp.isfile(path):
        model = init_model(arm_cfg(args, 'mst', seed), seed=seed)
        tmp = f'{path}.{os.getpid()}.tmp'  # runner processes sharing the work dir write the same weights
        torch.save(dict(state_dict=model.state_dict(), meta=dict(seed=seed, arm='mst')), tmp)
        os.replace(tmp, path)
    return path


def run_arm(args, arm: str, seed: int) -> dict:
    """Pretrain one arm with one seed and k-NN evaluate it, beside its own network untrained and raw pixels.

    Every arm gets its own untrained figure: arms build different modules (a decoder, a [MASK] token), so the same
    seed draws a different initial network in each, and the gain is only comparable against its own start. With
    ``--shared-init`` that start is the seed's shared network (:func:`shared_init`)."""
    key = f'{arm}_seed{seed}'
    cfg = arm_cfg(args, arm, seed)
    if args.shared_init:
        cfg.load_from = shared_init(args, seed)
    if args.knn_interval:
        add_knn_monitor(cfg, args.knn_interval)
    cfg.randomness = dict(seed=seed)
    cfg.experiment_name = key

    def log(message):
        print(f'[ablation] {key}: {message}', flush=True)

    return pretrain_and_evaluate(cfg, baselines=True, log=log, after_training=inspect_run)


def main(argv=None):
    args = parse_args(argv)
    try:  # the data step (a no-op when the files are there)
        prepare_fashion_mnist(args.data_root, log=lambda line: print(line, flush=True))
    except FashionMNISTUnavailableError as err:
        sys.exit(f'error: {err}')
    os.makedirs(args.work_dir, exist_ok=True)
    results_file = osp.join(args.work_dir, 'results.json')
    results = load_results(results_file)
    budget = run_budget(args)
    # records from before budgets were recorded used the defaults of that time
    older = dict(max_epochs=2, train_size=10000, bank_size=10000, query_size=10000)
    check_budget(results, budget, results_file, older)
    t0 = time.time()
    for seed in args.seeds:
        for arm in args.arms:
            key = f'{arm}_seed{seed}'
            results = load_results(results_file)  # with what runner processes sharing the work dir added
            if key in results:  # finished earlier: the runner can be restarted after an interruption
                continue
            print(f'[ablation] {key}: pretraining ({time.time() - t0:.0f} s elapsed)', flush=True)
            metrics = run_arm(args, arm, seed)
            metrics['minutes'] = round((time.time() - t0) / 60, 1)
            record_run(results_file, key, dict(arm=arm, seed=seed, budget=budget, **metrics))

    results = load_results(results_file)
    table = results_table(results)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    print(table)
    path = osp.join(args.work_dir, 'knn_curves.png')
    if plot_knn_curves(results, path):
        print(f'written: {path}')
    for key, name in ARM_CURVES.items():
        path = osp.join(args.work_dir, name)
        if plot_arm_curves(results, args.work_dir, key, path):
            print(f'written: {path}')


if __name__ == '__main__':
    main()
