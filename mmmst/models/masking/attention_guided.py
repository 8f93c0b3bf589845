"""Mask generators of MST: which patches of the student's global view get the [MASK] token.

Both are pure functions of (attention, num, prob, generator): no state, no parameters. The registered classes
only hold their settings so that configs can build them. The follow-up work's strategies (high-attention, hint
and block-wise masking) are in ``related.py``, with the same call; the options every generator shares are in
``options.py``.
"""

from typing import Optional

import torch

from mmmst.registry import MODELS

from .options import PerImageOptions, Ratio, keep_images


def attention_guided_mask(
    attn: torch.Tensor, num: int, prob: float, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Attention-guided mask (paper eq. 4-5).

    Per image the patches are sorted by the teacher's CLS attention, ascending; the lowest ``N // num``
    are the candidates, and each candidate is masked independently with probability ``prob``. Patches
    outside the candidates (the high-attention ones) are never masked.

    Args:
        attn (Tensor): (B, N) CLS-to-patch attention of the teacher.
        num (int): 1/num of the patches are candidates.
        prob (float | Tensor): masking probability of a candidate, or (B, 1) per-image probabilities.
        generator (torch.Generator, optional): source of the Bernoulli draws.

    Returns:
        Tensor: (B, N) bool, True where the patch is replaced by the mask token.
    """
    batch, num_patches = attn.shape
    num_candidates = num_patches // num
    mask = torch.zeros(batch, num_patches, dtype=torch.bool, device=attn.device)
    if num_candidates == 0:
        return mask
    # (B, N // num) indices of the lowest-attention patches
    candidates = attn.argsort(dim=1)[:, :num_candidates]
    draws = torch.rand(batch, num_candidates, generator=generator, device=attn.device) < prob
    return mask.scatter_(1, candidates, draws)


def random_mask(attn: torch.Tensor, prob: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Random mask (paper eq. 3): every patch is masked with probability ``prob``.

    Args:
        attn (Tensor): (B, N); only its shape and device are used.
        prob (float | Tensor): masking probability of every patch, or (B, 1) per-image probabilities.
        generator (torch.Generator, optional): source of the Bernoulli draws.

    Returns:
        Tensor: (B, N) bool mask.
    """
    return torch.rand(attn.shape, generator=generator, device=attn.device) < prob


@MODELS.register_module()
class AttentionGuidedMaskGenerator(PerImageOptions):
    """Callable form of :func:`attention_guided_mask`: ``gen(attn, generator=None) -> mask``.

    Args:
        num (int): the lowest ``N // num`` attention patches are candidates. Defaults to 8 (paper table 5).
        prob (float | tuple): masking probability of a candidate, or a (lo, hi) range drawn per image.
            Defaults to 0.5 (chosen here; the paper does not give it).
        image_prob (float): probability that an image is masked at all. Defaults to 1 (the paper).
    """

    def __init__(self, num: int = 8, prob: Ratio = 0.5, image_prob: float = 1.0):
        super().__init__('AttentionGuidedMaskGenerator', prob, image_prob)
        if not isinstance(num, int) or num < 1:
            raise ValueError(f'AttentionGuidedMaskGenerator: num must be an int >= 1, got {num!r}')
        self.num = num

    def forward(self, attn: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        prob = self._prob(attn.shape[0], generator, attn.device)
        return keep_images(attention_guided_mask(attn, self.num, prob, generator), self.image_prob, generator)

    def extra_repr(self) -> str:
        return f'num={self.num}, prob={self.prob}, image_prob={self.image_prob}'


@MODELS.register_module()
class RandomMaskGenerator(PerImageOptions):
    """Callable form of :func:`random_mask`: ``gen(attn, generator=None) -> mask``.

    Args:
        prob (float | tuple): masking probability of every patch, or a (lo, hi) range drawn per image.
            Defaults to 0.15 (paper eq. 3).
        image_prob (float): probability that an image is masked at all. Defaults to 1 (the paper).
    """

    def __init__(self, prob: Ratio = 0.15, image_prob: float = 1.0):
        super().__init__('RandomMaskGenerator', prob, image_prob)

    def forward(self, attn: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        prob = self._prob(attn.shape[0], generator, attn.device)
        return keep_images(random_mask(attn, prob, generator), self.image_prob, generator)

    def extra_repr(self) -> str:
        return f'prob={self.prob}, image_prob={self.image_prob}'
