from .mst_decoder import MSTDecoder
from .mst_head import MSTHead

__all__ = ['MSTDecoder', 'MSTHead']
