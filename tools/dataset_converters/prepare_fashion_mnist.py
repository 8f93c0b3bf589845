"""Put Fashion-MNIST's four idx files, un-gzipped, into a folder (what mmpretrain's FashionMNIST reads).

    python tools/dataset_converters/prepare_fashion_mnist.py data/fashion_mnist

Offline, from Debian's ``dataset-fashion-mnist`` package (/usr/share/datasets/fashion-mnist; installed with apt-get
when this runs as root on Debian / Ubuntu); elsewhere, downloaded with torchvision's downloader from the original
mirrors (MD5 checked; MMMST_FASHION_MNIST_MIRROR=<folder URL> names another mirror). Both ways fail: one line says
each. Files already in the folder are checked (idx header, a size that matches it) and never changed: a damaged
one is named in one line, and nothing partial is left behind.
"""

import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys

from mmmst.datasets.fashion_mnist import DEBIAN_DIR, missing_fashion_mnist, prepare_fashion_mnist
from mmmst.errors import exit_on_refusal


def install_debian_package() -> None:
    """``apt-get install dataset-fashion-mnist`` where that can work (root, apt-get on the PATH); apt's own lines are
    shown only when it fails (the download is tried next)."""
    if not (shutil.which('apt-get') and hasattr(os, 'geteuid') and os.geteuid() == 0):
        return
    print('[data] installing Debian package dataset-fashion-mnist ...', flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    command = ['apt-get', 'install', '-y', '-q', 'dataset-fashion-mnist']
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        print(f'[data] apt-get install failed: {(done.stderr.strip().splitlines() or ["?"])[-1]}', flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data_root', nargs='?', default='data/fashion_mnist')
    parser.add_argument(
        '--debian-dir', default=DEBIAN_DIR, help="the Debian package's folder of .gz files (or a copy of it)"
    )
    args = parser.parse_args(argv)
    if osp.exists(args.debian_dir) and not osp.isdir(args.debian_dir):  # a missing one: no package, download
        sys.exit(f'error: --debian-dir {args.debian_dir!r} is a file, not a folder')
    if missing_fashion_mnist(args.data_root) and args.debian_dir == DEBIAN_DIR and not osp.isdir(DEBIAN_DIR):
        install_debian_package()
    with exit_on_refusal():
        prepare_fashion_mnist(args.data_root, log=lambda line: print(line, flush=True), debian_dir=args.debian_dir)


if __name__ == '__main__':
    main()
