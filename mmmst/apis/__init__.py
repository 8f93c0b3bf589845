from .inference import first_images, teacher_attention_and_mask
from .model import init_model

__all__ = ['init_model', 'first_images', 'teacher_attention_and_mask']
