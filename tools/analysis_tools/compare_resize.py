"""How much shrinking without antialiasing changes a feature: the cosine between the teacher CLS features of an image
shrunk by OpenCV's bilinear resize (no antialiasing) and by PIL's bicubic (what the folder configs' evaluation
pipeline uses), on generated images from fine texture to smooth content.

    python tools/analysis_tools/compare_resize.py [config] [--checkpoint ckpt]

Without a checkpoint the network is the config's, randomly initialised (the aliasing is in the input).
"""

import argparse
import copy
import os.path as osp
import sys
import tempfile

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_images(size: int = 512) -> dict:
    """Generated images, finest texture first."""
    rng = np.random.default_rng(0)
    stripes = np.zeros((size, size, 3), np.uint8)
    stripes[:, ::2] = 255
    x = np.linspace(0, 60 * np.pi, size)
    grating = (127 + 120 * np.sin(x[None, :] + 0.3 * x[:, None])).astype(np.uint8)
    noise = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    import cv2

    return {
        f'1-pixel stripes, {size - 12} px': stripes[: size - 12, : size - 12],
        f'pixel noise, {size} px': noise,
        f'fine sine grating, {size} px': np.repeat(grating[:, :, None], 3, axis=2),
        f'smooth blobs, {size} px': cv2.GaussianBlur(noise, (0, 0), 20),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = osp.join(ROOT, 'configs/mst/mst_vit-4l192-p8_1xb32-coslr-20e_custom-64px.py')
    parser.add_argument('config', nargs='?', default=default)
    parser.add_argument('--checkpoint')
    args = parser.parse_args(argv)
    import cv2
    import torch
    from mmengine.config import Config
    from mmengine.dataset import Compose, default_collate

    import mmmst  # noqa: F401
    from mmmst.apis import image_loader_cfg, init_model

    cfg = Config.fromfile(args.config)
    model = init_model(cfg, args.checkpoint)
    antialiased = image_loader_cfg(cfg).dataset.pipeline
    index = next(i for i, t in enumerate(antialiased) if t['type'] == 'ResizeEdge')
    if antialiased[index].get('backend') != 'pillow':
        sys.exit(f'error: {args.config}: its evaluation resize is not PIL bicubic: {antialiased[index]}')
    plain = copy.deepcopy(antialiased)
    plain[index] = dict(type='ResizeEdge', scale=antialiased[index]['scale'], edge='short')  # OpenCV bilinear
    with tempfile.TemporaryDirectory() as tmp:
        for name, image in test_images().items():
            path = osp.join(tmp, 'image.png')
            cv2.imwrite(path, image)
            feats = []
            for pipeline in (plain, antialiased):
                data = model.data_preprocessor(default_collate([Compose(pipeline)(dict(img_path=path))]), False)
                with torch.no_grad():
                    out = model.extract_feat(data['inputs'])
                out = out[-1] if isinstance(out, (tuple, list)) else out
                feats.append(torch.nn.functional.normalize(out.float().flatten(1), dim=1))
            print(f'{name}: cosine {float((feats[0] * feats[1]).sum()):.3f} (OpenCV bilinear vs PIL bicubic)')


if __name__ == '__main__':
    main()
