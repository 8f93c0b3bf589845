"""The photometric half of DINO's multi-crop augmentation, on whole batches of views on the model's device."""

from typing import Optional, Sequence

import torch
from mmpretrain.models.utils import SelfSupDataPreprocessor

from mmmst.dino_recipe import (
    BLUR_PROBS,
    BLUR_SIGMA,
    COLOR_JITTER_PROB,
    COLOR_JITTER_STRENGTH,
    GRAYSCALE_PROB,
    NUM_GLOBAL_VIEWS,
    SOLARIZE_PROBS,
)
from mmmst.registry import MODELS

from ..utils.photometric import dino_photometric


def _check_probs(name: str, probs: Sequence[float]) -> tuple:
    if len(probs) != 3 or not all(0.0 <= p <= 1.0 for p in probs):
        raise ValueError(
            f'MultiCropDataPreprocessor: {name} must be 3 probabilities in [0, 1] (global 1, global 2, locals), '
            f'got {probs!r}'
        )
    return tuple(float(p) for p in probs)


@MODELS.register_module()
class MultiCropDataPreprocessor(SelfSupDataPreprocessor):
    """uint8 views from the dataloader workers -> DINO's photometric augmentations -> normalised float views.

    The workers (``MultiCropViews(photometric=False)``) only decode, crop and flip; here, in training, every view
    of the batch gets, per image: colour jitter (DINO's strengths, random order of the four) with probability
    ``color_jitter_prob``, grayscale with ``grayscale_prob``, Gaussian blur with sigma ``U(0.1, 2.0)`` and the
    view's ``blur_probs``, solarize with the view's ``solarize_probs`` (:func:`dino_photometric`), then
    ``(x - mean) / std``. Views of one size (the globals, the locals) are augmented as one batch. Outside
    training (k-NN, tests) it only normalises, as ``SelfSupDataPreprocessor``.

    Args:
        mean, std, to_rgb: as ``SelfSupDataPreprocessor`` (0-255 scale; the photometric ops run in RGB).
        color_jitter_prob (float): DINO: 0.8. 0 for gray images.
        grayscale_prob (float): DINO: 0.2. 0 for gray images.
        blur_probs (tuple): (global 1, global 2, locals). DINO: (1.0, 0.1, 0.5).
        solarize_probs (tuple): (global 1, global 2, locals). DINO: (0.0, 0.2, 0.0).
        jitter_strength (tuple): brightness, contrast, saturation, hue. DINO: (0.4, 0.4, 0.2, 0.1).
        blur_sigma (tuple): sigma range in pixels. DINO: (0.1, 2.0).

    The defaults are DINO's (:mod:`mmmst.dino_recipe`); the first ``NUM_GLOBAL_VIEWS`` (2) views are the global ones.
    """

    def __init__(
        self,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
        to_rgb: bool = False,
        color_jitter_prob: float = COLOR_JITTER_PROB,
        grayscale_prob: float = GRAYSCALE_PROB,
        blur_probs: Sequence[float] = BLUR_PROBS,
        solarize_probs: Sequence[float] = SOLARIZE_PROBS,
        jitter_strength: Sequence[float] = COLOR_JITTER_STRENGTH,
        blur_sigma: Sequence[float] = BLUR_SIGMA,
        **kwargs,
    ):
        super().__init__(mean=mean, std=std, to_rgb=to_rgb, **kwargs)
        for name, p in dict(color_jitter_prob=color_jitter_prob, grayscale_prob=grayscale_prob).items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f'MultiCropDataPreprocessor: {name} must be in [0, 1], got {p!r}')
        if not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(
                f'MultiCropDataPreprocessor: blur_sigma must be (lo, hi) with 0 < lo <= hi, got {blur_sigma!r}'
            )
        self.color_jitter_prob = color_jitter_prob
        self.grayscale_prob = grayscale_prob
        self.blur_probs = _check_probs('blur_probs', blur_probs)
        self.solarize_probs = _check_probs('solarize_probs', solarize_probs)
        self.jitter_strength = tuple(jitter_strength)
        self.blur_sigma = tuple(blur_sigma)

    def forward(self, data: dict, training: bool = False) -> dict:
        if not training or not isinstance(data['inputs'], (list, tuple)):
            return super().forward(data, training)
        views, data_samples = self.cast_data([data['inputs'], data.get('data_samples')])
        if self._channel_conversion:
            views = [v[:, [2, 1, 0]] for v in views]
        views = [v.float() / 255.0 for v in views]
        batch = views[0].shape[0]
        g = NUM_GLOBAL_VIEWS
        augmented = self._augment(views[:g], batch, self.blur_probs[:g], self.solarize_probs[:g])
        if len(views) > g:
            locals_ = len(views) - g
            augmented += self._augment(
                views[g:], batch, [self.blur_probs[g]] * locals_, [self.solarize_probs[g]] * locals_
            )
        if self._enable_normalize:
            augmented = [(v * 255.0 - self.mean) / self.std for v in augmented]
        return {'inputs': augmented, 'data_samples': data_samples}

    def _augment(self, views, batch: int, blur_probs, solarize_probs):
        """Views of one size as one (V * B) batch, each image with its view's probabilities; back to V views."""
        per_image = lambda probs: torch.tensor(probs, device=views[0].device).repeat_interleave(batch)  # noqa: E731
        out, _ = dino_photometric(
            torch.cat(views),
            color_jitter_prob=self.color_jitter_prob,
            grayscale_prob=self.grayscale_prob,
            blur_prob=per_image(blur_probs),
            solarize_prob=per_image(solarize_probs),
            jitter_strength=self.jitter_strength,
            blur_sigma=self.blur_sigma,
        )
        return list(out.split(batch))
