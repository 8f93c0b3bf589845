from .cpu_dist import CPUDistributedDataParallel
from .hooks import *  # noqa: F401,F403
from .optimizers import BackboneLayerDecayOptimWrapperConstructor
from .preemption import PREEMPTED_EXIT_CODE, Preempted
from .resumable_loop import ResumableEpochBasedTrainLoop
from .safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError, load_from_local, register

__all__ = [
    'BackboneLayerDecayOptimWrapperConstructor',
    'CPUDistributedDataParallel',
    'CorruptCheckpointError',
    'PREEMPTED_EXIT_CODE',
    'Preempted',
    'ResumableEpochBasedTrainLoop',
    'UnsafeCheckpointError',
    'load_from_local',
    'register',
]
