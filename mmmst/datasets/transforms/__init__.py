from .loading import LoadImageWithPath, UnreadableImageError
from .multi_crop import MultiCropViews

__all__ = ['LoadImageWithPath', 'MultiCropViews', 'UnreadableImageError']
