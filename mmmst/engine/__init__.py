from .cpu_dist import CPUDistributedDataParallel
from .hooks import *  # noqa: F401,F403
from .optimizers import BackboneLayerDecayOptimWrapperConstructor
from .safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError, load_from_local, register

__all__ = [
    'BackboneLayerDecayOptimWrapperConstructor',
    'CPUDistributedDataParallel',
    'CorruptCheckpointError',
    'UnsafeCheckpointError',
    'load_from_local',
    'register',
]
