"""DINO's multi-crop views, built from mmpretrain / mmcv transforms."""

from typing import List, Sequence, Tuple

from mmpretrain.datasets.transforms import MultiView

from mmmst.dino_recipe import (
    BLUR_PROBS,
    BLUR_SIGMA,
    COLOR_JITTER_PROB,
    COLOR_JITTER_STRENGTH,
    FLIP_PROB,
    GLOBAL_CROP_SCALE,
    GRAYSCALE_PROB,
    LOCAL_CROP_SCALE,
    SOLARIZE_PROBS,
    SOLARIZE_THRESHOLD,
)
from mmmst.registry import TRANSFORMS


def _check_scale(name: str, scale: Sequence[float]) -> Tuple[float, float]:
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f'MultiCropViews: {name} must be (min, max) with 0 < min <= max <= 1, got {scale!r}')
    return tuple(scale)


def shared_view(
    size: int, scale: Tuple[float, float], color_jitter_prob: float, grayscale_prob: float, backend: str = 'pillow'
) -> List[dict]:
    """What every DINO view gets: bicubic random resized crop, flip 0.5, colour jitter, grayscale."""
    view = [
        dict(type='RandomResizedCrop', scale=size, crop_ratio_range=scale, backend=backend, interpolation='bicubic'),
        dict(type='RandomFlip', prob=FLIP_PROB),
    ]
    if color_jitter_prob > 0:
        # torchvision's ColorJitter, as DINO (random order of the four jitters); mmcv's adjust_hue overflows a
        # uint8 under numpy 2 for negative hue shifts.
        brightness, contrast, saturation, hue = COLOR_JITTER_STRENGTH
        jitter = dict(
            type='torchvision/ColorJitter', brightness=brightness, contrast=contrast, saturation=saturation, hue=hue
        )
        view.append(
            dict(
                type='RandomApply',
                prob=color_jitter_prob,
                transforms=[dict(type='NumpyToPIL', to_rgb=True), jitter, dict(type='PILToNumpy', to_bgr=True)],
            )
        )
    if grayscale_prob > 0:
        view.append(
            dict(
                type='RandomGrayscale', prob=grayscale_prob, keep_channels=True, channel_weights=(0.114, 0.587, 0.2989)
            )
        )
    return view


def blur(prob: float) -> dict:
    """DINO's Gaussian blur with probability ``prob``: sigma ~ U(BLUR_SIGMA) per image."""
    return dict(type='GaussianBlur', magnitude_range=BLUR_SIGMA, magnitude_std='inf', prob=prob)


@TRANSFORMS.register_module()
class MultiCropViews(MultiView):
    """``results['img']`` becomes ``[global_1, global_2, local_1, ..., local_n]`` with DINO's augmentations.

    Every view: random resized crop (bicubic), horizontal flip 0.5, colour jitter (0.4, 0.4, 0.2, 0.1) with
    probability 0.8, grayscale 0.2. Then global 1: Gaussian blur p 1.0; global 2: blur p 0.1 and solarize p 0.2;
    locals: blur p 0.5. The blur sigma is drawn per image from [0.1, 2.0] (DINO's ``GaussianBlur``). These
    numbers are DINO's, defined once in :mod:`mmmst.dino_recipe`.

    Args:
        global_crop_size (int): side of the global views. Defaults to 224.
        local_crop_size (int): side of the local views. Defaults to 96.
        num_local_views (int): number of local views (0 allowed). Defaults to 8.
        global_crop_scale (tuple): area range of a global crop. Defaults to (0.4, 1.0) (DINO).
        local_crop_scale (tuple): area range of a local crop. Defaults to (0.05, 0.4) (DINO).
        color_jitter_prob (float): set 0 for gray images. Defaults to 0.8.
        grayscale_prob (float): set 0 for gray images. Defaults to 0.2.
        photometric (bool): False: only the crop and the flip, in uint8 (the worker stage of the split pipeline;
            ``MultiCropDataPreprocessor`` applies the rest to whole batches on the model's device). Defaults to
            True (everything here, per image, in PIL: DINO's way).
        backend (str): the crops' bicubic resize. 'pillow' (DINO's: antialiased when shrinking) or 'cv2' (OpenCV's
            bicubic, no antialiasing: several times faster; docs/benchmarks.md measures both). Defaults to 'pillow'.
    """

    def __init__(
        self,
        global_crop_size: int = 224,
        local_crop_size: int = 96,
        num_local_views: int = 8,
        global_crop_scale: Sequence[float] = GLOBAL_CROP_SCALE,
        local_crop_scale: Sequence[float] = LOCAL_CROP_SCALE,
        color_jitter_prob: float = COLOR_JITTER_PROB,
        grayscale_prob: float = GRAYSCALE_PROB,
        photometric: bool = True,
        backend: str = 'pillow',
    ):
        if not isinstance(num_local_views, int) or num_local_views < 0:
            raise ValueError(f'MultiCropViews: num_local_views must be an int >= 0, got {num_local_views!r}')
        for name, size in dict(global_crop_size=global_crop_size, local_crop_size=local_crop_size).items():
            if not isinstance(size, int) or size < 1:
                raise ValueError(f'MultiCropViews: {name} must be a positive int, got {size!r}')
        if backend not in ('pillow', 'cv2'):
            raise ValueError(f"MultiCropViews: backend must be 'pillow' or 'cv2', got {backend!r}")
        global_crop_scale = _check_scale('global_crop_scale', global_crop_scale)
        local_crop_scale = _check_scale('local_crop_scale', local_crop_scale)

        if photometric:
            colour = dict(color_jitter_prob=color_jitter_prob, grayscale_prob=grayscale_prob, backend=backend)
            global_1 = shared_view(global_crop_size, global_crop_scale, **colour) + [blur(BLUR_PROBS[0])]
            global_2 = shared_view(global_crop_size, global_crop_scale, **colour) + [
                blur(BLUR_PROBS[1]),
                dict(type='Solarize', thr=SOLARIZE_THRESHOLD, prob=SOLARIZE_PROBS[1]),
            ]
            local = shared_view(local_crop_size, local_crop_scale, **colour) + [blur(BLUR_PROBS[2])]
        else:  # crop and flip only
            global_1 = global_2 = shared_view(global_crop_size, global_crop_scale, 0.0, 0.0, backend)
            local = shared_view(local_crop_size, local_crop_scale, 0.0, 0.0, backend)
        transforms, num_views = [global_1, global_2], [1, 1]
        if num_local_views:
            transforms.append(local)
            num_views.append(num_local_views)
        super().__init__(transforms=transforms, num_views=num_views)
        self.num_local_views = num_local_views
