"""The ablation's results: ``results.json`` (one entry per finished run, shared by runner processes), the table
of ``results.md`` and the curves averaged over each arm's seeds."""

import fcntl
import glob
import json
import os
import os.path as osp
import statistics
import sys

from mmmst.visualization import scalar_curve, visualizer


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
    per_arm = {}
    for run_key, r in results.items():
        scalars = sorted(glob.glob(osp.join(work_dir, run_key, '*', 'vis_data', 'scalars.json')))
        points = dict(scalar_curve(scalars[-1], key)) if scalars else {}
        if points:
            per_arm.setdefault(r['arm'], []).append(points)
    return mean_per_arm(per_arm)


def plot_arm_curves(results: dict, work_dir: str, key: str, path: str) -> bool:
    """:func:`arm_curves` against the iteration, one line per arm; False when no run logged ``key``."""
    curves = arm_curves(results, work_dir, key)
    if not curves:
        return False
    visualizer().visualize_curves(curves, 'iteration', key, out_file=path)
    return True


def summarise(values, signed=False):
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{mean:{"+" if signed else ""}.2f} ± {spread:.2f}'


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


def check_budget(results: dict, budget: dict, results_file: str, older: dict) -> None:
    """Refuses, naming both, a command whose budget differs from that of a run already in ``results.json``: runs of
    one table share one budget. ``older``: the budget of records written before budgets were recorded."""
    for key, r in results.items():
        theirs = r.get('budget', older)
        if theirs != budget:
            sys.exit(
                f'{results_file}: run {key} used {theirs}, this command asks for {budget}; '
                'give another --work-dir or the same budget'
            )


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
