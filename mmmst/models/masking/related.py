"""Mask strategies of the work closest to MST, as alternatives to its low-attention candidates.

- High-attention masking and hint masking (AttMask, Kakogeorgiou et al., ECCV 2022): mask the patches the teacher
  attends to most; the hint variant then reveals a few of them again.
- Block-wise masking (BEiT, iBOT): rectangles of patches, added until the image's masking ratio is reached.

Like MST's generators (``attention_guided.py``) they are pure functions of (attention, settings, generator) with the
call ``gen(attn, generator=None) -> (B, N) bool mask``, and take the shared options of ``options.py`` (``ratio`` as a
number or a per-image range, ``image_prob``).
"""

import math
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from mmmst.registry import MODELS

from .options import Ratio, check_image_prob, check_ratio, keep_images, per_image_ratio


def high_attention_mask(
    attn: torch.Tensor,
    ratio: Tuple[float, float],
    hint: float = 0.0,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """AttMask-High / AttMask-Hint: mask the most attended patches, optionally revealing some as hints.

    Per image, the ``round(r * N)`` patches with the highest attention are masked, r drawn from ``ratio``; with
    ``hint > 0`` each of them is revealed again (left unmasked) with probability ``hint``. The opposite of MST's
    rule, which masks only among the lowest-attention patches.

    Args:
        attn (Tensor): (B, N) the teacher's CLS-to-patch attention.
        ratio (tuple): (lo, hi) range of the fraction of patches to mask.
        hint (float): probability that a masked patch is revealed again (AttMask-Hint). 0: AttMask-High.
        generator (torch.Generator, optional): source of the random draws.

    Returns:
        Tensor: (B, N) bool mask.
    """
    batch, num_patches = attn.shape
    counts = (per_image_ratio(ratio, batch, generator, attn.device) * num_patches).round().long()  # (B,)
    # rank[b, j] = position of patch j in image b's descending attention order
    rank = attn.argsort(dim=1, descending=True).argsort(dim=1)
    mask = rank < counts[:, None]
    if hint > 0:
        mask &= torch.rand(attn.shape, generator=generator, device=attn.device) >= hint
    return mask


def block_mask(
    grid: Tuple[int, int],
    ratio: Tuple[float, float],
    batch: int,
    min_block: int = 4,
    aspect: Tuple[float, float] = (0.3, 1 / 0.3),
    max_blocks: int = 16,
    generator: Optional[torch.Generator] = None,
    device=None,
) -> torch.Tensor:
    """Block-wise masking (BEiT / iBOT), vectorised over the batch.

    Per image a target count ``round(r * N)`` is drawn; ``max_blocks`` random rectangles are drawn, each with an
    area in [min_block, target] and an aspect ratio log-uniform in ``aspect``, at a random position; the mask is
    the union of the longest prefix of them that stays within the target (BEiT adds blocks until the target is
    reached). So an image is masked in whole rectangles and never beyond its target.

    Args:
        grid (tuple): (H, W) patches.
        ratio (tuple): (lo, hi) range of the fraction of patches to mask.
        batch (int): number of images.
        min_block (int): smallest block area in patches (BEiT: 16 of 196; 4 suits a 7 x 7 grid).
        aspect (tuple): range of the blocks' height / width.
        max_blocks (int): blocks drawn per image.
        generator (torch.Generator, optional): source of the random draws.

    Returns:
        Tensor: (B, H * W) bool mask.
    """
    H, W = grid
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=device)  # noqa: E731
    target = (per_image_ratio(ratio, batch, generator, device) * H * W).round()  # (B,)
    # (B, T) block sizes: area in [min_block, target], log-uniform aspect ratio
    area = min_block + (target[:, None] - min_block).clamp(min=0) * rand(batch, max_blocks)
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    aspect_ratio = torch.exp(log_lo + (log_hi - log_lo) * rand(batch, max_blocks))
    # rounded to whole patches, then shrunk so that one block alone never exceeds the target
    h = torch.minimum((area * aspect_ratio).sqrt().round(), target[:, None]).clamp(1, H)
    w = torch.minimum((area / aspect_ratio).sqrt().round(), (target[:, None] / h).floor()).clamp(1, W)
    top = (rand(batch, max_blocks) * (H - h + 1)).floor()
    left = (rand(batch, max_blocks) * (W - w + 1)).floor()
    rows = torch.arange(H, device=device).view(1, 1, H, 1)
    cols = torch.arange(W, device=device).view(1, 1, 1, W)
    inside = (
        (rows >= top[..., None, None])
        & (rows < (top + h)[..., None, None])
        & (cols >= left[..., None, None])
        & (cols < (left + w)[..., None, None])
    )  # (B, T, H, W)
    unions = inside.flatten(2).int().cummax(dim=1).values.bool()  # (B, T, N): union of the first t + 1 blocks
    within = unions.sum(dim=2) <= target[:, None]  # (B, T); monotone in t, so a prefix
    last = within.sum(dim=1) - 1  # (B,) index of the longest prefix within the target, -1 when none
    mask = unions.gather(1, last.clamp(min=0).view(batch, 1, 1).expand(-1, 1, H * W)).squeeze(1)
    return mask & (last >= 0)[:, None]


@MODELS.register_module()
class HighAttentionMaskGenerator(nn.Module):
    """Callable form of :func:`high_attention_mask` (AttMask-High; AttMask-Hint with ``hint > 0``).

    Args:
        ratio (float | tuple): fraction of patches to mask, or a (lo, hi) range drawn per image. Defaults to
            (0.1, 0.5) (iBOT's 0.3 ± 0.2, which AttMask builds on).
        hint (float): probability that a masked patch is revealed again. Defaults to 0 (AttMask-High).
        image_prob (float): probability that an image is masked at all. Defaults to 1.
    """

    def __init__(self, ratio: Ratio = (0.1, 0.5), hint: float = 0.0, image_prob: float = 1.0):
        super().__init__()
        self.ratio = check_ratio('HighAttentionMaskGenerator', 'ratio', ratio)
        if not isinstance(hint, (int, float)) or not 0.0 <= hint < 1.0:
            raise ValueError(f'HighAttentionMaskGenerator: hint must be in [0, 1), got {hint!r}')
        self.hint = float(hint)
        self.image_prob = check_image_prob('HighAttentionMaskGenerator', image_prob)

    def forward(self, attn: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return keep_images(high_attention_mask(attn, self.ratio, self.hint, generator), self.image_prob, generator)

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}, hint={self.hint}, image_prob={self.image_prob}'


@MODELS.register_module()
class BlockMaskGenerator(nn.Module):
    """Callable form of :func:`block_mask` on a square patch grid (``N = side ** 2``); the attention is unused.

    Args:
        ratio (float | tuple): fraction of patches to mask, or a (lo, hi) range drawn per image. Defaults to
            (0.1, 0.5) (iBOT).
        min_block (int): smallest block area in patches. Defaults to 4.
        aspect (tuple): range of the blocks' height / width. Defaults to (0.3, 1 / 0.3) (BEiT).
        image_prob (float): probability that an image is masked at all. Defaults to 1.
    """

    def __init__(
        self,
        ratio: Ratio = (0.1, 0.5),
        min_block: int = 4,
        aspect: Sequence[float] = (0.3, 1 / 0.3),
        image_prob: float = 1.0,
    ):
        super().__init__()
        self.ratio = check_ratio('BlockMaskGenerator', 'ratio', ratio)
        if not isinstance(min_block, int) or min_block < 1:
            raise ValueError(f'BlockMaskGenerator: min_block must be an int >= 1, got {min_block!r}')
        if len(aspect) != 2 or not 0 < aspect[0] <= aspect[1]:
            raise ValueError(f'BlockMaskGenerator: aspect must be (lo, hi) with 0 < lo <= hi, got {aspect!r}')
        self.min_block = min_block
        self.aspect = (float(aspect[0]), float(aspect[1]))
        self.image_prob = check_image_prob('BlockMaskGenerator', image_prob)

    def forward(self, attn: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        batch, num_patches = attn.shape
        side = math.isqrt(num_patches)
        if side * side != num_patches:
            raise ValueError(f'BlockMaskGenerator: needs a square patch grid, got {num_patches} patches')
        mask = block_mask(
            (side, side), self.ratio, batch, self.min_block, self.aspect, generator=generator, device=attn.device
        )
        return keep_images(mask, self.image_prob, generator)

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}, min_block={self.min_block}, aspect={self.aspect}, image_prob={self.image_prob}'
