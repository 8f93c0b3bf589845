"""What every mask generator accepts, in one place.

- ``ratio`` (``prob`` for MST's own) may be a number or a range ``(lo, hi)``: then each image draws its own value
  from U(lo, hi) (iBOT draws its prediction ratio per image from 0.3 ± 0.2).
- ``image_prob``: each image is masked at all with this probability, otherwise it is left whole (iBOT masks
  about half of the images).
"""

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import nn

Ratio = Union[float, Sequence[float]]


def check_ratio(owner: str, name: str, ratio: Ratio) -> Tuple[float, float]:
    """A number or a (lo, hi) range in [0, 1] -> (lo, hi); a clear error otherwise."""
    values = tuple(ratio) if isinstance(ratio, (tuple, list)) else (ratio, ratio)
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f'{owner}: {name} must be a number or a (lo, hi) pair, got {ratio!r}')
    lo, hi = float(values[0]), float(values[1])
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f'{owner}: {name} must satisfy 0 <= lo <= hi <= 1, got {ratio!r}')
    return lo, hi


def per_image_ratio(
    ratio: Tuple[float, float], batch: int, generator: Optional[torch.Generator], device
) -> torch.Tensor:
    """(B,) ratios drawn from U(lo, hi); exactly ``lo`` when the range is a single value."""
    lo, hi = ratio
    return lo + (hi - lo) * torch.rand(batch, generator=generator, device=device)


def keep_images(mask: torch.Tensor, image_prob: float, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Each image keeps its mask with probability ``image_prob``; the others get no mask at all."""
    if image_prob >= 1.0:
        return mask
    chosen = torch.rand(mask.shape[0], generator=generator, device=mask.device) < image_prob  # (B,)
    return mask & chosen[:, None]


def check_image_prob(owner: str, image_prob: float) -> float:
    if not isinstance(image_prob, (int, float)) or not 0.0 <= image_prob <= 1.0:
        raise ValueError(f'{owner}: image_prob must be in [0, 1], got {image_prob!r}')
    return float(image_prob)


class PerImageOptions(nn.Module):
    """``prob`` as a number or a (lo, hi) range drawn per image, and ``image_prob`` (see the module docstring)."""

    def __init__(self, owner: str, prob: Ratio, image_prob: float):
        super().__init__()
        if isinstance(prob, (int, float)) and not isinstance(prob, bool) and not 0.0 <= prob <= 1.0:
            raise ValueError(f'{owner}: prob must be in [0, 1], got {prob}')
        self.prob_range = check_ratio(owner, 'prob', prob)
        self.prob = prob
        self.image_prob = check_image_prob(owner, image_prob)

    def _prob(self, batch: int, generator, device):
        """The float itself, or (B, 1) per-image probabilities for a range."""
        lo, hi = self.prob_range
        return lo if lo == hi else per_image_ratio(self.prob_range, batch, generator, device)[:, None]
