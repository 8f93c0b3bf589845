"""Put Fashion-MNIST's four idx files, un-gzipped, into a folder (what mmpretrain's FashionMNIST reads).

    python tools/dataset_converters/prepare_fashion_mnist.py data/fashion_mnist

The files come from Debian's ``dataset-fashion-mnist`` package (/usr/share/datasets/fashion-mnist), which is
installed with apt-get when this runs as root on Debian / Ubuntu. Nothing is downloaded from a dataset hub: without
the package, the message says where to put the files.
"""

import argparse
import gzip
import os
import os.path as osp
import shutil
import subprocess
import sys

from mmmst.datasets.fashion_mnist import missing_fashion_mnist

DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'


def prepare(data_root: str) -> None:
    """Un-gzip the missing idx files into ``data_root`` (installing the Debian package first when possible)."""
    missing = missing_fashion_mnist(data_root)
    if not missing:
        return
    if not osp.isdir(DEBIAN_DIR) and shutil.which('apt-get') and os.geteuid() == 0:
        print('[data] installing Debian package dataset-fashion-mnist ...', flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        subprocess.run(['apt-get', 'install', '-y', '-q', 'dataset-fashion-mnist'], env=env, stdout=subprocess.DEVNULL)
    if not osp.isdir(DEBIAN_DIR):
        sys.exit(
            f'error: Fashion-MNIST is not on this machine ({DEBIAN_DIR} does not exist).\n'
            '  On Debian/Ubuntu as root: apt-get install dataset-fashion-mnist\n'
            f'  Elsewhere: put {", ".join(missing)} (un-gzipped) into {data_root}'
        )
    os.makedirs(data_root, exist_ok=True)
    for name in missing:
        with gzip.open(osp.join(DEBIAN_DIR, name + '.gz')) as src, open(osp.join(data_root, name), 'wb') as dst:
            shutil.copyfileobj(src, dst)
    print(f'[data] Fashion-MNIST ready in {data_root}', flush=True)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data_root', nargs='?', default='data/fashion_mnist')
    prepare(parser.parse_args().data_root)
