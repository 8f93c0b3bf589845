"""Write Fashion-MNIST's idx files out as PNG images in class folders: a "folder of your own images" with known
classes, to check the folder path of docs/own_data.md against the idx path of `make demo`.

    python tools/dataset_converters/fashion_mnist_to_folder.py data/fashion_mnist data/fashion_mnist_png \\
        --train-size 10000

Writes ``<out>/train/<class>/<index>.png`` (the first ``--train-size`` training images, the demo's subset) and
``<out>/test/<class>/<index>.png`` (every test image), 28 x 28 gray, file names zero-padded so that sorted paths
keep the idx order within a class.
"""

import argparse
import os
import os.path as osp
import sys

from mmmst.datasets.fashion_mnist import CLASSES, missing_fashion_mnist, read_fashion_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('idx_root', help="the folder of Fashion-MNIST's un-gzipped idx files")
    parser.add_argument('out', help='the folder to write')
    parser.add_argument('--train-size', type=int, default=10000, help='the first N training images')
    args = parser.parse_args(argv)
    missing = missing_fashion_mnist(args.idx_root)
    if missing:
        sys.exit(
            f'error: {args.idx_root} lacks {", ".join(missing)} (tools/dataset_converters/prepare_fashion_mnist.py)'
        )
    import cv2

    for split, limit in (('train', args.train_size), ('test', None)):
        images, labels = (array[:limit] for array in read_fashion_mnist(args.idx_root, split))
        for name in CLASSES:
            os.makedirs(osp.join(args.out, split, name), exist_ok=True)
        for index, (image, label) in enumerate(zip(images, labels)):
            cv2.imwrite(osp.join(args.out, split, CLASSES[label], f'{index:05d}.png'), image)
        print(f'{split}: {len(images)} images in {osp.join(args.out, split)}')


if __name__ == '__main__':
    main()
