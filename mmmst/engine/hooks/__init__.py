from .atomic_checkpoint_hook import AtomicCheckpointHook
from .collapse_warning_hook import CollapseWarningHook
from .finite_checkpoint_hook import FiniteCheckpointHook
from .freeze_last_layer_hook import FreezeLastLayerHook
from .knn_monitor_hook import KNNMonitorHook
from .skipped_images_hook import SkippedImagesHook
from .teacher_temp_hook import TeacherTempHook

__all__ = [
    'AtomicCheckpointHook',
    'CollapseWarningHook',
    'FiniteCheckpointHook',
    'FreezeLastLayerHook',
    'KNNMonitorHook',
    'SkippedImagesHook',
    'TeacherTempHook',
]
