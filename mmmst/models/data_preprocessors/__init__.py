from .multi_crop_preprocessor import MultiCropDataPreprocessor

__all__ = ['MultiCropDataPreprocessor']
