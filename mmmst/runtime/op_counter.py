"""Count what a training step asks of the device, on any machine: aten ops (≈ kernel launches) and the ops that make
a GPU run wait for the device (a device-to-host sync), each with the line of Python that issued it.

On a GPU every ``.item()``, ``bool(tensor)``, boolean index or ``nonzero`` of a device tensor stalls the host until
the device has caught up; a ``TorchDispatchMode`` sees every aten op, so those can be counted on the CPU, where
they cost nothing, before a GPU is at hand. Tensors a GPU run keeps on the host (AdamW's ``step`` counters, unless
the optimizer is ``capturable`` / ``fused``) are named ``host`` and left out, with everything computed from them
alone.
"""

import collections
import os.path as osp
import traceback
import weakref
from contextlib import contextmanager
from typing import Dict, Iterable, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

#: aten ops whose result the host needs before it can go on (their output size or value depends on the data)
SYNC_OPS = frozenset(
    {
        'aten::_local_scalar_dense',  # .item(), float(t), int(t), bool(t)
        'aten::is_nonzero',  # bool(t) of a one-element tensor
        'aten::nonzero',
        'aten::masked_select',
        'aten::equal',
        'aten::_unique',
        'aten::_unique2',
        'aten::unique_dim',
        'aten::unique_consecutive',
    }
)
_PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))  # mmmst/
_TORCH = osp.dirname(osp.abspath(torch.__file__))


def _op_name(func) -> str:
    return f'{func.namespace}::{func._schema.name.split("::")[-1]}' if hasattr(func, '_schema') else str(func)


def _is_sync(name: str, func, args, kwargs) -> bool:
    """A sync op, a boolean index (``x[mask]``, ``x[mask] = v``) or ``repeat_interleave`` without ``output_size``."""
    if name in SYNC_OPS:
        return True
    if name in ('aten::index', 'aten::index_put', 'aten::index_put_', 'aten::_index_put_impl_'):
        indices = args[1] if len(args) > 1 else kwargs.get('indices', ())
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices or ())
    if name == 'aten::repeat_interleave':  # with tensor repeats, the output size is their sum
        return func._overloadname in ('Tensor', 'self_Tensor') and kwargs.get('output_size') is None
    return False


def _caller() -> str:
    """``file:line`` of the innermost frame outside torch and this module (the code that asked for the op)."""
    for frame in reversed(traceback.extract_stack()[:-3]):
        filename = osp.abspath(frame.filename)
        if filename.startswith(_TORCH) or filename == osp.abspath(__file__) or '/torch/' in filename:
            continue
        if filename.startswith(_PACKAGE):
            filename = osp.join('mmmst', osp.relpath(filename, _PACKAGE))
        elif 'site-packages' in filename:
            filename = filename.split('site-packages' + osp.sep, 1)[1]
        return f'{filename}:{frame.lineno}'
    return '<torch>'


class OpCounter(TorchDispatchMode):
    """``with OpCounter(host=...) as ops: ...`` counts every aten op run inside, by phase, and the device-to-host
    syncs with where they come from.

    Args:
        host (Iterable[Tensor]): tensors a GPU run keeps on the host (AdamW's step counters); ops on them, and on
            tensors computed from them alone, are counted as ops but never as syncs.

    Attributes:
        ops (Counter): ``{phase: number of aten ops}``.
        syncs (Counter): ``{(phase, op, 'file:line'): count}``.
    """

    def __init__(self, host: Iterable[torch.Tensor] = ()):
        super().__init__()
        self._host = {}  # id -> weakref (a WeakSet would compare tensors with ==, elementwise)
        for t in host:
            self._keep_on_host(t)
        self.phase = 'step'
        self.ops: Dict[str, int] = collections.Counter()
        self.syncs: Dict[tuple, int] = collections.Counter()

    @contextmanager
    def in_phase(self, phase: str):
        """Count the ops inside under ``phase`` (e.g. ``'forward + loss'``)."""
        outer, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = outer

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = _op_name(func)
        self.ops[self.phase] += 1
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        on_host = bool(tensors) and all(self._on_host(t) for t in tensors)
        if on_host:
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    self._keep_on_host(t)
        elif _is_sync(name, func, args, kwargs):
            self.syncs[(self.phase, name, _caller())] += 1
        return out

    def _keep_on_host(self, tensor: torch.Tensor) -> None:
        self._host[id(tensor)] = weakref.ref(tensor)

    def _on_host(self, tensor: torch.Tensor) -> bool:
        ref = self._host.get(id(tensor))
        return ref is not None and ref() is tensor

    def sync_count(self, phase: Optional[str] = None) -> int:
        return sum(n for (p, _, _), n in self.syncs.items() if phase is None or p == phase)


def optimizer_host_tensors(optimizer: torch.optim.Optimizer) -> list:
    """AdamW's (and every torch optimizer's) ``step`` counters: on the host in a GPU run unless ``capturable`` or
    ``fused``."""
    groups = optimizer.param_groups
    if any(g.get('capturable') or g.get('fused') for g in groups):
        return []
    return [s['step'] for s in optimizer.state.values() if isinstance(s.get('step'), torch.Tensor)]


def count_train_step(model, optim_wrapper, data: dict, warmup: int = 2) -> OpCounter:
    """The ops of one ``model.train_step(data, optim_wrapper)`` after ``warmup`` steps (the optimizer's state made,
    the teacher past its first copy); ``model.loss`` (the forward passes and the losses) counted as phase
    ``'forward + loss'``, the rest (backward, clip, optimizer step) as ``'step'``."""
    for _ in range(warmup):
        model.train_step(data, optim_wrapper)
    counter = OpCounter(host=optimizer_host_tensors(optim_wrapper.optimizer))
    loss = model.loss

    def counted_loss(*args, **kwargs):
        with counter.in_phase('forward + loss'):
            return loss(*args, **kwargs)

    model.loss = counted_loss
    try:
        with counter:
            model.train_step(data, optim_wrapper)
    finally:
        del model.loss  # the class's method again
    return counter
