from .atomic_checkpoint_hook import AtomicCheckpointHook
from .finite_checkpoint_hook import FiniteCheckpointHook
from .skipped_images_hook import SkippedImagesHook

__all__ = ['AtomicCheckpointHook', 'FiniteCheckpointHook', 'SkippedImagesHook']
