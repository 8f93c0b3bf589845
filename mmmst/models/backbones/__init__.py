from .mst_swin import MSTSwinTransformer
from .mst_vit import MSTViT
from .output import MSTBackboneOutput

__all__ = ['MSTBackboneOutput', 'MSTSwinTransformer', 'MSTViT']
