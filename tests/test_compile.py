"""mmengine's ``compile=True`` on MST: the student's and the teacher's networks compiled in place, the same losses
as eager."""

import json
import os.path as osp
from glob import glob

import pytest

from tests.helpers import DEMO_CFG, PY, run, small_train_options


def logged_losses(work_dir):
    rows = [json.loads(line) for line in open(glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))[0])]
    return [row[key] for row in rows if 'loss_dino' in row for key in ('loss_dino', 'loss_restore')]


@pytest.mark.slow
def test_compile_true_trains_with_the_losses_of_eager(fashion_mnist, tmp_path):
    """tools/train.py --cfg-options compile=True (inductor, on the CPU) for 2 iterations of the demo's network: it
    trains, says in one line what it compiled and what stays eager, and logs the losses of the eager run (to 1e-4
    relative: compiled kernels may sum in another order)."""
    options = ['train_dataloader.dataset.indices=4', 'default_hooks.logger.interval=1']
    eager = run([PY, 'tools/train.py', DEMO_CFG] + small_train_options(fashion_mnist, tmp_path / 'eager') + options)
    assert eager.returncode == 0, eager.stderr[-3000:]
    compiled = run(
        [PY, 'tools/train.py', DEMO_CFG]
        + small_train_options(fashion_mnist, tmp_path / 'compiled')
        + options
        + ['compile=True']
    )
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    assert (
        'compile: torch.compile() of student_backbone, student_neck, decoder, teacher_backbone, teacher_neck; left '
        'eager: data preprocessor, mask generator, losses, optimizer step'
    ) in compiled.stdout + compiled.stderr
    expected, got = logged_losses(tmp_path / 'eager'), logged_losses(tmp_path / 'compiled')
    assert len(got) == len(expected) == 4  # 2 iterations x 2 losses
    assert got == pytest.approx(expected, rel=1e-4)
