"""DINO's photometric augmentations on whole batches of views, with a parameter per image (no loop over images).

Every function takes ``x``: (N, C, H, W) float images in [0, 1] (RGB where colour matters) and per-image parameters
of shape (N,), and returns a new (N, C, H, W) tensor; each equals torchvision's functional op of the same name
given the same parameter, image by image (``tests/test_photometric.py`` states the tolerances).
:func:`dino_photometric` draws DINO's random choices and applies them in DINO's order.
"""

import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from mmmst.dino_recipe import (
    BLUR_PROBS,
    BLUR_SIGMA,
    COLOR_JITTER_PROB,
    COLOR_JITTER_STRENGTH,
    GRAYSCALE_PROB,
    SOLARIZE_PROBS,
    SOLARIZE_THRESHOLD,
)

#: ITU-R 601-2 luma, as PIL and torchvision convert RGB to gray
LUMA = (0.299, 0.587, 0.114)


def _per_image(factor: torch.Tensor) -> torch.Tensor:
    return factor.view(-1, 1, 1, 1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor * x + (1 - factor) * other``, clipped to [0, 1]."""
    factor = _per_image(factor)
    return (factor * x + (1 - factor) * other).clamp_(0, 1)


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma."""
    r, g, b = x.unbind(1)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``x * factor`` (0: black, 1: unchanged)."""
    return _blend(x, torch.zeros_like(x), factor)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean luma (0: flat gray, 1: unchanged)."""
    mean = rgb_to_gray(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(x, mean, factor)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's own luma (0: gray, 1: unchanged)."""
    return _blend(x, rgb_to_gray(x), factor)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    value, _ = x.max(dim=1)
    chroma = value - x.min(dim=1).values
    saturation = chroma / torch.where(value == 0, torch.ones_like(value), value)
    safe = torch.where(chroma == 0, torch.ones_like(chroma), chroma)
    # the hue sextant of the largest channel, then the position inside it
    hue = torch.where(value == r, (g - b) / safe, torch.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = torch.where(chroma == 0, torch.zeros_like(hue), (hue / 6.0) % 1.0)
    return torch.stack((hue, saturation, value), dim=1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """``channel_n = v - v s clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6 h) mod 6``, n = 5, 3, 1 for R, G, B."""
    hue, saturation, value = x.unbind(1)
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    k = (n + 6.0 * hue.unsqueeze(1)) % 6.0
    ramp = torch.minimum(k, 4.0 - k).clamp_(0, 1)
    value = value.unsqueeze(1)
    return value - value * saturation.unsqueeze(1) * ramp


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` turns (in [-0.5, 0.5])."""
    hsv = _rgb_to_hsv(x)
    hue = (hsv[:, 0] + shift.view(-1, 1, 1)) % 1.0
    return _hsv_to_rgb(torch.stack((hue, hsv[:, 1], hsv[:, 2]), dim=1))


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma copied to every channel."""
    return rgb_to_gray(x).expand_as(x).contiguous()


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable Gaussian blur with one ``sigma`` per image, reflect padding (torchvision's ``gaussian_blur``).

    All images share ``kernel_size`` (odd); each gets its own normalised kernel, applied as a grouped convolution.
    On images smaller than the kernel it is cut to the image (reflect padding needs a radius below the side).
    """
    n, c, h, w = x.shape
    radius = min(kernel_size // 2, h - 1, w - 1)
    kernel_size = 2 * radius + 1
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma.to(x.dtype).view(-1, 1)) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (N * C, K)
    out = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode='reflect')
    out = F.conv2d(out, kernel.view(n * c, 1, 1, kernel_size), groups=n * c)
    out = F.conv2d(out, kernel.view(n * c, 1, kernel_size, 1), groups=n * c)
    return out.view(n, c, h, w)


def solarize(x: torch.Tensor, threshold: float = SOLARIZE_THRESHOLD / 255) -> torch.Tensor:
    """Invert every value at or above ``threshold`` (PIL's ``ImageOps.solarize``: 128 of 255)."""
    return torch.where(x >= threshold, 1.0 - x, x)


JITTERS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def _draw(prob, n: int, device, generator) -> torch.Tensor:
    """(n,) bool: which images get an op, with a probability per image (a float or an (n,) tensor)."""
    return torch.rand(n, device=device, generator=generator) < torch.as_tensor(prob, device=device)


def _uniform(lo: float, hi: float, n: int, device, generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, device=device, generator=generator)


def _apply(x: torch.Tensor, chosen: torch.Tensor, op, *params: torch.Tensor) -> torch.Tensor:
    """``op`` on the chosen images only (the others untouched).

    Computed on the whole batch, then selected per image: the same values for the chosen images as computing them
    alone (every op is per image), and no ``nonzero`` of the draw, which would make a GPU wait for the device
    ~19 times per view group.
    """
    return torch.where(chosen.view(-1, *([1] * (x.dim() - 1))), op(x, *params), x)


def color_jitter(
    x: torch.Tensor, chosen: torch.Tensor, strength: Sequence[float], generator=None
) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """torchvision's ``ColorJitter(brightness, contrast, saturation, hue)`` on the chosen images.

    Per image: factors ``U(1 - b, 1 + b)``, ``U(1 - c, 1 + c)``, ``U(1 - s, 1 + s)``, shift ``U(-h, h)``, and a
    random order of the four (``randperm(4)``). Returns the images and the drawn ``factors`` (N, 4) and ``order``
    (N, 4).
    """
    n = x.shape[0]
    b, c, s, h = strength
    factors = torch.stack(
        [_uniform(1 - b, 1 + b, n, x.device, generator), _uniform(1 - c, 1 + c, n, x.device, generator),
         _uniform(1 - s, 1 + s, n, x.device, generator), _uniform(-h, h, n, x.device, generator)], dim=1
    )  # fmt: skip
    order = torch.rand(n, 4, device=x.device, generator=generator).argsort(dim=1)
    for position in range(4):  # 4 x 4 batched calls, whatever the batch size
        for j, jitter in enumerate(JITTERS):
            x = _apply(x, chosen & (order[:, position] == j), jitter, factors[:, j])
    return x, dict(factors=factors, order=order)


def dino_photometric(
    x: torch.Tensor,
    color_jitter_prob: float = COLOR_JITTER_PROB,
    grayscale_prob: float = GRAYSCALE_PROB,
    blur_prob=BLUR_PROBS[2],
    solarize_prob=SOLARIZE_PROBS[2],
    jitter_strength: Sequence[float] = COLOR_JITTER_STRENGTH,
    blur_sigma: Sequence[float] = BLUR_SIGMA,
    blur_kernel_size: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """DINO's photometric chain after the crop and flip: colour jitter (random order), grayscale, blur, solarize.

    Args:
        x (Tensor): (N, C, H, W) float in [0, 1], RGB when colour jitter or grayscale are on.
        color_jitter_prob, grayscale_prob (float): DINO: 0.8, 0.2 for every view (0 for gray images).
        blur_prob, solarize_prob (float | Tensor): a float or (N,) per-image probabilities (DINO: blur 1.0 / 0.1 /
            0.5 for global 1 / global 2 / locals, solarize 0.2 for global 2 only).
        jitter_strength (tuple): brightness, contrast, saturation, hue (DINO: 0.4, 0.4, 0.2, 0.1).
        blur_sigma (tuple): the per-image sigma range in pixels (DINO: 0.1-2.0).
        blur_kernel_size (int, optional): odd; defaults to ``2 * ceil(3 * max sigma) + 1``.

    Returns:
        tuple: the augmented (N, C, H, W) images and the drawn parameters (bool masks ``jitter``, ``gray``,
        ``blur``, ``solarize``; ``factors``, ``order`` of the jitter; ``sigma``).
    """
    n, device = x.shape[0], x.device
    x = x.clone()
    drawn = dict(jitter=_draw(color_jitter_prob, n, device, generator))
    if color_jitter_prob > 0:
        x, params = color_jitter(x, drawn['jitter'], jitter_strength, generator)
        drawn.update(params)
    drawn['gray'] = _draw(grayscale_prob, n, device, generator)
    if grayscale_prob > 0:  # (gray images: never drawn, and not computed either)
        x = _apply(x, drawn['gray'], grayscale)
    drawn['blur'] = _draw(blur_prob, n, device, generator)
    drawn['sigma'] = _uniform(blur_sigma[0], blur_sigma[1], n, device, generator)
    kernel_size = blur_kernel_size or 2 * math.ceil(3.0 * blur_sigma[1]) + 1
    x = _apply(x, drawn['blur'], lambda images, sigma: gaussian_blur(images, sigma, kernel_size), drawn['sigma'])
    drawn['solarize'] = _draw(solarize_prob, n, device, generator)
    x = _apply(x, drawn['solarize'], solarize)
    return x, drawn
