"""Mask-strategy ablation (paper table 4) at CPU scale on Fashion-MNIST, with k-NN evaluation.

    python tools/analysis_tools/mask_ablation.py --seeds 0 1 --max-epochs 2 --train-size 10000

Identical small ViTs, budgets and seeds in every arm; only the mask generator and the decoder differ:

    dino        no mask, no decoder (DINO)
    random      random mask, every patch with p = 0.15 (paper eq. 3)
    attention   attention-guided mask, num = 8, p = 0.5 (paper eq. 4-5)
    mst         attention-guided mask + decoder (full MST)

Each teacher is evaluated by k-NN (20 neighbours, T = 0.07) beside a randomly initialised network and raw pixels.
The table (mean and spread over seeds, plus the measured masked fraction of each arm) goes to
``<work-dir>/results.md`` and ``results.json``; every run keeps its own log under ``<work-dir>/<arm>_seed<k>/``.
"""

import argparse
import copy
import json
import os
import os.path as osp
import statistics
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/mst/mst_vit-4l128-p4_1xb64-coslr-5e_fashion-mnist.py')

ARMS = {
    'dino': dict(mask_generator=None, decoder=None),
    'random': dict(mask_generator=dict(_delete_=True, type='RandomMaskGenerator', prob=0.15), decoder=None),
    'attention': dict(mask_generator=dict(type='AttentionGuidedMaskGenerator', num=8, prob=0.5), decoder=None),
    'mst': dict(mask_generator=dict(type='AttentionGuidedMaskGenerator', num=8, prob=0.5)),
}


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


def summarise(values):
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{mean:.2f} ± {spread:.2f}'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arms', nargs='+', default=list(ARMS), choices=list(ARMS))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    parser.add_argument('--max-epochs', type=int, default=2)
    parser.add_argument('--train-size', type=int, default=10000)
    parser.add_argument('--bank-size', type=int, default=10000)
    parser.add_argument('--query-size', type=int, default=10000)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/mask_ablation'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    args = parser.parse_args(argv)

    import mmmst  # noqa: F401
    from mmmst.experiments.fashion_mnist import prepare_fashion_mnist, pretrain_and_evaluate, shortened_cfg

    try:
        prepare_fashion_mnist(args.data_root)
    except FileNotFoundError as err:
        sys.exit(str(err))
    os.makedirs(args.work_dir, exist_ok=True)
    results_file = osp.join(args.work_dir, 'results.json')
    results = json.load(open(results_file)) if osp.isfile(results_file) else {}
    t0 = time.time()
    for seed in args.seeds:
        for arm in args.arms:
            key = f'{arm}_seed{seed}'
            if key in results:  # finished earlier: the runner can be restarted after an interruption
                continue
            print(f'[ablation] {key}: pretraining ({time.time() - t0:.0f} s elapsed)', flush=True)
            cfg = shortened_cfg(
                CONFIG,
                osp.join(args.work_dir, key),
                args.data_root,
                args.train_size,
                args.bank_size,
                args.query_size,
                args.max_epochs,
            )
            # a copy: mmengine's merge consumes `_delete_` from the dict it is given
            cfg.merge_from_dict(dict(model=copy.deepcopy(ARMS[arm])))
            cfg.randomness = dict(seed=seed)
            cfg.experiment_name = key

            def log(message, key=key):
                print(f'[ablation] {key}: {message}', flush=True)

            metrics = pretrain_and_evaluate(
                cfg,
                baselines=(arm == args.arms[0]),
                log=log,
                inspect=lambda model, cfg: dict(masked_fraction=masked_fraction(model, cfg)),
            )
            metrics['minutes'] = round((time.time() - t0) / 60, 1)
            results[key] = dict(arm=arm, seed=seed, **metrics)
            json.dump(results, open(results_file, 'w'), indent=2)

    # table: one row per arm (+ the baselines), mean ± std over seeds
    rows = []
    for arm in args.arms:
        runs = [r for r in results.values() if r['arm'] == arm]
        rows.append(
            (
                arm,
                summarise([r['knn_top1_mst'] for r in runs]),
                len(runs),
                summarise([r.get('masked_fraction', 0.0) * 100 for r in runs]),
            )
        )
    baselines = [r for r in results.values() if 'knn_top1_random_init' in r]
    lines = [
        '| arm | k-NN top-1 (%) | seeds | masked patches (%) |',
        '| --- | --- | --- | --- |',
        *[f'| {arm} | {acc} | {n} | {frac} |' for arm, acc, n, frac in rows],
        f'| random init (not trained) | {summarise([r["knn_top1_random_init"] for r in baselines])} | '
        f'{len(baselines)} | - |',
        f'| raw pixels | {summarise([r["knn_top1_raw_pixels"] for r in baselines])} | - | - |',
    ]
    table = '\n'.join(lines)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    print(table)


if __name__ == '__main__':
    main()
