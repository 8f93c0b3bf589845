"""One error vocabulary: every refusal of mmmst is an MSTError, and a tool turns it into its one line through
``exit_on_refusal`` without naming exception classes."""

import ast
import glob
import importlib
import inspect
import os.path as osp
import pkgutil

import pytest

import mmmst
from mmmst.errors import ConfigError, MSTError, config_errors, exit_on_refusal, refusal_message
from tests.helpers import ROOT

#: what a tool may still catch by class: the system's own failures (a full disk, an image to skip), not refusals
SYSTEM = {'OSError', 'RuntimeError', 'UnreadableImageError', 'Preempted'}
REFUSALS_BY_BUILTIN = {'KeyError', 'ValueError', 'TypeError', 'FileNotFoundError'}


def mmmst_exception_classes():
    found = {}
    for module in pkgutil.walk_packages(mmmst.__path__, 'mmmst.'):
        for name, obj in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(obj, Exception) and obj.__module__.startswith('mmmst'):
                found[name] = obj
    return found


def test_every_refusal_is_an_mst_error_and_keeps_its_builtin_parent():
    classes = mmmst_exception_classes()
    not_refusals = {'Preempted'}  # a stop signal's control flow, not a refusal
    assert len(classes) >= 12
    for name, cls in classes.items():
        if name not in not_refusals:
            assert issubclass(cls, MSTError), name
    assert issubclass(classes['CorruptCheckpointError'], ValueError)
    assert issubclass(classes['UnreadableImageError'], OSError)
    assert issubclass(classes['WorkDirLockedError'], RuntimeError)


def test_no_tool_names_an_exception_class_to_decide_what_is_the_users_error():
    names = set(mmmst_exception_classes()) | REFUSALS_BY_BUILTIN
    for path in glob.glob(osp.join(ROOT, 'tools', '**', '*.py'), recursive=True):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = {n.id if isinstance(n, ast.Name) else getattr(n, 'attr', '') for n in ast.walk(node.type)}
                assert not (caught & names) - SYSTEM, f'{path}:{node.lineno} catches {sorted(caught & names)}'


def test_exit_on_refusal_prints_the_one_line_and_lets_bugs_through(capsys):
    with pytest.raises(SystemExit) as stop:
        with exit_on_refusal():
            raise ConfigError('model.backbone: patch_size must be a positive integer, got 0')
    assert stop.value.code == 'error: model.backbone: patch_size must be a positive integer, got 0'
    with pytest.raises(ZeroDivisionError):
        with exit_on_refusal():
            raise ZeroDivisionError('a bug')


def test_a_refusal_from_a_dataloader_worker_keeps_its_own_line():
    from mmmst.datasets.transforms.loading import UnreadableImageError

    # torch re-raises a worker's exception as the same class with the worker's traceback as its message
    worker = UnreadableImageError(
        'Caught UnreadableImageError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n'
        '  File "loading.py", line 9, in transform\nmmmst.datasets.transforms.loading.UnreadableImageError: '
        'a/b.jpg: cannot read this image (OSError: broken data stream)\n'
    )
    assert refusal_message(worker) == 'a/b.jpg: cannot read this image (OSError: broken data stream)'


def test_a_config_checks_builtin_errors_become_config_errors_with_their_message():
    @config_errors
    def check():
        raise KeyError('train_dataloader: no dataset')

    with pytest.raises(ConfigError, match='^train_dataloader: no dataset$') as caught:
        check()
    assert isinstance(caught.value, ValueError) and isinstance(caught.value.__cause__, KeyError)
