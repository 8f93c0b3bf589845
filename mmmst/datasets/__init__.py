from . import transforms
from .fashion_mnist import FashionMNISTUnavailableError, prepare_fashion_mnist
from .image_folder import ImageFolderDataset
from .samplers import ResumableSampler
from .transforms import *  # noqa: F401,F403

__all__ = [
    'FashionMNISTUnavailableError',
    'ImageFolderDataset',
    'ResumableSampler',
    'prepare_fashion_mnist',
    *transforms.__all__,
]
