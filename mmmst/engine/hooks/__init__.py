from mmmst.runtime.hooks import AtomicCheckpointHook, FiniteCheckpointHook, SkippedImagesHook  # former home

from .collapse_warning_hook import CollapseWarningHook
from .freeze_last_layer_hook import FreezeLastLayerHook
from .knn_monitor_hook import KNNMonitorHook
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
