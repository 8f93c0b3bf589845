from .masking import AttentionGuidedMaskGenerator, RandomMaskGenerator, attention_guided_mask, random_mask

__all__ = ['AttentionGuidedMaskGenerator', 'RandomMaskGenerator', 'attention_guided_mask', 'random_mask']
