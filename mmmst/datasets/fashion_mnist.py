"""Fashion-MNIST on this machine: the four idx files mmpretrain's ``FashionMNIST`` reads, by split.

``tools/dataset_converters/prepare_fashion_mnist.py`` puts them into a folder, from Debian's
``dataset-fashion-mnist`` package; nothing is downloaded from a dataset hub.
"""

import os.path as osp
from typing import List

#: the idx files (un-gzipped) by split, as mmpretrain's MNIST / FashionMNIST read them
IDX_FILES = dict(
    train=('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    test=('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
)
#: the command that puts them into a folder (give it the folder), from the repository root
PREPARE_SCRIPT = 'tools/dataset_converters/prepare_fashion_mnist.py'


def missing_fashion_mnist(data_root: str) -> List[str]:
    """The idx files not yet in ``data_root``."""
    return [f for files in IDX_FILES.values() for f in files if not osp.isfile(osp.join(data_root, f))]
