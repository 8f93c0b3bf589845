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


_TOOLS = {}


def run_main(tool, *args):
    """``python <tool> <args>`` (``tool``: a script's path in the repository, or a module as for ``python -m``) for a
    command that must be refused before any work, run as the tool's ``main(args)`` in this process: the finished
    "process" (``returncode``, ``stdout``, ``stderr``) as ``run`` gives it, without the seconds a new interpreter
    spends importing torch and the OpenMMLab stack.

    ``sys.exit('error: ...')`` becomes return code 1 with the message on stderr, as the interpreter does; an
    exception the tool lets through fails the test with its traceback. The environment, ``sys.argv``, the
    working directory and the stop signals' handlers are restored. The refusals of each tool keep one test through
    a real process (``run``), for what happens between the interpreter and ``main``."""
    import contextlib
    import importlib
    import importlib.util
    import io

    path = osp.join(ROOT, tool)
    if path not in _TOOLS and not tool.endswith('.py'):
        _TOOLS[path] = importlib.import_module(tool)
    elif path not in _TOOLS:
        spec = importlib.util.spec_from_file_location(f'_tool_{osp.splitext(osp.basename(tool))[0]}', path)
        _TOOLS[path] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_TOOLS[path])
    args = [str(a) for a in args]
    import signal

    environ, argv, cwd = dict(os.environ), list(sys.argv), os.getcwd()
    stops = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT, signal.SIGHUP)
    handlers = {s: signal.getsignal(s) for s in stops}  # tools/train.py catches stop signals from its start
    out, err = io.StringIO(), io.StringIO()
    try:
        os.chdir(ROOT)
        sys.argv = [path, *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            _TOOLS[path].main(args)
        code = 0
    except SystemExit as exit:
        code = exit.code
    finally:
        os.environ.clear()
        os.environ.update(environ)
        sys.argv = argv
        os.chdir(cwd)
        for stop, handler in handlers.items():
            signal.signal(stop, handler)
    if isinstance(code, str):
        err.write(code + '\n')
        code = 1
    return subprocess.CompletedProcess([tool, *args], code or 0, out.getvalue(), err.getvalue())


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


def copy_run(work_dir, to):
    """A copy of a finished run's work dir whose ``last_checkpoint`` names the copy's own checkpoint (a copy made
    by hand names the original's, which ``--resume`` refuses); ``to``, as a ``pathlib.Path``."""
    import pathlib
    import shutil

    to = pathlib.Path(to)
    shutil.copytree(work_dir, to, dirs_exist_ok=True)
    last = (to / 'last_checkpoint').read_text().strip()
    (to / 'last_checkpoint').write_text(str(to / osp.basename(last)))
    return to


def reference_knn_top1(bank, bank_labels, query, query_labels, num_classes, k=20, temperature=0.07):
    """DINO's weighted k-NN top-1 (percent), written with numpy one query at a time: a reference independent of
    ``mmmst.evaluation`` (L2-normalised features, the k most cosine-similar bank features, each voting for its
    label with weight exp(sim / T); k larger than the bank means the whole bank)."""
    import numpy as np

    bank = np.asarray(bank, dtype=np.float64)
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    correct = 0
    for feature, label in zip(np.asarray(query, dtype=np.float64), np.asarray(query_labels)):
        sims = bank @ (feature / np.linalg.norm(feature))
        votes = np.zeros(num_classes)
        for j in np.argsort(-sims, kind='stable')[:k]:
            votes[int(bank_labels[j])] += np.exp(sims[j] / temperature)
        correct += int(votes.argmax() == label)
    return 100.0 * correct / len(query)


def reference_knn_of_model(cfg, model, feature='cls', num_classes=10):
    """:func:`reference_knn_top1` of an MST teacher on the config's ``knn_bank_dataloader`` and
    ``knn_query_dataloader``; ``feature``: 'cls' (the CLS token) or 'patch-mean' (the mean patch token)."""
    return reference_knn_of_loaders(cfg.knn_bank_dataloader, cfg.knn_query_dataloader, model, feature, num_classes)


def reference_knn_of_loaders(bank_cfg, query_cfg, model, feature='cls', num_classes=10, k=20):
    """:func:`reference_knn_top1` of an MST teacher (its backbone's ``encode``) on two labelled loader configs."""
    import torch
    from mmengine.runner import Runner

    def features(loader_cfg):
        feats, labels = [], []
        for data in Runner.build_dataloader(loader_cfg, seed=0):
            data = model.data_preprocessor(data, False)
            with torch.no_grad():
                out = model.teacher.module.backbone.encode(data['inputs'])
            feats.append(out.cls_token if feature == 'cls' else out.patch_map.mean(dim=(2, 3)))
            labels += [int(sample.gt_label) for sample in data['data_samples']]
        return torch.cat(feats).numpy(), labels

    bank, bank_labels = features(bank_cfg)
    query, query_labels = features(query_cfg)
    return reference_knn_top1(bank, bank_labels, query, query_labels, num_classes, k)
