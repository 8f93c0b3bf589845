r"""Training-step cost of MST against DINO (same network, same views), and of the teacher's CLS-attention row.

    python tools/analysis_tools/benchmark_step.py                         # DeiT-S/16, 2 x 224 + 8 x 96 views
    python tools/analysis_tools/benchmark_step.py --batch 64 --locals 2 \
        --config configs/mst/mst_vit-2l128-p4_1xb64-coslr-10e_fashion-mnist.py  # the demo model, a CPU look
    python tools/analysis_tools/benchmark_step.py --amp                   # on a GPU, mixed precision

Prints seconds per iteration for DINO (no mask, no decoder) and MST (attention-guided mask + decoder), their
ratio measured in the same run, and the teacher forward with and without the CLS-attention row.
"""

import argparse
import os.path as osp
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/mst/mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py')


def timed(fn, warmup, iters, device):
    for _ in range(warmup):
        fn()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--locals', type=int, default=8)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--amp', action='store_true')
    args = parser.parse_args(argv)

    from mmengine.config import Config
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mmmst  # noqa: F401

    cfg = Config.fromfile(args.config)
    init_default_scope('mmpretrain')
    MessageHub.get_current_instance().update_info('max_iters', 10_000)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    views = next(t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'MultiCropViews')
    size, local_size = views['global_crop_size'], views['local_crop_size']
    channels = cfg.model.backbone.get('in_channels', 3)
    inputs = [torch.randn(args.batch, channels, size, size, device=device) for _ in range(2)]
    inputs += [torch.randn(args.batch, channels, local_size, local_size, device=device) for _ in range(args.locals)]
    data = dict(inputs=inputs, data_samples=None)
    wrapper = dict(type='AmpOptimWrapper' if args.amp else 'OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4))

    def build(overrides):
        model_cfg = cfg.model.copy()
        model_cfg.update(overrides)
        model = MODELS.build(model_cfg).to(device).train()
        return model, build_optim_wrapper(model, wrapper)

    def step_time(model, optim):
        return timed(lambda: model.train_step(data, optim), args.warmup, args.iters, device)

    def teacher_time(backbone, with_row):
        views = torch.cat(inputs[:2])
        with torch.no_grad(), torch.autocast(device.type, enabled=args.amp):
            return timed(lambda: backbone.encode(views, return_cls_attention=with_row), args.warmup, args.iters, device)

    results = {}
    for arm, overrides in (('DINO', dict(mask_generator=None, decoder=None)), ('MST', {})):
        model, optim = build(overrides)
        results[arm] = step_time(model, optim)
        print(
            f'{arm:5s} {results[arm]:.3f} s/iter ({args.batch} images, 2 x {size} px + {args.locals} x '
            f'{local_size} px views, {device.type}{", amp" if args.amp else ""})',
            flush=True,
        )
    plain = teacher_time(model.teacher.module.backbone, with_row=False)
    with_row = teacher_time(model.teacher.module.backbone, with_row=True)
    print(f'MST / DINO step time: {results["MST"] / results["DINO"]:.3f}')
    print(
        f'teacher forward with / without the CLS-attention row: {with_row / plain:.3f} '
        f'({plain * 1e3:.1f} ms -> {with_row * 1e3:.1f} ms)'
    )


if __name__ == '__main__':
    main()
