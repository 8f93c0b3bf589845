"""Install mmmst.

Follows OpenMMLab's mim convention: ``configs/``, ``tools/`` and ``model-index.yml`` are placed under
``mmmst/.mim/`` (symlinked in editable installs, copied otherwise), so that ``_base_ = 'mmmst::mst/....py'``,
``mim search mmmst`` and ``mim train mmmst ...`` work after a plain ``pip install``.
"""

import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def read_version():
    namespace = {}
    with open(osp.join(ROOT, 'mmmst', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_requirements(name):
    with open(osp.join(ROOT, 'requirements', name)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def add_mim_extension():
    """Place configs/, tools/ and model-index.yml inside the package as ``mmmst/.mim`` (what mim reads)."""
    if any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'build')):
        mode = 'copy'
    elif any(cmd in sys.argv for cmd in ('develop', 'editable_wheel', 'egg_info')):
        mode = 'symlink'  # (egg_info alone: tools/setup_env.sh's development install)
    else:
        return
    mim_dir = osp.join(ROOT, 'mmmst', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src = osp.join(ROOT, name)
        dst = osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if not osp.exists(src):
            continue
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        else:
            shutil.copytree(src, dst) if osp.isdir(src) else shutil.copy(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmmst',
        version=read_version(),
        description='MST: Masked Self-Supervised Transformer for OpenMMLab',
        long_description=open(osp.join(ROOT, 'README.md')).read() if osp.exists(osp.join(ROOT, 'README.md')) else '',
        long_description_content_type='text/markdown',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'tests.*', 'demo', 'projects', 'projects.*')),
        include_package_data=True,
        package_data={'mmmst': ['.mim/configs/**/*', '.mim/tools/**/*', '.mim/model-index.yml']},
        python_requires='>=3.8',
        # mmcv is left to the installer, as in mmpretrain: mmcv-lite 2.1.0 is enough for pretraining and
        # evaluation, mmcv 2.1.0 with its compiled ops is needed by the `downstream` extra (mmdet / mmseg).
        install_requires=read_requirements('runtime.txt'),
        extras_require={'downstream': read_requirements('downstream.txt'), 'tests': read_requirements('tests.txt')},
        license='Apache License 2.0',
        zip_safe=False,
    )
