from .dino_head import DINOHead
from .mst_decoder import MSTDecoder

__all__ = ['MSTDecoder', 'DINOHead']
