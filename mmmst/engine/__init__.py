"""The method's training machinery: MST's hooks (teacher temperature, last-layer freeze, collapse warning, k-NN
monitor) and DINO's optimizer parameter groups. Run safety (checkpoints, resume, preemption) is in
:mod:`mmmst.runtime`; its modules are still importable under their former names here (``mmmst.engine.preemption``,
``mmmst.engine.hooks.AtomicCheckpointHook``, ...) for scripts and ``custom_imports`` written before the move."""

import importlib
import sys

from .hooks import *  # noqa: F401,F403
from .optimizers import BackboneLayerDecayOptimWrapperConstructor

_MOVED_TO_RUNTIME = (
    'cpu_dist',
    'non_finite',
    'preemption',
    'random_states',
    'resumable_loop',
    'safe_checkpoint',
    'work_dir_lock',
)
for _name in _MOVED_TO_RUNTIME:  # the former module path names the same module object
    sys.modules[f'{__name__}.{_name}'] = globals()[_name] = importlib.import_module(f'mmmst.runtime.{_name}')
for _name in ('atomic_checkpoint_hook', 'finite_checkpoint_hook', 'skipped_images_hook'):
    sys.modules[f'{__name__}.hooks.{_name}'] = importlib.import_module(f'mmmst.runtime.hooks.{_name}')

__all__ = ['BackboneLayerDecayOptimWrapperConstructor']
