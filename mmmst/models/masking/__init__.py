"""Which patches of the student's view get the [MASK] token: MST's attention-guided and random masking
(``attention_guided.py``), the follow-up work's high-attention, hint and block-wise masking (``related.py``), and the
options they share (``options.py``). Every generator is called ``gen(attn, generator=None) -> (B, N) bool mask``."""

from .attention_guided import AttentionGuidedMaskGenerator, RandomMaskGenerator, attention_guided_mask, random_mask
from .related import BlockMaskGenerator, HighAttentionMaskGenerator, block_mask, high_attention_mask

__all__ = [
    'AttentionGuidedMaskGenerator',
    'BlockMaskGenerator',
    'HighAttentionMaskGenerator',
    'RandomMaskGenerator',
    'attention_guided_mask',
    'block_mask',
    'high_attention_mask',
    'random_mask',
]
