from . import transforms
from .samplers import ResumableSampler
from .transforms import *  # noqa: F401,F403

__all__ = ['ResumableSampler', *transforms.__all__]
