from .concat_neck import ConcatNeck
from .mst_neck import MSTNeck
from .simple_feature_pyramid import SimpleFeaturePyramid

__all__ = ['ConcatNeck', 'MSTNeck', 'SimpleFeaturePyramid']
