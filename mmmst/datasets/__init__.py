from . import transforms
from .fashion_mnist import FashionMNISTUnavailableError, prepare_fashion_mnist
from .samplers import ResumableSampler
from .transforms import *  # noqa: F401,F403

__all__ = ['FashionMNISTUnavailableError', 'ResumableSampler', 'prepare_fashion_mnist', *transforms.__all__]
