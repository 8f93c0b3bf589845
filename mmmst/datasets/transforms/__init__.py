from .multi_crop import MultiCropViews

__all__ = ['MultiCropViews']
