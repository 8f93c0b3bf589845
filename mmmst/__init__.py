"""mmmst: MST (Masked Self-Supervised Transformer, NeurIPS 2021) for OpenMMLab.

``import mmmst`` registers every component into mmpretrain's registries (see :mod:`mmmst.registry`) and makes
mmengine checkpoints load under torch's weights-only unpickling (see :mod:`mmmst.engine.safe_checkpoint`).
"""

from . import datasets, engine, evaluation, models, visualization  # noqa: F401  (imports register the components)
from .engine import safe_checkpoint
from .version import __version__

safe_checkpoint.register()

__all__ = ['__version__']
