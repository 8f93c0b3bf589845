"""`make demo` then `make test`, and `make test` then `make demo`: the set-up tiers in a new virtual environment.

One environment goes core -> full -> core, which covers both orders: the full tier installed over the core one
(mmcv-lite replaced by mmcv), and a core request on a full environment (what `make demo` after `make test` asks),
which must be a no-op. Minutes: torch is installed from the machine's wheels, mmcv from the cached build.
"""

import os
import subprocess

import pytest

from tests.helpers import ROOT


def setup(venv, tier):
    """``bash tools/setup_env.sh <tier>`` into ``venv``, as `make` runs it (the user's interpreter and PATH)."""
    env = {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'PYTHONPATH')}
    env['MMMST_VENV'] = str(venv)
    return subprocess.run(['bash', 'tools/setup_env.sh', tier], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1200)  # fmt: skip


def distributions(venv):
    listed = subprocess.run([str(venv / 'bin' / 'python'), '-m', 'pip', 'list', '--format=freeze'],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    return {line.split('==')[0].lower() for line in listed.splitlines()}


@pytest.mark.slow
def test_core_then_full_then_core_in_one_environment(tmp_path):
    venv = tmp_path / 'venv'
    core = setup(venv, 'core')
    assert core.returncode == 0, core.stdout[-3000:] + core.stderr[-3000:]
    assert (venv / '.mmmst-setup-done').read_text().split()[0] == 'core'
    installed = distributions(venv)
    assert 'mmcv-lite' in installed and not {'mmcv', 'mmdet', 'mmsegmentation'} & installed
    silent = subprocess.run([str(venv / 'bin' / 'python'), '-c', 'import mmmst'], capture_output=True, text=True)
    assert silent.returncode == 0 and 'MultiScaleDeformableAttention' not in silent.stderr

    full = setup(venv, 'full')
    assert full.returncode == 0, full.stdout[-3000:] + full.stderr[-3000:]
    assert 'replacing mmcv-lite by mmcv with ops' in full.stdout
    installed = distributions(venv)
    assert {'mmcv', 'mmdet', 'mmsegmentation', 'openmim'} <= installed and 'mmcv-lite' not in installed
    ops = subprocess.run([str(venv / 'bin' / 'python'), '-W', 'ignore', '-c', 'import mmcv.ops, mmdet, mmseg'],
                         capture_output=True, text=True)  # fmt: skip
    assert ops.returncode == 0, ops.stderr[-2000:]

    again = setup(venv, 'core')  # `make demo` after `make test`
    assert again.returncode == 0
    assert (
        again.stdout.strip()
        == f'[setup] environment up to date: full tier in {venv} (MMMST_SETUP_FORCE=1 re-checks every step)'
    )
    assert 'mmcv' in distributions(venv) and 'mmcv-lite' not in distributions(venv)
