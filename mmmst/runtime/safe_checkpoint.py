"""Weights-only loading of mmengine checkpoints under torch >= 2.6.

torch >= 2.6 unpickles checkpoints with ``weights_only=True``: only tensors, containers, primitives and
allow-listed globals come back, so a checkpoint cannot run code. mmengine 0.10.7 writes more than that into
its checkpoints: the message hub holds ``HistoryBuffer`` objects (numpy arrays inside), and
``HistoryBuffer.__getstate__`` adds its statistics methods, which pickle as ``getattr(HistoryBuffer, 'min')``.
``resume`` and ``load_from`` therefore fail with ``Unsupported global``.

What this module does, and why it is safe:

1. **Write** the message hub in a form weights-only loading accepts: a ``HistoryBuffer`` is saved without its
   statistics methods. They are class-level registrations (``HistoryBuffer.register_statistics``) that come
   back when the code defining them is imported, so nothing is lost.
2. **Read** with ``weights_only=True`` and a minimal allow-list: ``HistoryBuffer`` itself (rebuilt from its
   ``__dict__``, no code runs), numpy's array / scalar / dtype reconstructors (they build data, nothing
   else). Weights-only loading never lets ``weights_only`` be switched off.
3. Checkpoints already written by plain mmengine still hold ``builtins.getattr``. Allow-listing the real
   ``getattr`` would give every checkpoint attribute access on whatever it can name (torch's documentation
   warns against it). Instead ``builtins.getattr`` is bound to :func:`_history_buffer_getattr`, which
   answers only ``(HistoryBuffer, <registered statistics method>)`` and refuses every other pair.
4. Anything else (a pickled ``os.system``, any unknown class) is refused with a
   :class:`UnsafeCheckpointError` naming the file and the global, before any of it runs.

:func:`register` is called once by ``import mmmst``.
"""

import os.path as osp
import pickle
import zipfile

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

from mmmst.errors import MSTError
from mmmst.files import unreadable_file


class UnsafeCheckpointError(MSTError, pickle.UnpicklingError):
    """A checkpoint holds an object that weights-only loading does not admit."""


class CorruptCheckpointError(MSTError, ValueError):
    """A checkpoint file is empty, truncated (an interrupted save) or not a PyTorch checkpoint at all."""


def _history_buffer_getattr(obj, name):
    """Stand-in for ``builtins.getattr`` inside weights-only unpickling.

    Admits exactly the (class, method) pairs an mmengine checkpoint holds: ``HistoryBuffer`` and one of its
    registered statistics methods. Every other pair is refused.
    """
    if obj is HistoryBuffer and name in HistoryBuffer._statistics_methods:
        return getattr(HistoryBuffer, name)
    raise UnsafeCheckpointError(
        f'refusing getattr({obj!r}, {name!r}) in a checkpoint: only HistoryBuffer statistics '
        f'methods {sorted(HistoryBuffer._statistics_methods)} are admitted'
    )


def _history_buffer_getstate(self):
    """``HistoryBuffer.__getstate__`` without the statistics methods (see the module docstring, point 1)."""
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


def _numpy_safe_globals():
    """numpy's data reconstructors, under both numpy 1.x (``numpy.core``) and 2.x (``numpy._core``) names."""
    safe = [np.ndarray, np.dtype]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        try:
            multiarray = __import__(module, fromlist=['_reconstruct', 'scalar'])
        except ImportError:
            continue
        safe += [(multiarray._reconstruct, f'{module}._reconstruct'), (multiarray.scalar, f'{module}.scalar')]
    # Data-type classes (numpy >= 1.25) appear when a dtype is pickled by class.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return safe


def load_from_local(filename, map_location=None):
    """Load a local checkpoint with ``weights_only=True`` (replaces mmengine's loader for plain paths).

    Raises:
        FileNotFoundError: the file does not exist.
        CorruptCheckpointError: the file is empty, truncated or not a PyTorch checkpoint.
        UnsafeCheckpointError: the file holds an object outside the allow-list; nothing in it ran.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if osp.getsize(filename) == 0:
        raise CorruptCheckpointError(f'{filename}: the checkpoint file is empty (0 bytes); use an earlier one')
    complete = zipfile.is_zipfile(filename)  # torch writes zip archives (since 1.6), their directory comes last
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if not complete:
            raise CorruptCheckpointError(_not_readable(filename, err)) from None
        raise UnsafeCheckpointError(
            f'refusing to load checkpoint {filename!r}: it holds an object that weights-only loading '
            f'does not admit, and nothing in it was run; use a checkpoint written by mmmst or a plain state dict '
            f'of tensors. torch said: {err}'
        ) from None
    except Exception as err:
        if complete and 'PytorchStreamReader' not in str(err):
            raise  # a readable archive: not a file problem
        raise CorruptCheckpointError(_not_readable(filename, err)) from None


def peek_checkpoint(filename):
    """The top-level object of a checkpoint, loaded weights-only with its tensors memory-mapped (the data stays on
    disk, so any size costs milliseconds): what a command reads to tell whether a file in its way is one it wrote.

    Raises:
        CorruptCheckpointError: empty, truncated or not a PyTorch checkpoint (torch's zip format).
        UnsafeCheckpointError: a checkpoint holding an object weights-only loading does not admit.
    """
    if not zipfile.is_zipfile(filename):
        raise CorruptCheckpointError(f'{filename}: not a PyTorch checkpoint')
    try:
        return torch.load(filename, map_location='cpu', weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f'{filename}: holds an object that weights-only loading does not admit ({err})'
        ) from None
    except Exception as err:  # a zip archive of something else, a damaged record
        raise CorruptCheckpointError(_not_readable(filename, err)) from None


def not_a_run_checkpoint(filename) -> str:
    """What keeps ``filename`` from being a checkpoint a run wrote (mmengine's ``meta`` and ``state_dict``), as the
    end of a sentence starting with the file's name: ``''`` for a run's checkpoint, else e.g. ``'is not a PyTorch
    checkpoint'``. Read with :func:`peek_checkpoint` (nothing in the file runs, its tensors stay on disk)."""
    try:
        checkpoint = peek_checkpoint(filename)
    except (CorruptCheckpointError, UnsafeCheckpointError):
        return unreadable_file(filename) or 'is not a PyTorch checkpoint'
    keys = checkpoint.keys() if isinstance(checkpoint, dict) else ()
    return '' if {'meta', 'state_dict'} <= set(keys) else 'is a PyTorch checkpoint, but none of a run'


def _not_readable(filename, err) -> str:
    said = (str(err).splitlines() or [''])[0]
    return (
        f'{filename}: not a readable PyTorch checkpoint: truncated (an interrupted save?) or another kind of '
        f'file; use an earlier checkpoint. torch said: {type(err).__name__}: {said}'
    )


_registered = False


def register():
    """Install the writer, the allow-list and the loader (idempotent)."""
    global _registered
    if _registered:
        return
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    torch.serialization.add_safe_globals(
        [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')] + _numpy_safe_globals()
    )
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    _registered = True
