"""Shared fixtures; everything runs on the CPU. Shared helpers (paths, the command runner) are in helpers.py."""

import logging
import os
import socket

import pytest
import torch
from mmengine.registry import DefaultScope

import mmmst  # noqa: F401  (registers the components and the safe checkpoint loader)

# One thread per test process, as every command a test starts has (helpers.run: OMP_NUM_THREADS=1): `make test` runs
# as many test processes as cores, and torch's default of one thread per core in each of them made the in-process
# model tests twice as slow (oversubscribed cores).
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """The set-up tier test first: it builds a fresh virtual environment (minutes), the longest test by far, and
    started first it runs beside the others instead of being the tail of `make test` (pytest-xdist's worksteal
    scheduler then balances the rest over the processes)."""
    items.sort(key=lambda item: 'test_setup_tiers' not in item.nodeid)  # stable: otherwise the collection order


#: tests skipped in this session, with their reasons (every process's reports reach the controlling one)
SKIPPED = []


def pytest_runtest_logreport(report):
    if report.skipped:
        SKIPPED.append(f'{report.nodeid}: {report.longrepr[-1] if isinstance(report.longrepr, tuple) else ""}')


def pytest_sessionfinish(session, exitstatus):
    """Under CI (``CI=true``, as ``.ci/run`` sets it) a skipped test fails the run: CI can run every test, and a
    skip there hides a promise nobody checked. The skips and their reasons are listed either way."""
    if not SKIPPED or hasattr(session.config, 'workerinput'):  # a pytest-xdist worker: its controller decides
        return
    reporter = session.config.pluginmanager.get_plugin('terminalreporter')
    reporter.ensure_newline()
    for line in SKIPPED:
        reporter.write_line(f'skipped: {line}')
    if os.environ.get('CI') == 'true' and session.exitstatus == 0:
        reporter.write_line(f'CI: {len(SKIPPED)} test(s) skipped; CI runs every test, so this run fails', red=True)
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _seed_and_scope():
    """Every test starts seeded and in mmpretrain's scope; a scope a test switches to (mmdet, mmseg) ends with it."""
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture
def max_iters():
    """Sets the message hub's ``max_iters``, which CosineEMA reads, as a Runner would."""
    from mmengine.logging import MessageHub

    def set_max_iters(value):
        MessageHub.get_current_instance().update_info('max_iters', value)

    return set_max_iters


@pytest.fixture
def free_port():
    """A function returning a free local port, so that parallel or consecutive launcher runs do not collide."""

    def port() -> str:
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            return str(sock.getsockname()[1])

    return port


@pytest.fixture
def mmengine_warnings():
    """The messages of warnings mmengine's current logger emits while the test runs (a list, filled live)."""
    from mmengine.logging import MMLogger

    messages = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


@pytest.fixture(scope='session')
def mst_checkpoints(tmp_path_factory):
    """MST pretraining checkpoints (teacher != student, both with the mask token) of DeiT-S and Swin-T:
    ``{'vit' | 'swin': (path, teacher backbone state dict)}``; the downstream tests load them."""
    from mmmst.models import MSTSwinTransformer, MSTViT

    root = tmp_path_factory.mktemp('ckpt')
    out = {}
    masking = dict(with_mask_token=True)
    for name, backbone in (('vit', MSTViT(arch='deit-small', **masking)), ('swin', MSTSwinTransformer(**masking))):
        backbone.init_weights()
        student = backbone.state_dict()
        teacher = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in student.items()}
        state = {f'teacher.module.backbone.{k}': v for k, v in teacher.items()}
        state.update({f'backbone.{k}': v for k, v in student.items()})
        path = root / f'mst_{name}.pth'
        torch.save(dict(state_dict=state, meta=dict(epoch=100)), path)
        out[name] = (str(path), teacher)
    return out


@pytest.fixture(scope='session')
def fashion_mnist(tmp_path_factory):
    """A 64-train / 32-test Fashion-MNIST in the idx format (``helpers.write_fashion_mnist``); its folder."""
    from tests.helpers import write_fashion_mnist

    return write_fashion_mnist(tmp_path_factory.mktemp('fashion_mnist'))


@pytest.fixture(scope='session')
def one_epoch_run(fashion_mnist, tmp_path_factory):
    """The work dir of one finished 1-epoch ``tools/train.py`` run of the 4-layer config (``small_train_options``),
    shared by the tests that start from it: read it, or continue in a copy (``helpers.copy_run``)."""
    from tests.helpers import PY, SMALL_CFG, run, small_train_options

    work = tmp_path_factory.mktemp('one_epoch_run')
    result = run([PY, 'tools/train.py', SMALL_CFG] + small_train_options(fashion_mnist, work))
    assert result.returncode == 0, result.stderr[-3000:]
    return work


@pytest.fixture(scope='session')
def imagenet_tree(tmp_path_factory):
    """A 4-image ImageNet tree (train/val folders + meta/*.txt) in mmpretrain's layout; its folder."""
    import os

    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp('imagenet')
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        os.makedirs(root / split / 'n01440764')
        lines = []
        for i in range(4):
            name = f'n01440764/img_{i}.JPEG'
            Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(root / split / name, 'JPEG')
            lines.append(f'{name} 0')
        os.makedirs(root / 'meta', exist_ok=True)
        (root / 'meta' / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    return str(root)
