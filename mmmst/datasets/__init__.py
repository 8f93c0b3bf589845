from . import transforms
from .samplers import EpochSubsetSampler
from .transforms import *  # noqa: F401,F403

__all__ = ['EpochSubsetSampler', *transforms.__all__]
