"""What several test modules share (fixtures live in conftest.py): paths, the command runner, small data files."""

import os
import os.path as osp
import struct
import subprocess
import sys

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PY = sys.executable
#: the 4-layer Fashion-MNIST recipe (the ablation runner's default), the small config most tests train with
SMALL_CFG = osp.join(ROOT, 'configs/mst/mst_vit-4l128-p4_1xb64-coslr-5e_fashion-mnist.py')
#: the demo's config (`make demo`)
DEMO_CFG = osp.join(ROOT, 'configs/mst/mst_vit-2l128-p4_1xb64-coslr-10e_fashion-mnist.py')


def write_idx(path, array):
    """An idx file as in (Fashion-)MNIST: magic, dims, then uint8 data."""
    with open(path, 'wb') as f:
        f.write(struct.pack('>HBB', 0, 8, array.ndim))
        f.write(struct.pack('>' + 'I' * array.ndim, *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def write_fashion_mnist(root) -> str:
    """A 64-train / 32-test Fashion-MNIST in the exact un-gzipped idx format: class k is a bright k-th stripe."""
    rng = np.random.default_rng(0)
    for prefix, n in (('train', 64), ('t10k', 32)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28))
        for i, k in enumerate(labels):
            images[i, 2 * k + 4 : 2 * k + 7] = 250
        write_idx(osp.join(root, f'{prefix}-images-idx3-ubyte'), images)
        write_idx(osp.join(root, f'{prefix}-labels-idx1-ubyte'), labels)
    return str(root)


def run(cmd, extra_env=None, **kwargs):
    """A user's command in the repository, with the project on PYTHONPATH and one thread per process."""
    pythonpath = os.pathsep.join(p for p in (ROOT, os.environ.get('PYTHONPATH')) if p)
    env = dict(os.environ, PYTHONPATH=pythonpath, PYTHON=PY, OMP_NUM_THREADS='1')
    env.update(extra_env or {})
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, **kwargs)


def small_train_options(data_root, work_dir, epochs=1):
    """`tools/train.py` options for a seconds-long run of a Fashion-MNIST config on 8 images, batch 2."""
    return [
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}',
        'train_dataloader.dataset.indices=8',
        'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'train_cfg.max_epochs={epochs}',
    ]


def last_line(result) -> str:
    """The last line a command wrote to stderr (where the tools' one-line errors go)."""
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ''
