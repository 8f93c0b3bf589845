r"""Continuing from a public backbone, at CPU scale: does adapting a pretrained backbone to new images pay?

Run from the repository root:

    python -m projects.small_scale_lab.continue_pretraining --seeds 0 1 2 --work-dir work_dirs/continue

Fashion-MNIST split by class stands in for "a public backbone and a folder of one's own domain":

1. **source**, once (``--source-seed``): the demo's recipe pretrains on classes 0-4 (``--source-per-class``
   training images each, ``--source-epochs``);
2. its teacher backbone goes out to timm (``tools/model_converters/mst_to_timm.py``) and back in
   (``timm_to_mst.py``), the path a user's public backbone takes;
3. for each seed, each **arm** trains on the images of classes 5-9 without labels, for the same budget:
   ``scratch`` from a random network, the others from the imported backbone through the config line
   ``timm_to_mst.py`` prints, with the levers of :data:`ARMS`.

Every run is evaluated by k-NN on classes 5-9 (bank: its training images with labels, queries: its test images)
before the first iteration and after every epoch, so the curve shows whether the starting features are kept; the
continued arms also on classes 0-4 at the end (what was forgotten). The table (``<work-dir>/results.md``) has
(a) the starting backbone, (b) each continued arm, (c) scratch, (d) untrained, (e) classes 0-4 before and after,
per seed; ``knn_curves.png`` the curves. Finished runs are skipped when the command is repeated; once the source
exists, other seeds or arms can run in processes of their own sharing the work dir (each run is recorded under a
lock), and a command whose sizes or epochs differ from the work dir's is refused.
"""

import argparse
import os
import os.path as osp

import numpy as np
import torch

from mmmst.apis import budgeted_cfg, pretrain_and_evaluate
from mmmst.datasets.fashion_mnist import prepare_fashion_mnist, read_fashion_mnist

from .results import check_budget, load_results, record_run

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/mst/mst_vit-2l128-p4_1xb64-coslr-10e_fashion-mnist.py')
SOURCE_CLASSES, TARGET_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)

#: the levers of each continued arm, as config changes (None: the arm starts from a random network)
ARMS = {
    'scratch': None,
    # the demo's recipe unchanged: lr 1e-3, one warm-up epoch, the teacher temperature warm-up
    'naive': {},
    # a tenth of the learning rate: smaller steps away from the start
    'low-lr': {'optim_wrapper.optimizer.lr': 1e-4},
    # head first: the backbone (student and so the teacher) frozen for the first epoch while the fresh
    # projection head and decoder learn; then a tenth of the learning rate
    'head-first': {'optim_wrapper.optimizer.lr': 1e-4, 'freeze_backbone_epochs': 1},
    # head first, with the head and decoder at the demo's lr 1e-3 and the backbone at a tenth of it (mmengine's
    # paramwise custom_keys): the fresh parts learn as fast as from scratch, the backbone moves as in low-lr
    'slow-backbone': {
        'freeze_backbone_epochs': 1,
        'optim_wrapper.paramwise_cfg.custom_keys': {'backbone': {'lr_mult': 0.1}},
    },
    # head first at the demo's learning rate: the frozen first epoch alone, without the smaller steps
    'head-first-full-lr': {'freeze_backbone_epochs': 1},
    # head first without the learning-rate warm-up (LinearLR's start factor 1): the head and decoder learn at
    # the full lr from the first iteration of the frozen epoch
    'head-first-no-warmup': {
        'optim_wrapper.optimizer.lr': 1e-4,
        'freeze_backbone_epochs': 1,
        'param_scheduler.0.start_factor': 1.0,
    },
    # head first without DINO's freeze of the prototypes (the neck's last layer) in epoch 1: the whole fresh head
    # learns while the backbone is frozen
    'head-first-prototypes': {
        'optim_wrapper.optimizer.lr': 1e-4,
        'freeze_backbone_epochs': 1,
        'keep_last_layer_freeze': False,
    },
    # a longer head-first phase: the backbone frozen for three epochs of ten
    'head-first-3': {'optim_wrapper.optimizer.lr': 1e-4, 'freeze_backbone_epochs': 3},
    # head first with a slower teacher (m from 0.999 instead of the demo's 0.99): the teacher, which the k-NN
    # reads, averages the student over ~1,000 steps instead of ~100
    'slow-teacher': {'optim_wrapper.optimizer.lr': 1e-4, 'freeze_backbone_epochs': 1, 'model.teacher_momentum': 0.999},
    # head first with the teacher's temperature at its final 0.07 from the start (no warm-up from 0.04): the
    # warm-up protects a random network from collapse, a pretrained one may not need it
    'no-temp-warmup': {
        'optim_wrapper.optimizer.lr': 1e-4,
        'freeze_backbone_epochs': 1,
        'model.head.warmup_teacher_temp': 0.07,
    },
}


def class_indices(labels: np.ndarray, classes, per_class=None):
    """Indices of the first ``per_class`` images of each class in ``classes`` (all: None), in file order."""
    keep = []
    for c in classes:
        found = np.flatnonzero(labels == c)
        keep.extend(found[:per_class].tolist())
    return sorted(keep)


def arm_cfg(args, name, seed, classes, work_dir, levers, train_labels, test_labels):
    source = name == 'source'
    epochs = args.source_epochs if source else args.epochs
    cfg = budgeted_cfg(args.config, work_dir, args.data_root, 0, 0, 0, max_epochs=epochs)
    per_class = args.source_per_class if source else args.per_class
    cfg.train_dataloader.dataset.indices = class_indices(train_labels, classes, per_class)
    cfg.knn_bank_dataloader.dataset.indices = class_indices(train_labels, classes, args.per_class)
    cfg.knn_query_dataloader.dataset.indices = class_indices(test_labels, classes, args.queries_per_class)
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.randomness = dict(seed=seed)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(
            type='KNNMonitorHook',
            bank_dataloader=cfg.knn_bank_dataloader.to_dict(),
            query_dataloader=cfg.knn_query_dataloader.to_dict(),
            num_classes=10,
            at_start=True,
        )
    ]
    levers = dict(levers or {})
    freeze = levers.pop('freeze_backbone_epochs', 0)
    if freeze:
        cfg.custom_hooks.append(dict(type='FreezeLastLayerHook', freeze_epochs=freeze, module_name='backbone'))
    if levers.pop('keep_last_layer_freeze', True) is False:  # drop DINO's freeze of the prototypes
        cfg.custom_hooks = [
            h for h in cfg.custom_hooks if not (h['type'] == 'FreezeLastLayerHook' and 'module_name' not in h)
        ]
    if levers:
        cfg.merge_from_dict(levers)
    return cfg


def export_import(checkpoint: str, config: str, out_dir: str) -> str:
    """The source teacher backbone out to timm and back, through the library calls of ``mst_to_timm.py`` and
    ``timm_to_mst.py``: the weights file a continued arm starts from."""
    from mmengine.config import Config

    from mmmst.apis.export import read_backbone
    from mmmst.apis.timm_format import write_timm
    from mmmst.apis.timm_import import write_imported_backbone

    timm_file, mst_file = osp.join(out_dir, 'source_timm.pth'), osp.join(out_dir, 'source_imported.pth')
    backbone_cfg = Config.fromfile(config).model.backbone.to_dict()
    _, backbone = read_backbone(checkpoint, timm_file, kind='timm')
    write_timm(backbone, backbone_cfg, timm_file, what=checkpoint)
    write_imported_backbone(timm_file, mst_file, backbone_cfg)
    return mst_file


def knn_on(model, cfg, classes, train_labels, test_labels, args, log):
    from mmmst.apis import knn_top1_on_loaders

    cfg = cfg.copy()
    cfg.knn_bank_dataloader.dataset.indices = class_indices(train_labels, classes, args.per_class)
    cfg.knn_query_dataloader.dataset.indices = class_indices(test_labels, classes, args.queries_per_class)
    return knn_top1_on_loaders(model.extract_feat, model, cfg, log=log, name=f'teacher on classes {classes}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--arms', nargs='+', default=list(ARMS), choices=list(ARMS))
    parser.add_argument('--epochs', type=int, default=10, help='epochs of the source and of every arm')
    parser.add_argument('--per-class', type=int, default=300, help='training images per class of classes 5-9')
    parser.add_argument('--source-per-class', type=int, default=1000, help='training images per class of 0-4')
    parser.add_argument('--source-epochs', type=int, default=10, help='epochs of the source pretraining')
    parser.add_argument('--source-seed', type=int, default=0, help='seed of the one source pretraining')
    parser.add_argument('--queries-per-class', type=int, default=300, help='k-NN test images per class')
    parser.add_argument('--work-dir', default='work_dirs/continue_pretraining')
    args = parser.parse_args(argv)
    prepare_fashion_mnist(args.data_root)
    train_labels = read_fashion_mnist(args.data_root, 'train')[1]
    test_labels = read_fashion_mnist(args.data_root, 'test')[1]
    os.makedirs(args.work_dir, exist_ok=True)
    results_file = osp.join(args.work_dir, 'results.json')
    budget = run_budget(args)
    results = load_results(results_file)
    check_budget(results, budget, results_file, older=run_budget(parser.parse_args([])))

    def save(key, metrics):
        # under a lock, so processes running other seeds or arms in the same work dir keep each other's runs
        record_run(results_file, key, dict(budget=budget, **metrics))
        results.update(load_results(results_file))
        write_table(results, args)

    # one source backbone, as a user has one public backbone; the seeds vary what is done with it
    source_dir = osp.join(args.work_dir, 'source')
    if 'source' not in results:
        cfg = arm_cfg(args, 'source', args.source_seed, SOURCE_CLASSES, source_dir, {}, train_labels, test_labels)
        log = lambda line: print(f'[source] {line}', flush=True)  # noqa: E731
        save('source', pretrain_and_evaluate(cfg, baselines=True, log=log, quiet=True))
    weights = osp.join(args.work_dir, 'source_imported.pth')
    if not osp.exists(weights):
        weights = export_import(osp.join(source_dir, f'epoch_{args.source_epochs}.pth'), args.config, args.work_dir)
    for seed in args.seeds:
        log = lambda line, seed=seed: print(f'[seed {seed}] {line}', flush=True)  # noqa: E731
        seed_dir = osp.join(args.work_dir, f'seed{seed}')
        for arm in args.arms:
            key = f'{arm}_seed{seed}'
            if key in load_results(results_file):  # another process may have run it meanwhile
                continue
            cfg = arm_cfg(args, arm, seed, TARGET_CLASSES, osp.join(seed_dir, arm), ARMS[arm], train_labels,
                          test_labels)  # fmt: skip
            if ARMS[arm] is not None:
                cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=weights, prefix='backbone.')

            def forgetting(model, cfg, arm=arm, log=log):
                if ARMS[arm] is None:
                    return {}
                return dict(knn_top1_source=knn_on(model, cfg, SOURCE_CLASSES, train_labels, test_labels, args, log))

            log(f'arm {arm}')
            save(
                key,
                pretrain_and_evaluate(cfg, baselines=arm == 'scratch', log=log, after_training=forgetting, quiet=True),
            )
    plot_curves(results, args)


def run_budget(args) -> dict:
    """What every run of one work dir shares: the recipe, the source, the sizes and epochs."""
    return dict(
        config=osp.relpath(args.config, ROOT),
        source_per_class=args.source_per_class,
        source_epochs=args.source_epochs,
        source_seed=args.source_seed,
        per_class=args.per_class,
        epochs=args.epochs,
        queries_per_class=args.queries_per_class,
    )


def _mean_std(values):
    return (
        (f'{np.mean(values):.2f} ± {np.std(values):.2f}' if len(values) > 1 else f'{values[0]:.2f}') if values else '-'
    )


def write_table(results, args):
    """``results.md``: (a)-(e) per seed and their mean."""
    seeds = sorted({int(k.rsplit('seed', 1)[1]) for k in results if '_seed' in k})
    rows = []
    get = lambda arm, seed, metric: results.get(f'{arm}_seed{seed}', {}).get(metric)  # noqa: E731
    lines = [
        f'# Continuing from a backbone pretrained on classes 0-4 ({args.source_per_class} images per class, '
        f'{args.source_epochs} epochs, seed {args.source_seed}) on classes 5-9 ({args.per_class} images per class, '
        f'{args.epochs} epochs each)',
        '',
        f'The source on classes 0-4: k-NN {results.get("source", {}).get("knn_top1_mst", float("nan")):.2f}, '
        f'untrained {results.get("source", {}).get("knn_top1_random_init", float("nan")):.2f}.',
        '',
        'k-NN top-1 on classes 5-9 (5-class task) unless noted; "curve min" is the lowest point of the run\'s '
        'k-NN curve (iteration 0 included).',
        '',
        '| what | ' + ' | '.join(f'seed {s}' for s in seeds) + ' | mean ± std |',
        '| --- | ' + ' | '.join('---' for _ in seeds) + ' | --- |',
    ]

    def row(label, values):
        shown = [f'{v:.2f}' if v is not None else '-' for v in values]
        rows.append(f'| {label} | ' + ' | '.join(shown) + f' | {_mean_std([v for v in values if v is not None])} |')

    arms = [a for a in ARMS if a != 'scratch' and any(f'{a}_seed{s}' in results for s in seeds)]
    curve = lambda arm, s: get(arm, s, 'knn_top1_per_epoch') or [None]  # noqa: E731
    row('(d) untrained network', [get('scratch', s, 'knn_top1_random_init') for s in seeds])
    starts = [next((curve(a, s)[0] for a in arms if curve(a, s)[0]), None) for s in seeds]
    row('(a) starting backbone (imported)', starts)
    row('(c) from scratch', [get('scratch', s, 'knn_top1_mst') for s in seeds])
    for arm in arms:
        row(f'(b) continued, {arm}', [get(arm, s, 'knn_top1_mst') for s in seeds])
        row(f'    curve min, {arm}', [min(c) if c[0] is not None else None for c in (curve(arm, s) for s in seeds)])
    source = results.get('source', {})
    row('(e) classes 0-4, source before continuing', [source.get('knn_top1_mst') for _ in seeds])
    for arm in arms:
        row(f'(e) classes 0-4 after, {arm}', [get(arm, s, 'knn_top1_source') for s in seeds])
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write('\n'.join(lines + rows) + '\n')


def plot_curves(results, args):
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for arm in ARMS:
        curves = [v['knn_top1_per_epoch'] for k, v in results.items() if k.startswith(f'{arm}_seed')]
        if curves:
            mean = np.mean([c[: min(map(len, curves))] for c in curves], axis=0)
            ax.plot(range(len(mean)), mean, marker='o', label=f'{arm} ({len(curves)} seeds)')
    ax.set_xlabel('epoch (0: before the first iteration)')
    ax.set_ylabel('k-NN top-1 on classes 5-9 (%)')
    ax.set_title(f'{args.per_class} images per class of classes 5-9, {args.epochs} epochs', fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(bbox_to_anchor=(1.02, 1), loc='upper left', fontsize=8)
    fig.tight_layout()
    fig.savefig(osp.join(args.work_dir, 'knn_curves.png'), dpi=120)


if __name__ == '__main__':
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', 2)))
    main()
