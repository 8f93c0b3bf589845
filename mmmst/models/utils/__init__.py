from .masking import AttentionGuidedMaskGenerator, RandomMaskGenerator, attention_guided_mask, random_mask
from .related_masks import BlockMaskGenerator, HighAttentionMaskGenerator, block_mask, high_attention_mask

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
