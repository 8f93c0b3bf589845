from .concat_neck import ConcatNeck
from .mst_neck import MSTNeck

__all__ = ['ConcatNeck', 'MSTNeck']
