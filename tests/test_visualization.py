"""MSTVisualizer (figures from tensors), the teacher-attention API behind them, and the library / tools split."""

import ast
import os
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmmst.apis import init_model, teacher_attention_and_mask
from mmmst.visualization import MSTVisualizer

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CFG = osp.join(ROOT, 'configs/mst/mst_vit-4l128-p4_1xb64-coslr-5e_fashion-mnist.py')


@pytest.fixture
def visualizer(tmp_path):
    vis = MSTVisualizer.get_instance(
        f'test_{tmp_path.name}', vis_backends=[dict(type='LocalVisBackend')], save_dir=str(tmp_path / 'vis')
    )
    return vis


def test_teacher_attention_and_mask_follow_the_generator():
    """Attention is the CLS row of a softmax (positive; the patches share what the CLS token leaves); the mask
    lies among the lowest N // num attention patches (eq. 4-5) and is the same for the same seed."""
    model = init_model(Config.fromfile(DEMO_CFG), seed=0)
    images = torch.randn(4, 1, 28, 28)
    attention, mask = teacher_attention_and_mask(model, images)
    assert attention.shape == mask.shape == (4, 7, 7) and mask.dtype == torch.bool
    assert (attention > 0).all() and (attention.sum(dim=(1, 2)) <= 1 + 1e-6).all()
    candidates = attention.flatten(1).argsort(dim=1)[:, : 49 // model.mask_generator.num]
    outside = torch.ones(4, 49, dtype=torch.bool).scatter_(1, candidates, False)
    assert not (mask.flatten(1) & outside).any()
    assert torch.equal(mask, teacher_attention_and_mask(model, images)[1])


def test_figures_go_to_the_file_or_to_the_backends(visualizer, tmp_path):
    images, attention = torch.rand(3, 1, 28, 28), torch.rand(3, 7, 7)
    mask = torch.zeros(3, 7, 7, dtype=torch.bool)
    out = tmp_path / 'attention.png'
    drawn = visualizer.visualize_attention_and_masks(images, attention, mask, out_file=str(out))
    assert drawn.dtype == np.uint8 and drawn.ndim == 3 and drawn.shape[2] == 3
    assert np.array_equal(mmcv.imread(str(out), channel_order='rgb'), drawn)  # PNG: lossless
    two_rows = visualizer.visualize_attention_and_masks(images, attention)  # no mask: one row fewer
    assert two_rows.shape[0] < drawn.shape[0]

    curves = {'mst': [(1, 55.0), (2, 57.0)], 'dino': [(1, 54.0), (2, 53.0)]}
    visualizer.visualize_curves(curves, 'epoch', 'k-NN top-1 (%)', hline=(58.9, 'random init'), name='knn')
    monitors = {'teacher_entropy': [(0, 5.0), (20, 4.1)], 'center_norm': [(0, 0.1), (20, 0.2)]}
    visualizer.visualize_monitors(monitors, num_prototypes=256)
    written = sorted(os.listdir(tmp_path / 'vis' / 'vis_data' / 'vis_image'))
    assert written == ['attention_and_masks_0.png', 'knn_0.png', 'monitors_0.png']


def _python_files(folder):
    for dirpath, dirnames, files in os.walk(osp.join(ROOT, folder)):
        dirnames[:] = [d for d in dirnames if d != '.mim']  # mim's copy of configs/ and tools/, not the library
        yield from (osp.join(dirpath, f) for f in files if f.endswith('.py'))


def _imported_modules(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_library_imports_no_script_and_runs_no_subprocess():
    """mmmst/ is the library: imports go tools/ and projects/ -> mmmst/, never back, and nothing in it shells
    out; tools/ imports no project, and no script edits sys.path to find another."""
    offenders = [
        (osp.relpath(path, ROOT), module)
        for path in _python_files('mmmst')
        for module in _imported_modules(path)
        if module.split('.')[0] in ('subprocess', 'tools', 'projects') or module == 'os.system'
    ]
    assert offenders == []
    tools = [(osp.relpath(p, ROOT), m) for p in _python_files('tools') for m in _imported_modules(p)]
    assert [(p, m) for p, m in tools if m.split('.')[0] == 'projects'] == []
    scripts = [p for folder in ('tools', 'projects', 'mmmst') for p in _python_files(folder)]
    assert [osp.relpath(p, ROOT) for p in scripts if 'sys.path.insert' in open(p).read()] == []
    sources = {path: open(path).read() for path in _python_files('mmmst')}
    assert not [p for p, s in sources.items() if 'os.system(' in s or 'os.popen(' in s]
