from .inference import first_images, image_loader_cfg, teacher_attention_and_mask
from .model import CheckpointMismatchError, init_model

__all__ = ['CheckpointMismatchError', 'init_model', 'first_images', 'image_loader_cfg', 'teacher_attention_and_mask']
