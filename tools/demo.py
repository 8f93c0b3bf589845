"""The mmmst demo (`make demo`): pretrain MST on Fashion-MNIST on the CPU, then k-NN evaluate it.

    python tools/demo.py                      # the embedded default: configs/mst/mst_vit-4l128-p4_..._fashion-mnist.py
    python tools/demo.py --max-epochs 1 --train-size 512 --bank-size 1000 --query-size 500   # a quick look

Steps: (1) Fashion-MNIST into data/fashion_mnist/ (Debian's dataset-fashion-mnist, else mmpretrain's download),
(2) MST pretraining in an mmengine Runner, (3) weighted k-NN top-1 on the test set (20 neighbours, T = 0.07) for
the MST teacher, a randomly initialised network of the same shape, and raw pixels. Everything lands in
work_dirs/demo/: the training log, the checkpoint, report.md and metrics.json.
"""

import argparse
import gzip
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(ROOT, 'configs/mst/mst_vit-4l128-p4_1xb64-coslr-5e_fashion-mnist.py')
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']


def prepare_fashion_mnist(data_root: str) -> None:
    """Un-gzip the four idx files into ``data_root``; install or download them first when missing."""
    if all(osp.isfile(osp.join(data_root, f)) for f in FILES):
        return
    os.makedirs(data_root, exist_ok=True)
    if not osp.isdir(DEBIAN_DIR) and shutil.which('apt-get') and os.geteuid() == 0:
        print('[demo] installing Debian package dataset-fashion-mnist ...', flush=True)
        subprocess.run(
            ['apt-get', 'install', '-y', '-q', 'dataset-fashion-mnist'],
            check=False,
            env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'),
            stdout=subprocess.DEVNULL,
        )
    if osp.isdir(DEBIAN_DIR):
        for name in FILES:
            with gzip.open(osp.join(DEBIAN_DIR, name + '.gz')) as src, open(osp.join(data_root, name), 'wb') as dst:
                shutil.copyfileobj(src, dst)
        return
    print("[demo] trying mmpretrain's download of Fashion-MNIST ...", flush=True)
    try:
        from mmpretrain.datasets import FashionMNIST

        FashionMNIST(data_root=data_root, download=True)
    except Exception as err:  # no internet: say what to do instead
        sys.exit(
            f'[demo] Fashion-MNIST is not available ({err}).\n'
            f'  On Debian/Ubuntu as root: apt-get install dataset-fashion-mnist\n'
            f'  Elsewhere: put {", ".join(FILES)} (un-gzipped) into {data_root}'
        )


def build_cfg(args):
    from mmengine.config import Config

    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    cfg.experiment_name = 'demo'
    for loader in ('train_dataloader', 'knn_bank_dataloader', 'knn_query_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
    cfg.train_dataloader.dataset.indices = args.train_size
    cfg.knn_bank_dataloader.dataset.indices = args.bank_size
    cfg.knn_query_dataloader.dataset.indices = args.query_size
    if args.max_epochs is not None:
        cfg.train_cfg.max_epochs = args.max_epochs
        cfg.default_hooks.checkpoint.interval = args.max_epochs
        for scheduler in cfg.param_scheduler:  # keep the schedules inside the shortened run
            scheduler.end = min(scheduler.get('end', args.max_epochs), args.max_epochs)
            scheduler.begin = min(scheduler.get('begin', 0), max(args.max_epochs - 1, 0))
            if 'T_max' in scheduler:
                scheduler.T_max = scheduler.end - scheduler.begin
    return cfg


def knn_eval(encode, model, cfg, num_classes=10):
    """k-NN top-1 (percent) of ``encode`` on the config's bank (train) and query (test) loaders.

    Images go through ``model.data_preprocessor`` (normalisation) before ``encode``.
    """
    from mmengine.runner import Runner

    from mmmst.engine.hooks.knn_monitor_hook import dataloader_batches
    from mmmst.evaluation import extract_features, knn_top1

    feats = []
    for name in ('knn_bank_dataloader', 'knn_query_dataloader'):
        loader = Runner.build_dataloader(cfg[name], seed=0)
        print(f'[demo] features of {len(loader.dataset)} {name.split("_")[1]} images', flush=True)
        feats.append(extract_features(encode, dataloader_batches(model, loader), len(loader)))
        print(flush=True)
    (bank, bank_labels), (query, query_labels) = feats
    return knn_top1(bank, bank_labels, query, query_labels, num_classes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    parser.add_argument('--max-epochs', type=int, default=None, help='override the config (a shorter run)')
    parser.add_argument('--train-size', type=int, default=10000, help='pretraining images (first N of train)')
    parser.add_argument('--bank-size', type=int, default=60000, help='k-NN bank images (first N of train)')
    parser.add_argument('--query-size', type=int, default=10000, help='k-NN query images (first N of test)')
    args = parser.parse_args(argv)
    t0 = time.time()

    prepare_fashion_mnist(args.data_root)
    import torch
    from mmengine.runner import Runner

    import mmmst  # noqa: F401

    cfg = build_cfg(args)
    os.makedirs(args.work_dir, exist_ok=True)
    print(f'[demo] pretraining MST ({osp.basename(args.config)}) in {args.work_dir}', flush=True)
    runner = Runner.from_cfg(cfg)
    runner.train()
    train_minutes = (time.time() - t0) / 60
    model = runner.model.eval()

    metrics = {}
    with torch.no_grad():
        metrics['knn_top1_mst'] = knn_eval(model.extract_feat, model, cfg)
        from mmpretrain.registry import MODELS

        torch.manual_seed(0)
        random_model = MODELS.build(cfg.model)
        random_model.init_weights()  # the same network, never trained
        metrics['knn_top1_random_init'] = knn_eval(random_model.eval().extract_feat, model, cfg)
        metrics['knn_top1_raw_pixels'] = knn_eval(lambda x: x.flatten(1), model, cfg)
    metrics = {k: round(v, 2) for k, v in metrics.items()}
    metrics.update(
        train_images=args.train_size,
        bank_images=args.bank_size,
        query_images=args.query_size,
        epochs=cfg.train_cfg.max_epochs,
        iterations=runner.iter,
        minutes=round((time.time() - t0) / 60, 1),
    )
    with open(osp.join(args.work_dir, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=2)

    report = f"""# mmmst demo: MST on Fashion-MNIST (CPU)

Config: `{osp.relpath(args.config, ROOT)}`; {runner.iter} iterations ({cfg.train_cfg.max_epochs} epochs on the first
{args.train_size} training images), {train_minutes:.1f} min of pretraining; {metrics['minutes']} min in all.

k-NN top-1 on the first {args.query_size} test images (bank: the first {args.bank_size} training images;
20 neighbours, T = 0.07, L2-normalised features):

| features | k-NN top-1 (%) |
| --- | --- |
| MST teacher (CLS token) | {metrics['knn_top1_mst']:.2f} |
| same network, random initialisation | {metrics['knn_top1_random_init']:.2f} |
| raw pixels | {metrics['knn_top1_raw_pixels']:.2f} |

A few CPU minutes of self-supervised pretraining are far from the paper's 100 GPU-epochs on ImageNet; the
numbers say whether the features moved away from random, not what MST reaches at scale.
"""
    with open(osp.join(args.work_dir, 'report.md'), 'w') as f:
        f.write(report)
    print(report)
    print(f'[demo] written: {args.work_dir}/metrics.json, report.md, the log and the checkpoint')


if __name__ == '__main__':
    main()
