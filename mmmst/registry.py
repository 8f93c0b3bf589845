"""mmmst registers into mmpretrain's registries.

mmengine resolves ``scope.Name`` only among the root registries' direct children, so registries of our own
parented under mmpretrain's would be unreachable from mmdet / mmseg configs. Registering into mmpretrain's
own registries makes every component reachable as ``type='MSTViT'`` under ``default_scope='mmpretrain'`` and
as ``type='mmpretrain.MSTViT'`` from mmdet and mmseg.
"""

from mmpretrain.registry import (
    DATA_SAMPLERS,
    DATASETS,
    HOOKS,
    LOOPS,
    METRICS,
    MODEL_WRAPPERS,
    MODELS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    TRANSFORMS,
    VISUALIZERS,
)

__all__ = [
    'DATA_SAMPLERS',
    'DATASETS',
    'HOOKS',
    'LOOPS',
    'METRICS',
    'MODEL_WRAPPERS',
    'MODELS',
    'OPTIM_WRAPPER_CONSTRUCTORS',
    'TRANSFORMS',
    'VISUALIZERS',
]
