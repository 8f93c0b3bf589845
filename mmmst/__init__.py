"""mmmst: MST (Masked Self-Supervised Transformer, NeurIPS 2021) for OpenMMLab.

``import mmmst`` registers every component into mmpretrain's registries (see :mod:`mmmst.registry`) and makes
mmengine checkpoints load under torch's weights-only unpickling (see :mod:`mmmst.runtime.safe_checkpoint`).
"""

import warnings

# On the core tier mmcv is mmcv-lite (no compiled ops), and importing mmcv's transformer bricks warns that
# `MultiScaleDeformableAttention` cannot be imported. Nothing mmmst or mmpretrain runs needs it (detection and
# segmentation, which do, check for the full tier themselves), so that one warning is silenced, once, here.
with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
    import mmcv.cnn.bricks.transformer  # noqa: F401

from . import datasets, engine, evaluation, models, runtime, visualization  # noqa: E402, F401  (they register)
from .runtime import safe_checkpoint  # noqa: E402
from .version import __version__  # noqa: E402

safe_checkpoint.register()

__all__ = ['__version__']
