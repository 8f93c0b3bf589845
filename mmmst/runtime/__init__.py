"""Run safety: what lets a long pretraining stop, resume and fail without losing anything. None of it knows the
method; it serves any mmengine Runner.

- ``resumable_loop``, ``random_states``: resume inside an epoch, tensor for tensor;
- ``hooks``: atomic (and finite) checkpoints, the count of skipped images;
- ``preemption``, ``work_dir_lock``: stop signals from clusters, one run per work dir;
- ``safe_checkpoint``: weights-only loading of mmengine checkpoints; ``non_finite``: the NaN / Inf guard;
- ``cpu_dist``: gloo processes and DDP over CPU modules on a machine without a GPU.
"""

from . import safe_checkpoint
from .cpu_dist import CPUDistributedDataParallel
from .hooks import AtomicCheckpointHook, FiniteCheckpointHook, SkippedImagesHook
from .preemption import PREEMPTED_EXIT_CODE, Preempted
from .resumable_loop import ResumableEpochBasedTrainLoop
from .safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError, load_from_local, register

__all__ = [
    'AtomicCheckpointHook',
    'CPUDistributedDataParallel',
    'CorruptCheckpointError',
    'FiniteCheckpointHook',
    'PREEMPTED_EXIT_CODE',
    'Preempted',
    'ResumableEpochBasedTrainLoop',
    'SkippedImagesHook',
    'UnsafeCheckpointError',
    'load_from_local',
    'register',
    'safe_checkpoint',
]
