from .concat_neck import ConcatNeck
from .dino_neck import DINONeck
from .simple_feature_pyramid import SimpleFeaturePyramid

__all__ = ['ConcatNeck', 'DINONeck', 'SimpleFeaturePyramid']
