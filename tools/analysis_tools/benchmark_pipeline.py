"""Images per second per dataloader worker of three multi-crop pipelines, and the batched stage's time per batch.

    python tools/analysis_tools/benchmark_pipeline.py                        # 200 generated JPEGs, 3 rounds
    python tools/analysis_tools/benchmark_pipeline.py --folder <dir of JPEGs> --rounds 5 --device cuda

Every pipeline makes DINO's 10 views (2 x 224 px + 8 x 96 px) of the same images, in one process with one
thread (what one dataloader worker has):

(a) the reference: DINO's ``DataAugmentationDINO`` written with torchvision and PIL (crop, flip, colour jitter,
    grayscale, blur, solarize, to tensor, normalise, per image);
(b) mmmst's PIL path: ``LoadImageWithPath`` + ``MultiCropViews(photometric=True)`` + ``PackInputs``;
(c) the split pipeline's worker stage: ``LoadImageWithPath`` + ``MultiCropViews(photometric=False,
    backend='cv2')`` + ``PackInputs`` (decode, crop, flip; uint8 views); (c') the same with PIL's resize;
(d) the split pipeline's batched stage: ``MultiCropDataPreprocessor`` on a batch of ``--batch`` samples' uint8
    views on ``--device``, seconds per batch.

Rounds are interleaved (a, b, c, d, a, b, ...) so that load on a shared machine hits every pipeline alike; the
medians are printed, with (b) and (c) as multiples of (a).
"""

import argparse
import os
import os.path as osp
import random
import statistics
import tempfile
import time

import numpy as np
import torch

SIZES = [(500, 375), (500, 333), (375, 500), (640, 480), (800, 600), (1000, 563), (500, 500), (333, 500)]
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def write_photos(folder: str, num: int, seed: int = 0) -> list:
    """``num`` JPEGs (quality 90) of ImageNet sizes: smooth colour fields with edges and fine grain, so that they
    compress and decode like photographs rather than like noise or flat colour."""
    import cv2

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(num):
        width, height = SIZES[i % len(SIZES)]
        coarse = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
        image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        for _ in range(3):  # a few hard-edged shapes
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            colour = [int(c) for c in rng.integers(0, 256, 3)]
            cv2.circle(image, (x, y), int(rng.integers(20, min(width, height) // 3)), colour, -1)
        image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
        paths.append(osp.join(folder, f'photo_{i:04d}.JPEG'))
        cv2.imwrite(paths[-1], image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return paths


def dino_reference():
    """DINO's DataAugmentationDINO (2 global 224 px + 8 local 96 px), written with torchvision and PIL.

    An independent reference: its numbers are written out here as DINO's main_dino.py writes them, on purpose not
    read from ``mmmst.dino_recipe``, so that a change there shows up as a difference from DINO."""
    from PIL import Image, ImageFilter, ImageOps
    from torchvision import transforms as T

    def blur(p):
        def apply(img):
            if random.random() >= p:
                return img
            return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))

        return T.Lambda(apply)

    def solarize(p):
        return T.Lambda(lambda img: ImageOps.solarize(img) if random.random() < p else img)

    flip_jitter = [
        T.RandomHorizontalFlip(p=0.5),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
    ]
    normalize = [T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    bicubic = T.InterpolationMode.BICUBIC
    global_crop = T.RandomResizedCrop(224, scale=(0.4, 1.0), interpolation=bicubic)
    local_crop = T.RandomResizedCrop(96, scale=(0.05, 0.4), interpolation=bicubic)
    global_1 = T.Compose([global_crop, *flip_jitter, blur(1.0), *normalize])
    global_2 = T.Compose([global_crop, *flip_jitter, blur(0.1), solarize(0.2), *normalize])
    local = T.Compose([local_crop, *flip_jitter, blur(0.5), *normalize])

    def run(path):
        image = Image.open(path).convert('RGB')
        return [global_1(image), global_2(image)] + [local(image) for _ in range(8)]

    return run


def mmmst_pipeline(photometric: bool, backend: str = 'pillow'):
    """LoadImageWithPath + MultiCropViews + PackInputs, as the ImageNet configs build them."""
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    init_default_scope('mmpretrain')
    views = dict(type='MultiCropViews', global_crop_size=224, local_crop_size=96, num_local_views=8,
                 global_crop_scale=(0.4, 1.0), local_crop_scale=(0.05, 0.4), photometric=photometric,
                 backend=backend)  # fmt: skip
    pipeline = Compose([dict(type='LoadImageWithPath'), views, dict(type='PackInputs')])
    return lambda path: pipeline(dict(img_path=path))


def resize_gap(paths, seed: int = 0) -> float:
    """Mean absolute difference (0-255) between OpenCV's and PIL's bicubic resize of the same random crops
    (DINO's global and local sizes and scales): what the worker stage's fast path changes in the pixels."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(seed)
    gaps = []
    for path in paths:
        image = cv2.imread(path)
        h, w = image.shape[:2]
        for size, (lo, hi) in [(224, (0.4, 1.0))] * 2 + [(96, (0.05, 0.4))] * 8:
            side = np.sqrt(rng.uniform(lo, hi) * h * w)
            ch, cw = min(int(side), h), min(int(side), w)
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            crop = np.ascontiguousarray(image[y : y + ch, x : x + cw])
            fast = cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
            exact = np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC), dtype=np.float32)
            gaps.append(np.abs(fast - exact).mean())
    return float(np.mean(gaps))


def images_per_second(run, paths) -> float:
    start = time.perf_counter()
    for path in paths:
        run(path)
    return len(paths) / (time.perf_counter() - start)


def batched_stage(paths, batch: int, device: str):
    """Seconds per batch of the batched stage on ``batch`` samples' worker-stage views (made once)."""
    from mmengine.dataset import default_collate

    from mmmst.models import MultiCropDataPreprocessor

    worker = mmmst_pipeline(photometric=False, backend='cv2')
    data = default_collate([worker(paths[i % len(paths)]) for i in range(batch)])
    preprocessor = MultiCropDataPreprocessor(mean=MEAN, std=STD, to_rgb=True).to(device)

    def run():
        start = time.perf_counter()
        preprocessor(data, training=True)
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    run()  # warm-up (kernels, allocator)
    return run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--folder', help='JPEGs to read (default: generate --num of them in a temporary folder)')
    parser.add_argument('--num', type=int, default=200, help='images to generate')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--batch', type=int, default=128, help='samples per batch of the batched stage')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)  # one worker = one thread
    import cv2

    cv2.setNumThreads(0)
    import mmmst  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or tmp
        paths = sorted(osp.join(folder, f) for f in os.listdir(folder)) if args.folder else write_photos(tmp, args.num)
        pipelines = {
            '(a) DINO reference (torchvision, PIL)': dino_reference(),
            '(b) mmmst PIL path': mmmst_pipeline(photometric=True),
            '(c) split: worker stage, cv2 bicubic (the default)': mmmst_pipeline(photometric=False, backend='cv2'),
            "(c') split: worker stage, PIL bicubic": mmmst_pipeline(photometric=False, backend='pillow'),
        }
        torch.set_num_threads(os.cpu_count() if args.device == 'cpu' else 1)
        stage = batched_stage(paths, args.batch, args.device)
        torch.set_num_threads(1)
        rates = {name: [] for name in pipelines}
        seconds = []
        for r in range(args.rounds):
            for name, run in pipelines.items():
                rates[name].append(images_per_second(run, paths))
            torch.set_num_threads(os.cpu_count() if args.device == 'cpu' else 1)
            seconds.append(stage())
            torch.set_num_threads(1)
            print(f'round {r + 1}/{args.rounds}: ' + ', '.join(f'{v[-1]:.1f}' for v in rates.values())
                  + f' images/s; batched stage {seconds[-1]:.3f} s', flush=True)  # fmt: skip
        gap = resize_gap(paths)
    reference = statistics.median(rates['(a) DINO reference (torchvision, PIL)'])
    print(f'\n{len(paths)} images, {args.rounds} interleaved rounds, medians; one process, one thread')
    print('| pipeline | images/s per worker | x (a) |\n| --- | --- | --- |')
    for name, values in rates.items():
        print(f'| {name} | {statistics.median(values):.1f} | {statistics.median(values) / reference:.2f} |')
    print(f'| (d) split: batched stage, {args.batch} samples on {args.device} | {statistics.median(seconds):.3f} s '
          'per batch | |')  # fmt: skip
    print(f'\nresize: mean |cv2 bicubic - PIL bicubic| over 10 crops of every image: {gap:.2f} '
          'gray levels (of 255)')  # fmt: skip


if __name__ == '__main__':
    main()
