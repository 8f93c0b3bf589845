"""Mask generators of MST: which patches of the student's global view get the [MASK] token.

Both are pure functions of (attention, num, prob, generator): no state, no parameters. The registered classes
only hold their two numbers so that configs can build them.
"""

from typing import Optional

import torch
from torch import nn

from mmmst.registry import MODELS


def _check_prob(owner: str, prob: float) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f'{owner}: prob must be in [0, 1], got {prob}')


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
        prob (float): masking probability of a candidate.
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
        prob (float): masking probability of every patch.
        generator (torch.Generator, optional): source of the Bernoulli draws.

    Returns:
        Tensor: (B, N) bool mask.
    """
    return torch.rand(attn.shape, generator=generator, device=attn.device) < prob


@MODELS.register_module()
class AttentionGuidedMaskGenerator(nn.Module):
    """Callable form of :func:`attention_guided_mask`: ``gen(attn, generator=None) -> mask``.

    Args:
        num (int): the lowest ``N // num`` attention patches are candidates. Defaults to 8 (paper table 5).
        prob (float): masking probability of a candidate. Defaults to 0.5 (chosen here, DESIGN.md §1).
    """

    def __init__(self, num: int = 8, prob: float = 0.5):
        super().__init__()
        if not isinstance(num, int) or num < 1:
            raise ValueError(f'AttentionGuidedMaskGenerator: num must be an int >= 1, got {num!r}')
        _check_prob('AttentionGuidedMaskGenerator', prob)
        self.num = num
        self.prob = prob

    def forward(self, attn: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return attention_guided_mask(attn, self.num, self.prob, generator)

    def extra_repr(self) -> str:
        return f'num={self.num}, prob={self.prob}'


@MODELS.register_module()
class RandomMaskGenerator(nn.Module):
    """Callable form of :func:`random_mask`: ``gen(attn, generator=None) -> mask``.

    Args:
        prob (float): masking probability of every patch. Defaults to 0.15 (paper eq. 3).
    """

    def __init__(self, prob: float = 0.15):
        super().__init__()
        _check_prob('RandomMaskGenerator', prob)
        self.prob = prob

    def forward(self, attn: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return random_mask(attn, self.prob, generator)

    def extra_repr(self) -> str:
        return f'prob={self.prob}'
