r"""One prepared report of what a training step costs on a GPU, for the day one is at hand (under 8 minutes).

    python tools/analysis_tools/gpu_report.py                               # on a GPU machine
    python tools/analysis_tools/gpu_report.py --device cpu --quick          # a check of the script itself

For ViT-S/16 and Swin-T (the ImageNet configs, batch 64, 2 x 224 + 8 x 96 px views, AMP on a GPU), it measures:

* the DINO-mode and the full-MST step, eager and under ``compile`` (``MST.compile_networks``), seconds per step and
  their ratio in the same run;
* the batched photometric stage's share of the MST step (``MultiCropDataPreprocessor`` on uint8 views);
* device-to-host syncs per step: ``torch.cuda.set_sync_debug_mode('warn')`` counts what the GPU really waited for,
  and the dispatch-mode count of ``mmmst.runtime.op_counter`` (the same on any machine) says where;
* end-to-end images/s of the MST step fed by dataloader workers (``--workers``, default 8) decoding a generated
  folder of JPEGs, against the same step on tensors already in memory.

It writes one JSON (``--out``, default ``work_dirs/gpu_report.json``) and prints one table. ``--quick`` shrinks the
networks, the batch and the repeats so that the whole script runs in about a minute on a CPU, ``compile`` with
dynamo's ``eager`` backend (the graph capture without inductor's code generation).
"""

import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'ViT-S/16': osp.join(ROOT, 'configs/mst/mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py'),
    'Swin-T': osp.join(ROOT, 'configs/mst/mst_swin-tiny_8xb128-amp-coslr-100e_in1k.py'),
}
#: --quick: networks of the same kind, a few channels wide (width, and the model keys that carry it)
QUICK_BACKBONES = {
    'ViT-S/16': (64, dict(arch=dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=128))),
    'Swin-T': (128, dict(arch=dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]))),
}
ARMS = {'DINO mode': dict(mask_generator=None, decoder=None), 'full MST': {}}


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def seconds_per_call(fn, warmup: int, iters: int, device) -> float:
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / iters


def build(cfg, arm: str, args, device):
    """The config's model for one arm, on ``device``, with its optimizer wrapper (AMP on a GPU)."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS

    model_cfg = cfg.model.copy()
    model_cfg.update(ARMS[arm])
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))  # as the Runner builds it
    if args.quick:
        width, backbone = QUICK_BACKBONES[args.current_arch]
        model_cfg.backbone.update(backbone)
        model_cfg.neck.update(in_channels=width, hidden_channels=64, bottleneck_channels=32, out_channels=256)
        model_cfg.head.update(out_channels=256)
        if model_cfg.get('decoder'):
            model_cfg.decoder.update(in_channels=width)
    model = MODELS.build(model_cfg).to(device).train()
    wrapper = cfg.optim_wrapper.copy()
    if device.type == 'cuda':
        wrapper.update(type='AmpOptimWrapper', dtype='float16')
    else:
        wrapper.type = 'OptimWrapper'
        for key in ('loss_scale', 'dtype'):
            wrapper.pop(key, None)
    return model, build_optim_wrapper(model, wrapper)


def synthetic_views(cfg, batch: int, num_local: int, device):
    """uint8 views of the config's sizes, as the dataloader workers hand them over."""
    views = next(t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'MultiCropViews')

    def view(size):
        return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)

    return [view(views['global_crop_size']) for _ in range(2)] + [
        view(views['local_crop_size']) for _ in range(num_local)
    ]


def cuda_syncs_per_step(step, device) -> int:
    """Syncs the GPU really made in one step, counted by CUDA's sync debug mode (None off a GPU)."""
    if device.type != 'cuda':
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            step()
            torch.cuda.synchronize()
        finally:
            torch.cuda.set_sync_debug_mode('default')
    return sum('synchronizing' in str(w.message) for w in caught)


def write_jpegs(folder: str, count: int, size: int) -> None:
    """``count`` JPEGs of ``size`` px with smooth random content (decoding costs what a photo costs)."""
    import cv2

    rng = np.random.default_rng(0)
    for i in range(count):
        small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
        image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(osp.join(folder, f'{i:05d}.jpg'), image)


def images_per_second_from_jpegs(cfg, model, optim, args, device, folder: str) -> float:
    """The MST step fed by ``args.workers`` dataloader workers reading the JPEG folder (decode, crop, flip)."""
    from mmengine.runner import Runner

    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(batch_size=args.batch, num_workers=args.workers, persistent_workers=args.workers > 0)
    loader_cfg.dataset = dict(
        type='CustomDataset', data_root=folder, with_label=False, pipeline=loader_cfg.dataset.pipeline
    )
    for transform in loader_cfg.dataset['pipeline']:
        if transform['type'] == 'MultiCropViews':
            transform['num_local_views'] = args.locals
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batches = iter(loader)
    model.train_step(next(batches), optim)  # the workers start, the first batch
    synchronize(device)
    start, images = time.perf_counter(), 0
    for data in batches:
        model.train_step(data, optim)
        images += args.batch
    synchronize(device)
    return images / (time.perf_counter() - start)


def report_arch(name: str, args, device, folder: str) -> dict:
    from mmengine.config import Config

    from mmmst.runtime.op_counter import count_train_step

    args.current_arch = name
    cfg = Config.fromfile(CONFIGS[name])
    inputs = synthetic_views(cfg, args.batch, args.locals, device)
    data = dict(inputs=inputs, data_samples=None)
    out = dict(config=osp.relpath(CONFIGS[name], ROOT))
    for arm in ARMS:
        for compiled in (False, True) if args.compile else (False,):
            model, optim = build(cfg, arm, args, device)

            def step(model=model, optim=optim):
                model.train_step(data, optim)

            if compiled:
                torch._dynamo.reset()  # each arm compiles afresh (the necks share one code object and its cache)
                model.compile_networks(dict(backend='eager') if args.quick else {})
            key = f'{arm}{", compile" if compiled else ""}'
            print(f'[{name}] {key} ...', flush=True)
            seconds = seconds_per_call(step, args.warmup, args.iters, device)
            out[f'{key}: s/step'] = seconds
            if compiled or arm != 'full MST':
                continue
            preprocess = seconds_per_call(lambda m=model: m.data_preprocessor(data, True), 1, args.iters, device)
            out['photometric stage share of the MST step'] = preprocess / seconds
            out['syncs/step (CUDA sync debug mode)'] = cuda_syncs_per_step(step, device)
            counted = count_train_step(model, optim, data, warmup=0)
            out['syncs/step (counted)'] = counted.sync_count()
            out['syncs in forward + loss (counted)'] = counted.sync_count('forward + loss')
            out['aten ops/step'] = sum(counted.ops.values())
            synthetic = seconds_per_call(step, 0, args.iters, device)
            out['images/s, tensors in memory'] = args.batch / synthetic
            out[f'images/s, JPEG folder, {args.workers} workers'] = images_per_second_from_jpegs(
                cfg, model, optim, args, device, folder
            )
    out['full MST / DINO mode, eager'] = out['full MST: s/step'] / out['DINO mode: s/step']
    if args.compile:
        out['full MST / DINO mode, compile'] = out['full MST, compile: s/step'] / out['DINO mode, compile: s/step']
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--quick', action='store_true', help='tiny networks and repeats: a check of the script')
    parser.add_argument('--batch', type=int, help='images per step (default 64; --quick: 2)')
    parser.add_argument('--locals', type=int, help='local views (default 8; --quick: 2)')
    parser.add_argument('--workers', type=int, help='dataloader workers (default 8; --quick: 0)')
    parser.add_argument('--no-compile', dest='compile', action='store_false', help='leave the compiled arms out')
    parser.add_argument('--out', default=osp.join('work_dirs', 'gpu_report.json'))
    args = parser.parse_args(argv)
    quick = args.quick
    args.batch = args.batch or (2 if quick else 64)
    args.locals = args.locals if args.locals is not None else (2 if quick else 8)
    args.workers = args.workers if args.workers is not None else (0 if quick else 8)
    args.warmup, args.iters = (1, 1) if quick else (3, 10)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        sys.exit('error: --device cuda: no GPU is visible; give --device cpu for a check of the script')
    if osp.isdir(args.out) or not args.out.endswith('.json'):
        sys.exit(f'error: --out {args.out!r} must be a .json file name')

    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope

    import mmmst  # noqa: F401  (registers the components)

    init_default_scope('mmpretrain')
    MessageHub.get_current_instance().update_info('max_iters', 10_000)
    report = dict(
        device=torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu', torch=torch.__version__
    )
    report.update(batch=args.batch, local_views=args.locals, amp=device.type == 'cuda', quick=quick)
    with tempfile.TemporaryDirectory() as folder:
        write_jpegs(folder, count=args.batch * (3 if quick else 12), size=96 if quick else 320)
        for name in CONFIGS:
            report[name] = report_arch(name, args, device, folder)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out + '.partial', 'w') as f:
        json.dump(report, f, indent=1)
    os.replace(args.out + '.partial', args.out)
    print_table(report)
    print(f'written: {args.out}')


def print_table(report: dict) -> None:
    names = list(CONFIGS)
    rows = sorted({k for n in names for k in report[n] if k != 'config'}, key=lambda k: list(report[names[0]]).index(k))
    print(f'{report["device"]}, batch {report["batch"]}, {report["local_views"]} local views, amp {report["amp"]}')
    print(f'{"":46s}' + ''.join(f'{n:>12s}' for n in names))
    for row in rows:
        cells = []
        for n in names:
            value = report[n].get(row)
            cells.append('-' if value is None else f'{value:.4g}' if isinstance(value, float) else str(value))
        print(f'{row:46s}' + ''.join(f'{c:>12s}' for c in cells))


if __name__ == '__main__':
    main()
