r"""Mask-strategy ablation (paper tables 4 and 5) at CPU scale on Fashion-MNIST, with k-NN evaluation.

    python tools/analysis_tools/mask_ablation.py --seeds 0 1 --max-epochs 2 --train-size 10000
    python tools/analysis_tools/mask_ablation.py --seeds 0 --arms mst-num4-p0.9 mst-num16-p0.1   # table 5
    python tools/analysis_tools/mask_ablation.py --arms dino mst --max-epochs 8 --knn-interval 1 \
        --work-dir work_dirs/mask_ablation_8e                                                   # k-NN curves
    python tools/analysis_tools/mask_ablation.py --arms mst --seeds 0 --max-epochs 5 \
        --cfg-options model.neck.norm_last_layer=True --work-dir work_dirs/recipe_nll           # a recipe change

The same small ViT, budget and seeds in every arm; only what the arm's name says differs. Not the initial weights,
unless ``--shared-init``: an arm with a decoder draws its network from the seed in another order than one without,
so each run is compared with its own untrained network. With ``--shared-init`` every arm of a seed starts from the
seed's untrained full-MST network (``<work-dir>/init_seed<k>.pth``; an arm without a decoder or [MASK] token skips
those weights), so arms of one seed share their start.

An arm is a base name followed by optional ``-<field><value>`` settings:

    dino                 no mask, no decoder (DINO)
    random[-p<P>]        random mask, every patch with probability P (paper eq. 3; default 0.15)
    attention[-num<N>][-p<P>]   attention-guided mask, the lowest 1/N attention patches are candidates,
                         each masked with probability P (paper eq. 4-5; default num 8, p 0.5), no decoder
    mst[-num<N>][-p<P>]  attention-guided mask + decoder (full MST)
    high[-r<R>]          the most attended round(R N) patches masked (AttMask-High; default R = 0.1-0.5 per image)
    hint[-r<R>][-h<H>]   as high, each masked patch revealed again with probability H (AttMask-Hint; default 0.1)
    block[-r<R>]         rectangles of patches up to R N (BEiT / iBOT; default R = 0.1-0.5 per image)

high, hint and block keep MST's decoder, so they compare mask strategies inside MST;

and, on any arm, ``-lam<L>`` (decoder loss weight lambda, arms with a decoder), ``-tw<E>`` (teacher-temperature warm-up
epochs) and ``-lr<LR>`` (peak learning rate). Example: ``mst-num4-p0.9-lam0.3``.

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
import fcntl
import glob
import json
import os
import os.path as osp
import re
import statistics
import subprocess
import sys
import time

import torch
from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/, for mmmst_tools

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# the 4-layer recipe of the tables in docs/experiment_log.md (the demo's 2-layer, 10-epoch recipe: pass --config)
CONFIG = osp.join(ROOT, 'configs/mst/mst_vit-4l128-p4_1xb64-coslr-5e_fashion-mnist.py')

# base arms and the defaults of their settings
BASE_ARMS = ('dino', 'random', 'attention', 'mst')
RELATED_ARMS = ('high', 'hint', 'block')  # the follow-up work's masks, inside MST
_SETTING = re.compile(r'(num|p|lam|tw|lr|r|h)(\d+(?:\.\d+)?)')  # lr as a decimal: lr0.001


def arm_overrides(name: str) -> dict:
    """Config overrides (a fresh dict) for an arm name such as ``mst-num4-p0.9-lam0.3``; see the module docstring.

    Raises:
        ValueError: the name, or one of its settings, is not understood; the message names it.
    """
    base, *settings = name.split('-')
    if base not in BASE_ARMS + RELATED_ARMS:
        raise ValueError(f'arm {name!r}: the base must be one of {", ".join(BASE_ARMS + RELATED_ARMS)}, got {base!r}')
    values = {}
    for setting in settings:
        match = _SETTING.fullmatch(setting)
        if match is None or match.group(1) in values:
            raise ValueError(
                f'arm {name!r}: cannot read setting {setting!r} (num<int>, p<float>, lam<float>, tw<int>, lr<float>, '
                'r<float>, h<float>, each at most once)'
            )
        values[match.group(1)] = match.group(2)
    allowed = dict(
        dino={'tw', 'lr'},
        random={'p', 'tw', 'lr'},
        attention={'num', 'p', 'tw', 'lr'},
        mst={'num', 'p', 'lam', 'tw', 'lr'},
        high={'r', 'lam', 'tw', 'lr'},
        hint={'r', 'h', 'lam', 'tw', 'lr'},
        block={'r', 'lam', 'tw', 'lr'},
    )
    extra = set(values) - allowed[base]
    if extra:
        raise ValueError(f'arm {name!r}: setting(s) {", ".join(sorted(extra))} do not apply to {base!r}')

    model = {}
    if base == 'dino':
        model.update(mask_generator=None, decoder=None)
    elif base == 'random':
        prob = float(values.get('p', 0.15))  # paper: random masking with p = 0.15
        model.update(mask_generator=dict(_delete_=True, type='RandomMaskGenerator', prob=prob), decoder=None)
    elif base in RELATED_ARMS:
        ratio = float(values['r']) if 'r' in values else (0.1, 0.5)
        generator = dict(_delete_=True, type='BlockMaskGenerator' if base == 'block' else 'HighAttentionMaskGenerator')
        generator['ratio'] = ratio
        if base == 'hint':
            generator['hint'] = float(values.get('h', 0.1))
        model['mask_generator'] = generator
        if 'lam' in values:
            model['decoder'] = dict(loss_weight=float(values['lam']))
    else:
        num, prob = int(values.get('num', 8)), float(values.get('p', 0.5))
        model['mask_generator'] = dict(type='AttentionGuidedMaskGenerator', num=num, prob=prob)
        if base == 'attention':
            model['decoder'] = None
        elif 'lam' in values:
            model['decoder'] = dict(loss_weight=float(values['lam']))
    if 'tw' in values:
        model['head'] = dict(warmup_teacher_temp_epochs=int(values['tw']))
    overrides = dict(model=model)
    if 'lr' in values:
        overrides['optim_wrapper'] = dict(optimizer=dict(lr=float(values['lr'])))
    return overrides


def arm_name(value: str) -> str:
    """argparse type: an arm name that :func:`arm_overrides` understands."""
    try:
        arm_overrides(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


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
        attn = model.teacher.module.backbone.encode(torch.cat(views[:2]), return_cls_attention=True).cls_attention
        fractions.append(model.mask_generator(attn).float().mean().item())
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


def untrained_starts(results: dict) -> dict:
    """Each run's untrained k-NN figure: its own, or (results written before every run had one) its seed's first
    arm's; None where neither exists."""
    seed_untrained = {r['seed']: r['knn_top1_random_init'] for r in results.values() if 'knn_top1_random_init' in r}
    return {key: r.get('knn_top1_random_init', seed_untrained.get(r['seed'])) for key, r in results.items()}


def knn_gain_curves(results: dict) -> dict:
    """The teacher's k-NN gain over its own untrained network after every epoch, averaged over each arm's seeds:
    ``{label: [(epoch, mean gain), ...]}`` from the runs that have a curve (``--knn-interval``) and a start."""
    starts, per_arm = untrained_starts(results), {}
    for key, r in results.items():
        if r.get('knn_top1_per_epoch') and starts[key] is not None:
            per_arm.setdefault(r['arm'], []).append([value - starts[key] for value in r['knn_top1_per_epoch']])
    return mean_per_arm({arm: [dict(enumerate(gains, start=1)) for gains in runs] for arm, runs in per_arm.items()})


def mean_per_arm(per_arm: dict) -> dict:
    """``{arm: [{x: y} per seed]}`` -> ``{label: [(x, mean y), ...]}`` at the x every seed has; the label names the
    arm and how many seeds it averages."""
    curves = {}
    for arm, runs in per_arm.items():
        xs = sorted(set.intersection(*(set(points) for points in runs)))
        label = arm if len(runs) == 1 else f'{arm} (mean of {len(runs)} seeds)'
        curves[label] = [(x, statistics.mean(points[x] for points in runs)) for x in xs]
    return curves


def plot_knn_curves(results: dict, path: str) -> bool:
    """:func:`knn_gain_curves` against the epoch, one line per arm; False when no run has a curve."""
    from mmmst_tools.figures import visualizer

    curves = knn_gain_curves(results)
    if not curves:
        return False
    ylabel = 'k-NN top-1 gain over untrained (points)'
    visualizer().visualize_curves(curves, 'epoch', ylabel, hline=(0.0, 'untrained network'), marker='o', out_file=path)
    return True


#: the training curves the runner draws, one picture each: logged key -> file name in the work dir
ARM_CURVES = dict(
    loss_dino='dino_losses.png', teacher_entropy='teacher_entropy.png', kl_teacher_student='kl_teacher_student.png'
)


def arm_curves(results: dict, work_dir: str, key: str) -> dict:
    """``key`` as logged in each run's ``vis_data/scalars.json``, averaged over each arm's seeds at the iterations
    they all logged: ``{label: [(iteration, mean), ...]}``, the label naming the arm and how many seeds it averages."""
    from mmmst_tools.scalars import scalar_curve

    per_arm = {}
    for run_key, r in results.items():
        scalars = sorted(glob.glob(osp.join(work_dir, run_key, '*', 'vis_data', 'scalars.json')))
        points = dict(scalar_curve(scalars[-1], key)) if scalars else {}
        if points:
            per_arm.setdefault(r['arm'], []).append(points)
    return mean_per_arm(per_arm)


def plot_arm_curves(results: dict, work_dir: str, key: str, path: str) -> bool:
    """:func:`arm_curves` against the iteration, one line per arm; False when no run logged ``key``."""
    from mmmst_tools.figures import visualizer

    curves = arm_curves(results, work_dir, key)
    if not curves:
        return False
    visualizer().visualize_curves(curves, 'iteration', key, out_file=path)
    return True


def inspect_run(model, cfg) -> dict:
    """After training: the teacher's attention and the arm's masks on 8 test images (a picture in the run's
    directory), and the measured masked fraction."""
    from mmmst_tools.figures import draw_attention_and_masks

    draw_attention_and_masks(model, cfg, osp.join(cfg.work_dir, 'attention_and_masks.png'))
    return dict(masked_fraction=masked_fraction(model, cfg))


def summarise(values, signed=False):
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{mean:{"+" if signed else ""}.2f} ± {spread:.2f}'


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
        help='the recipe every arm starts from (default: the 4-layer recipe of the tables in docs/experiment_log.md)',
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


def check_budget(results: dict, budget: dict, results_file: str) -> None:
    for key, r in results.items():
        # runs of one table share one budget; older files (before budgets were recorded) used the defaults
        theirs = r.get('budget', dict(max_epochs=2, train_size=10000, bank_size=10000, query_size=10000))
        if theirs != budget:
            sys.exit(
                f'{results_file}: run {key} used {theirs}, this command asks for {budget}; '
                'give another --work-dir or the same budget'
            )


def arm_cfg(args, arm: str, seed: int):
    """The arm's config: the recipe, the run's sizes and length, then the arm's own settings."""
    from mmmst_tools.fashion_mnist import budgeted_cfg

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
    from mmmst.apis import init_model

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
    from mmmst_tools.fashion_mnist import pretrain_and_evaluate

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


def results_table(results: dict) -> str:
    """One row per arm (+ the baselines): k-NN mean ± std over seeds, the gain over the run's own untrained network
    (results written before every run had one: the seed's first arm's; ``-`` where there is none), and the masked
    fraction."""
    starts, rows = untrained_starts(results), []
    for arm in dict.fromkeys(r['arm'] for r in results.values()):
        keys = [key for key, r in results.items() if r['arm'] == arm]
        runs = [results[key] for key in keys]
        accuracy = summarise([r['knn_top1_mst'] for r in runs])
        gains = [results[key]['knn_top1_mst'] - starts[key] for key in keys if starts[key] is not None]
        gain = summarise(gains, signed=True) if len(gains) == len(runs) else '-'
        masked = summarise([r.get('masked_fraction', 0.0) * 100 for r in runs])
        rows.append(f'| {arm} | {accuracy} | {gain} | {len(runs)} | {masked} |')
    baselines = [r for r in results.values() if 'knn_top1_random_init' in r]
    pixels = {r['seed']: r['knn_top1_raw_pixels'] for r in baselines}  # the same images for every arm of a seed
    return '\n'.join(
        [
            '| arm | k-NN top-1 (%) | gain over untrained (points) | seeds | masked patches (%) |',
            '| --- | --- | --- | --- | --- |',
            *rows,
            f'| random init (not trained) | {summarise([r["knn_top1_random_init"] for r in baselines])} | - | '
            f'{len(baselines)} | - |',
            f'| raw pixels | {summarise(list(pixels.values()))} | - | - | - |',
        ]
    )


def load_results(results_file: str) -> dict:
    return json.load(open(results_file)) if osp.isfile(results_file) else {}


def record_run(results_file: str, key: str, entry: dict) -> None:
    """Adds one finished run to ``results.json``. The read-modify-write runs
    under an exclusive lock and the file is replaced whole, so runner processes sharing a work dir keep each other's
    runs and a reader never sees half a file."""
    with open(f'{results_file}.lock', 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        results = load_results(results_file)
        results[key] = entry
        with open(f'{results_file}.tmp', 'w') as f:
            json.dump(results, f, indent=2)
        os.replace(f'{results_file}.tmp', results_file)


def main(argv=None):
    args = parse_args(argv)
    from mmmst_tools.fashion_mnist import PREPARE, missing_fashion_mnist

    import mmmst  # noqa: F401

    if missing_fashion_mnist(args.data_root):
        subprocess.run([sys.executable, osp.join(ROOT, PREPARE), args.data_root], check=True)
    os.makedirs(args.work_dir, exist_ok=True)
    results_file = osp.join(args.work_dir, 'results.json')
    results = load_results(results_file)
    budget = run_budget(args)
    check_budget(results, budget, results_file)
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
