"""`make demo` then `make test`, and `make test` then `make demo`: the set-up tiers in a new virtual environment.

One environment goes core -> full -> core, which covers both orders: the full tier installed over the core one
(mmcv-lite replaced by mmcv), and a core request on a full environment (what `make demo` after `make test` asks),
which must be a no-op. About two minutes: mmcv comes from the cached build, and torch with its dependencies (5 GB,
installed by the set-up `make test` ran a moment before, and not what the tiers differ in) is hard-linked from
this interpreter's environment, so the set-up keeps it as it would keep a cluster's torch.
"""

import importlib.metadata
import os
import shutil
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from tests.helpers import ROOT

#: installed by the set-up's own steps (the build tools), never taken over from this environment
OWN_STEPS = {'pip', 'setuptools', 'wheel'}


def user_env(**extra):
    """The environment `make` runs the set-up in: the user's interpreter and PATH, no active virtual environment."""
    env = {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'PYTHONPATH')}
    return dict(env, **extra)


def setup(venv, tier):
    """``bash tools/setup_env.sh <tier>`` into ``venv``, as `make` runs it."""
    env = user_env(MMMST_VENV=str(venv))
    return subprocess.run(['bash', 'tools/setup_env.sh', tier], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1200)  # fmt: skip


def torch_closure():
    """The installed distributions torch and torchvision need, extras and environment markers followed."""
    found, todo = {}, [Requirement('torch'), Requirement('torchvision')]
    while todo:
        requirement = todo.pop()
        dist = importlib.metadata.distribution(requirement.name)
        key = dist.metadata['Name'].lower().replace('_', '-')
        if key in found or key in OWN_STEPS:
            continue
        found[key] = dist
        extras = [''] + sorted(requirement.extras)
        for line in dist.requires or []:
            needed = Requirement(line)
            if needed.marker is None or any(needed.marker.evaluate({'extra': e}) for e in extras):
                todo.append(needed)
    return list(found.values())


def seed_torch(venv):
    """A new virtual environment (as the set-up makes it) holding hard links to this environment's torch closure:
    installed in the new environment as far as pip and the set-up can tell, at the cost of a directory walk."""
    subprocess.run(['python3', '-m', 'venv', str(venv)], env=user_env(), check=True)  # the set-up's PYTHON
    version = f'python{sys.version_info.major}.{sys.version_info.minor}'
    site_packages = venv / 'lib' / version / 'site-packages'
    assert site_packages.is_dir(), f'the new environment is not {version}: {list((venv / "lib").iterdir())}'
    for dist in torch_closure():
        for file in dist.files or []:
            source = dist.locate_file(file)
            if not source.is_file():
                continue  # RECORD may list a file that is gone (a .pyc never written)
            target = site_packages / file
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                try:
                    os.link(source, target)
                except OSError:  # another file system: a copy (slower, the same result)
                    shutil.copy2(source, target)


def distributions(venv):
    listed = subprocess.run([str(venv / 'bin' / 'python'), '-m', 'pip', 'list', '--format=freeze'],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    return {line.split('==')[0].lower() for line in listed.splitlines()}


@pytest.mark.slow
def test_core_then_full_then_core_in_one_environment(tmp_path):
    venv = tmp_path / 'venv'
    seed_torch(venv)
    core = setup(venv, 'core')
    assert core.returncode == 0, core.stdout[-3000:] + core.stderr[-3000:]
    assert '[setup] keeping torch' in core.stdout
    assert (venv / '.mmmst-setup-done').read_text().split()[0] == 'core'
    installed = distributions(venv)
    assert 'mmcv-lite' in installed and not {'mmcv', 'mmdet', 'mmsegmentation'} & installed
    assert 'timm' in installed  # the own-images guide's last step runs on the core tier
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
