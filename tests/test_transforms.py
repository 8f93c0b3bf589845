"""MultiCropViews: DINO's views, sizes and per-image randomness; image loading that names a broken file."""

import os

import numpy as np
import pytest

from mmmst.datasets import MultiCropViews


def test_views_are_two_globals_then_locals_of_the_right_sizes():
    transform = MultiCropViews(global_crop_size=32, local_crop_size=16, num_local_views=3)
    image = np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    views = transform(dict(img=image))['img']
    assert [v.shape for v in views] == [(32, 32, 3)] * 2 + [(16, 16, 3)] * 3


def test_per_view_recipe_follows_dino():
    transform = MultiCropViews(num_local_views=8)
    global_1, global_2, local = (p.transforms for p in transform.pipelines)
    assert transform.num_views == [1, 1, 8]

    def find(pipeline, name):
        return [t for t in pipeline if type(t).__name__ == name]

    assert find(global_1, 'GaussianBlur')[0].prob == 1.0 and not find(global_1, 'Solarize')
    assert find(global_2, 'GaussianBlur')[0].prob == 0.1 and find(global_2, 'Solarize')[0].prob == 0.2
    assert find(local, 'GaussianBlur')[0].prob == 0.5
    assert find(global_1, 'RandomResizedCrop')[0].crop_ratio_range == (0.4, 1.0)
    assert find(local, 'RandomResizedCrop')[0].crop_ratio_range == (0.05, 0.4)
    assert find(local, 'RandomGrayscale')[0].prob == 0.2
    assert find(local, 'RandomApply')[0].prob == 0.8  # colour jitter


def test_blur_sigma_is_drawn_per_image_in_dino_range():
    blur = [t for t in MultiCropViews().pipelines[0].transforms if type(t).__name__ == 'GaussianBlur'][0]
    np.random.seed(0)
    sigmas = [blur.random_magnitude() for _ in range(200)]
    assert min(sigmas) >= 0.1 and max(sigmas) <= 2.0
    assert len(set(sigmas)) == 200  # a new sigma every call, not one fixed at construction
    assert np.mean(sigmas) == pytest.approx(1.05, abs=0.1)  # uniform on [0.1, 2.0]


def test_gray_images_without_colour_transforms():
    transform = MultiCropViews(
        global_crop_size=28, local_crop_size=12, num_local_views=2, color_jitter_prob=0, grayscale_prob=0
    )
    views = transform(dict(img=np.zeros((28, 28), dtype=np.uint8)))['img']
    assert [v.shape[:2] for v in views] == [(28, 28)] * 2 + [(12, 12)] * 2


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(num_local_views=-1), 'num_local_views must be an int >= 0, got -1'),
        (dict(global_crop_scale=(0.5, 0.2)), 'global_crop_scale must be'),
        (dict(backend='torch'), "backend must be 'pillow' or 'cv2', got 'torch'"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiCropViews(**kwargs)


@pytest.mark.parametrize('content', [b'', b'\xff\xd8\xff\xe0 truncated jpeg'], ids=['empty', 'truncated'])
def test_unreadable_image_is_named_or_skipped_with_a_warning(tmp_path, content, mmengine_warnings):
    """The ImageNet pipeline's loader: a broken JPEG stops with its path, or is skipped and counted on request."""
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    from mmmst.datasets.transforms import UnreadableImageError

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = Config.fromfile(os.path.join(root, 'configs/_base_/datasets/imagenet_bs128_mst.py'))
    init_default_scope('mmpretrain')
    assert cfg.train_pipeline[0].type == 'LoadImageWithPath'
    bad = tmp_path / 'n01440764_0.JPEG'
    bad.write_bytes(content)
    with pytest.raises(UnreadableImageError, match=f'^{bad}: cannot read this image'):
        Compose(cfg.train_pipeline)(dict(img_path=str(bad)))

    cfg.train_pipeline[0].skip_unreadable = True
    assert Compose(cfg.train_pipeline)(dict(img_path=str(bad))) is None  # mmengine draws another sample
    assert any(f'skipped unreadable image {bad}' in m and '1 skipped so far' in m for m in mmengine_warnings)
