from .model import add_checkpoint_arguments, checkpoint_from_arguments, init_model

__all__ = ['init_model', 'add_checkpoint_arguments', 'checkpoint_from_arguments']
