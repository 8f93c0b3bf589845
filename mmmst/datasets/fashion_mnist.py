"""Fashion-MNIST on this machine: the four idx files mmpretrain's ``FashionMNIST`` reads, by split, and
:func:`prepare_fashion_mnist`, which puts them into a folder.

Where the files come from, first that works: the folder itself; Debian's ``dataset-fashion-mnist`` package (offline;
``tools/dataset_converters/prepare_fashion_mnist.py``, which ``make demo`` runs first, installs it with apt-get when
running as root on Debian / Ubuntu: the library itself installs nothing); torchvision's download of the original
archives (their MD5 checked, from ``torchvision.datasets.FashionMNIST.mirrors``, or the mirror named by
``MMMST_FASHION_MNIST_MIRROR``). The preparer, the demo and the small-scale lab all call :func:`prepare_fashion_mnist`.
"""

import gzip
import os
import os.path as osp
import shutil
import zlib
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from mmmst.errors import MSTError

#: the idx files (un-gzipped) by split, as mmpretrain's MNIST / FashionMNIST read them
IDX_FILES = dict(
    train=('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    test=('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
)
#: where Debian's dataset-fashion-mnist package puts the gzipped files
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
#: an HTTP(S) folder holding the four ``.gz`` files, tried instead of torchvision's mirrors
MIRROR_ENV = 'MMMST_FASHION_MNIST_MIRROR'


class FashionMNISTUnavailableError(MSTError, RuntimeError):
    """Fashion-MNIST could be neither found, copied from the Debian package, nor downloaded (the message says how)."""


#: class names in label order (the folder names of ``tools/dataset_converters/fashion_mnist_to_folder.py``)
CLASSES = ('T-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle_boot')


#: bytes per item of each idx type code (0x08 unsigned byte, ... 0x0E double)
IDX_ITEM_SIZES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def read_idx_header(f, path: str) -> Tuple[int, Tuple[int, ...]]:
    """``(bytes per item, shape)`` from the header of an idx file open for reading (left just after the header).

    Raises:
        ValueError: naming the file: not an idx file, or shorter than its own header.
    """
    header = f.read(4)
    item_size = IDX_ITEM_SIZES.get(header[2] if len(header) > 2 else -1)
    if len(header) < 4 or header[:2] != b'\x00\x00' or item_size is None:
        raise ValueError(f'{path} is not an idx file (its first bytes are {header!r})')
    raw = f.read(4 * header[3])
    if len(raw) < 4 * header[3]:
        raise ValueError(f'{path} is truncated or damaged: {osp.getsize(path)} bytes, shorter than its header')
    return item_size, tuple(int(d) for d in np.frombuffer(raw, dtype='>u4'))


def read_idx(path: str) -> np.ndarray:
    """An un-gzipped idx file of bytes as a uint8 array of its shape: (N, 28, 28) images or (N,) labels."""
    with open(path, 'rb') as f:
        _, dims = read_idx_header(f, path)
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def read_fashion_mnist(data_root: str, split: str = 'train') -> Tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28), labels (N,))`` of a split (``'train'`` or ``'test'``), uint8."""
    return tuple(read_idx(osp.join(data_root, name)) for name in IDX_FILES[split])


def missing_fashion_mnist(data_root: str) -> List[str]:
    """The idx files not yet in ``data_root``."""
    return [f for files in IDX_FILES.values() for f in files if not osp.isfile(osp.join(data_root, f))]


def idx_file_problem(path: str) -> str:
    """What is wrong with an un-gzipped Fashion-MNIST idx file, as the end of a sentence starting with its path
    (``''``: nothing): not an idx file, images not (N, H, W) / labels not (N,), or a size other than its header's."""
    with open(path, 'rb') as f:
        try:
            item_size, dims = read_idx_header(f, path)
        except ValueError as err:
            return str(err).removeprefix(f'{path} ')
        header = f.tell()
    expected_dims = 3 if 'images' in osp.basename(path) else 1
    if len(dims) != expected_dims:
        return f'holds a {len(dims)}-dimensional array {dims}; Fashion-MNIST has {expected_dims} dimensions here'
    expected = header + item_size * int(np.prod(dims))
    size = osp.getsize(path)
    if size != expected:
        state = 'truncated' if size < expected else 'longer than its header says'
        return f'is {state}: {size:,} bytes, its header {dims} says {expected:,}'
    return ''


def check_fashion_mnist(data_root: str) -> None:
    """Refuse a folder whose idx files are damaged: every file present is checked (:func:`idx_file_problem`), and a
    split's images and labels must count the same items.

    Raises:
        FashionMNISTUnavailableError: naming the first bad file and what is wrong with it; nothing is changed.
    """
    for images, labels in IDX_FILES.values():
        counts = []
        for name in (images, labels):
            path = osp.join(data_root, name)
            if not osp.isfile(path):
                continue
            problem = idx_file_problem(path)
            if problem:
                raise FashionMNISTUnavailableError(
                    f'{path} {problem}; remove it (or give another folder) and run again to fetch a fresh copy'
                )
            with open(path, 'rb') as f:
                counts.append(read_idx_header(f, path)[1][0])
        if len(counts) == 2 and counts[0] != counts[1]:
            raise FashionMNISTUnavailableError(
                f'{data_root}: {images} holds {counts[0]} images but {labels} {counts[1]} labels; remove both and '
                'run again to fetch a fresh copy'
            )


def prepare_fashion_mnist(
    data_root: str,
    log: Callable[[str], None] = print,
    mirrors: Optional[Sequence[str]] = None,
    resources: Optional[Sequence[Tuple[str, str]]] = None,
    debian_dir: str = DEBIAN_DIR,
) -> None:
    """Put the missing idx files, un-gzipped, into ``data_root``, after checking those already there.

    Args:
        data_root (str): the folder mmpretrain's ``FashionMNIST(data_root=...)`` reads.
        log: where the progress lines go.
        mirrors: URLs of folders holding the ``.gz`` files; default: ``$MMMST_FASHION_MNIST_MIRROR`` if set, else
            torchvision's.
        resources: ``(file name, MD5)`` of the ``.gz`` files; default: torchvision's, which the files must match.
        debian_dir (str): the Debian package's folder.

    Raises:
        FashionMNISTUnavailableError: ``data_root`` is a file, a file there is damaged, the package's folder lacks a
            file or holds a damaged one, or no download worked (the message names the file or both ways). Nothing
            partial is left behind, and no file already in ``data_root`` is changed.
    """
    if osp.exists(data_root) and not osp.isdir(data_root):
        raise FashionMNISTUnavailableError(f'{data_root} is a file, not a folder; give a folder for the idx files')
    if osp.isdir(data_root):
        check_fashion_mnist(data_root)
    missing = missing_fashion_mnist(data_root)
    if not missing:
        return
    os.makedirs(data_root, exist_ok=True)
    if osp.isdir(debian_dir):
        absent = [name + '.gz' for name in missing if not osp.isfile(osp.join(debian_dir, name + '.gz'))]
        if absent:
            raise FashionMNISTUnavailableError(
                f'{debian_dir} lacks {", ".join(absent)} (the Debian package dataset-fashion-mnist holds all four)'
            )
        for name in missing:
            _gunzip(osp.join(debian_dir, name + '.gz'), osp.join(data_root, name))
        log(f'[data] Fashion-MNIST ready in {data_root} (from {debian_dir})')
        return
    _download(data_root, missing, log, mirrors, resources)
    log(f'[data] Fashion-MNIST ready in {data_root} (downloaded, MD5 checked)')


def _gunzip(src: str, dst: str) -> None:
    """Un-gzip ``src`` into ``dst`` through ``dst.partial``, checked (:func:`idx_file_problem`) before it takes its
    name: an interrupted copy or a damaged archive is never taken for a file, and leaves nothing behind.

    Raises:
        FashionMNISTUnavailableError: ``src`` is no gzip archive, or it holds no complete idx file.
    """
    partial = dst + '.partial'
    try:
        with gzip.open(src) as fin, open(partial, 'wb') as fout:
            shutil.copyfileobj(fin, fout)
        problem = idx_file_problem(partial)
        if problem:
            problem = f'un-gzips to a file that {problem.replace(partial, dst)}'
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        problem = f'is not a readable gzip archive ({err})'
    if problem:
        if osp.exists(partial):
            os.remove(partial)
        raise FashionMNISTUnavailableError(f'{src} {problem}; nothing was written to {dst}')
    os.replace(partial, dst)


def _download(data_root, missing, log, mirrors, resources) -> None:
    from torchvision.datasets import FashionMNIST
    from torchvision.datasets.utils import check_integrity, download_url

    if mirrors is None:
        mirrors = [os.environ[MIRROR_ENV]] if os.environ.get(MIRROR_ENV) else FashionMNIST.mirrors
    resources = dict(resources or FashionMNIST.resources)
    archives = osp.join(data_root, 'downloads')
    os.makedirs(archives, exist_ok=True)
    for name in missing:
        archive, md5 = name + '.gz', resources[name + '.gz']
        path = osp.join(archives, archive)
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip('/') + '/' + archive
            if not check_integrity(path, md5):
                log(f'[data] downloading {url}')
                try:
                    download_url(url, archives, archive)  # (torchvision's progress bar)
                except Exception as err:  # any network error: the next mirror, then the message
                    errors.append(f'{url}: {err}')
                    continue
            if check_integrity(path, md5):
                break
            errors.append(f'{url}: MD5 {_md5(path)} instead of {md5} (a damaged or altered file; removed)')
            os.remove(path)
        else:
            raise FashionMNISTUnavailableError(
                f'Fashion-MNIST could not be downloaded ({"; ".join(errors)}). Either install the Debian package '
                f'(as root: apt-get install dataset-fashion-mnist, which puts the files in {DEBIAN_DIR}), or set '
                f'{MIRROR_ENV} to a folder URL holding the four .gz files, or put {", ".join(missing)} (un-gzipped) '
                f'into {data_root}'
            )
        _gunzip(path, osp.join(data_root, name))


def _md5(path: str) -> str:
    from torchvision.datasets.utils import calculate_md5

    return calculate_md5(path)
