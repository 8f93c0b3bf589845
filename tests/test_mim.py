"""`mim train mmmst <config>` and `mim test mmmst <config>`, on the development install of `make setup` (this test
environment's) and on a regular install (``pip install .``, into a folder).

mim finds a config by its file name inside the installed package's ``.mim/configs`` and runs the package's own
``.mim/tools/train.py`` / ``test.py``; tools/setup_env.sh's development install keeps the package folder where mim
0.3.9 looks (the repository, with ``mmmst.egg-info`` beside it and ``mmmst/.mim`` linking configs/ and tools/).
"""

import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from tests.helpers import ROOT

MIM = osp.join(osp.dirname(sys.executable), 'mim')
DEMO = 'mst_vit-4l128-p4_1xb64-coslr-5e_fashion-mnist.py'
PROBE = 'deit-small-p16_linear-8xb128-coslr-100e_in1k.py'


@pytest.fixture(scope='module', params=['development', 'regular'])
def installed(request, tmp_path_factory):
    """The environment of a mmmst install: this one (``make setup``'s development install), or mmmst installed (not
    editable) into a folder put on the path.

    Built from a copy of the sources: a build writes ``mmmst/.mim`` (copies) and ``build/`` next to setup.py, which
    must not replace the development tree's own (symlinked) ``.mim``.
    """
    if request.param == 'development':
        from mim.utils import get_installed_path

        assert get_installed_path('mmmst') == osp.join(ROOT, 'mmmst')  # where mim looks: the working tree
        return dict(os.environ, OMP_NUM_THREADS='1')
    source, target = tmp_path_factory.mktemp('source') / 'mmmst', tmp_path_factory.mktemp('site')
    skip = ('.git', '.venv', 'work_dirs', 'data', 'build', '*.egg-info', '.mim', '__pycache__', '.ruff_cache')
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip))
    pip = [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-build-isolation', '--target']
    subprocess.run(pip + [str(target), str(source)], check=True, capture_output=True, cwd=str(target))
    assert osp.isfile(target / 'mmmst' / '.mim' / 'configs' / 'mst' / DEMO)
    assert osp.isfile(target / 'mmmst' / '.mim' / 'tools' / 'train.py')
    return dict(os.environ, PYTHONPATH=str(target), OMP_NUM_THREADS='1')


def mim(args, env, cwd):
    result = subprocess.run([MIM] + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, input='')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_mim_train_finds_the_config_in_the_installed_package(installed, fashion_mnist, tmp_path):  # noqa: F811
    work = tmp_path / 'work'
    log = mim(
        [
            'train',
            'mmmst',
            DEMO,
            '--gpus',
            '0',
            '--work-dir',
            str(work),
            '--cfg-options',
            f'train_dataloader.dataset.data_root={fashion_mnist}',
            'train_dataloader.dataset.indices=8',
            'train_dataloader.batch_size=4',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'train_cfg.max_epochs=1',
        ],  # fmt: skip
        installed,
        cwd=str(tmp_path),  # not the repository: mim must find the config in the package
    )
    assert 'Epoch(train) [1][2/2]' in log and 'Training finished successfully' in log
    assert 'state_dict' in torch.load(work / 'epoch_1.pth', weights_only=False)


@pytest.mark.slow
def test_mim_test_evaluates_with_the_installed_tools(installed, tmp_path):
    """The linear-probe config through ``mim test``: accuracy on a 2-image ImageNet val tree."""
    import numpy as np
    from PIL import Image

    from mmmst.apis import init_model

    root = tmp_path / 'imagenet'
    os.makedirs(root / 'val')
    os.makedirs(root / 'meta')
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(root / 'val' / f'v{i}.JPEG')
    (root / 'meta' / 'val.txt').write_text('v0.JPEG 0\nv1.JPEG 1\n')
    cfg = Config.fromfile(osp.join(ROOT, 'configs/mst/benchmarks', PROBE))
    cfg.model.backbone.init_cfg = None  # the classifier's own checkpoint is evaluated
    checkpoint = tmp_path / 'linear.pth'
    torch.save(dict(state_dict=init_model(cfg).state_dict()), checkpoint)

    log = mim(
        [
            'test',
            'mmmst',
            PROBE,
            '--checkpoint',
            str(checkpoint),
            '--gpus',
            '0',
            '--work-dir',
            str(tmp_path / 'test'),
            '--cfg-options',
            'model.backbone.init_cfg=None',
            f'test_dataloader.dataset.data_root={root}',
            'test_dataloader.batch_size=2',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False',
        ],  # fmt: skip
        installed,
        cwd=str(tmp_path),
    )
    assert 'accuracy/top1: ' in log
