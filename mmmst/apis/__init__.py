from .inference import first_images, image_loader_cfg, teacher_attention_and_mask
from .model import CheckpointMismatchError, init_model
from .pretrain import budgeted_cfg, knn_top1_on_loaders, pretrain_and_evaluate

__all__ = [
    'CheckpointMismatchError',
    'budgeted_cfg',
    'first_images',
    'image_loader_cfg',
    'init_model',
    'knn_top1_on_loaders',
    'pretrain_and_evaluate',
    'teacher_attention_and_mask',
]
