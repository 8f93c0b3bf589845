"""The mmmst demo (`make demo`): pretrain MST on Fashion-MNIST on the CPU, then k-NN evaluate it.

    python tools/demo.py                      # the embedded default: configs/mst/mst_vit-2l128-p4_..._fashion-mnist.py
    python tools/demo.py --max-epochs 1 --train-size 512 --bank-size 1000 --query-size 500   # a quick look

Steps: (1) Fashion-MNIST into data/fashion_mnist/ (mmmst.datasets.prepare_fashion_mnist: Debian's
dataset-fashion-mnist offline, which `make demo` installs first where it can, else torchvision's download of the
original files, MD5 checked),
(2) MST pretraining in an mmengine Runner, (3) weighted k-NN top-1 on the test set (20 neighbours, T = 0.07) for
the MST teacher, a randomly initialised network of the same shape, and raw pixels. Everything lands in
work_dirs/demo/: the training log, the checkpoint, report.md and metrics.json.
"""

import argparse
import glob
import json
import os
import os.path as osp
import time
import warnings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(ROOT, 'configs/mst/mst_vit-2l128-p4_1xb64-coslr-10e_fashion-mnist.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    parser.add_argument('--max-epochs', type=int, default=None, help='override the config (a shorter run)')
    parser.add_argument('--train-size', type=int, default=10000, help='pretraining images (first N of train)')
    parser.add_argument('--bank-size', type=int, default=10000, help='k-NN bank images (first N of train)')
    parser.add_argument('--query-size', type=int, default=10000, help='k-NN query images (first N of test)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()

    from mmmst.apis import budgeted_cfg, pretrain_and_evaluate
    from mmmst.datasets.fashion_mnist import prepare_fashion_mnist
    from mmmst.errors import exit_on_refusal
    from mmmst.visualization import draw_attention_and_masks, draw_losses, draw_monitors

    def log(message):
        print(f'[demo] {message}', flush=True)

    with exit_on_refusal():  # the data step (a no-op when the files are there)
        prepare_fashion_mnist(args.data_root, log=lambda line: print(line, flush=True))
    cfg = budgeted_cfg(
        args.config, args.work_dir, args.data_root, args.train_size, args.bank_size, args.query_size, args.max_epochs
    )
    cfg.experiment_name = 'demo'
    os.makedirs(args.work_dir, exist_ok=True)
    log(f'pretraining MST ({osp.basename(args.config)}) in {args.work_dir}')

    def pictures(model, cfg):
        draw_attention_and_masks(model, cfg, osp.join(args.work_dir, 'attention_and_masks.png'))
        return {}

    warnings.filterwarnings('ignore', message='The given NumPy array is not writable')  # mmpretrain's MNIST reader
    log('one line per epoch here; the full training log: ' + osp.join(args.work_dir, '<timestamp>', '<timestamp>.log'))
    metrics = pretrain_and_evaluate(cfg, log=log, after_training=pictures, quiet=True)
    scalars = sorted(glob.glob(osp.join(args.work_dir, '*', 'vis_data', 'scalars.json')))
    if scalars:
        draw_losses(scalars[-1], osp.join(args.work_dir, 'losses.png'))
        draw_monitors(scalars[-1], osp.join(args.work_dir, 'monitors.png'), cfg.model.head.out_channels)
    iterations = metrics.pop('iterations')
    metrics = {k: round(v, 2) for k, v in metrics.items()}
    metrics.update(
        train_images=args.train_size,
        bank_images=args.bank_size,
        query_images=args.query_size,
        epochs=cfg.train_cfg.max_epochs,
        iterations=iterations,
        minutes=round((time.time() - t0) / 60, 1),
    )
    with open(osp.join(args.work_dir, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=2)

    report = demo_report(args, metrics, iterations)
    with open(osp.join(args.work_dir, 'report.md'), 'w') as f:
        f.write(report)
    print(report)
    print(
        f'[demo] written: {args.work_dir}/metrics.json, report.md, losses.png, monitors.png, attention_and_masks.png, '
        'the log and the checkpoint'
    )


def demo_report(args, metrics: dict, iterations: int) -> str:
    """report.md: the run, the k-NN table and what the pictures show."""
    return f"""# mmmst demo: MST on Fashion-MNIST (CPU)

Config: `{osp.relpath(args.config, ROOT)}`; {iterations} iterations ({metrics['epochs']} epochs on the first
{args.train_size} training images); {metrics['minutes']} min in all, k-NN evaluation included.

k-NN top-1 on the first {args.query_size} test images (bank: the first {args.bank_size} training images;
20 neighbours, T = 0.07, L2-normalised features):

| features | k-NN top-1 (%) |
| --- | --- |
| MST teacher (CLS token) | {metrics['knn_top1_mst']:.2f} |
| same network, randomly initialised, not trained | {metrics['knn_top1_random_init']:.2f} |
| raw pixels | {metrics['knn_top1_raw_pixels']:.2f} |

Raw pixels are strong on Fashion-MNIST (centred, aligned silhouettes: the pixels alone separate the classes); what
the pretraining adds is the teacher's gain over the same network untrained.

Pictures: `losses.png` (training losses), `monitors.png` (the collapse monitors: teacher entropy against
log K, KL(teacher || student), the batch spread of the teacher's features, the centre's norm),
`attention_and_masks.png` (test images, the teacher's CLS attention, and the attention-guided mask drawn from it).

A few CPU minutes of self-supervised pretraining are far from the paper's 100 GPU-epochs on ImageNet; the
numbers say whether the features moved away from random, not what MST reaches at scale.
"""


if __name__ == '__main__':
    main()
