"""Stop a diverging run before it spoils anything: non-finite losses, gradients and checkpoint tensors.

A NaN or Inf loss stops training before the optimizer step (so before the weights, and after them the EMA teacher,
take it in), naming the loss term, the iteration and the last checkpoint written; a checkpoint holding a
non-finite tensor is never written (:class:`~mmmst.runtime.hooks.FiniteCheckpointHook`), and evaluation tools
refuse to load one (:func:`first_non_finite`).
"""

import math
from typing import Mapping, Optional

import torch
import torch.distributed as dist

from mmmst.errors import MSTError


class NonFiniteError(MSTError, RuntimeError):
    """A loss, gradient or checkpoint tensor is NaN or Inf."""


def _where() -> str:
    """'iteration N (last checkpoint: path)' from the message hub that mmengine's Runner keeps."""
    from mmengine.logging import MessageHub

    hub = MessageHub.get_current_instance()
    iteration = hub.get_info('iter')
    last = hub.get_info('last_ckpt') or 'none written yet'
    step = f'iteration {iteration + 1}' if iteration is not None else 'this iteration'
    return f'{step} (last checkpoint: {last})'


def check_finite_losses(log_vars: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`NonFiniteError` naming every non-finite loss term, on every process at once.

    Under DDP a process that stopped alone would leave the others waiting in the gradient all-reduce, so the
    verdict is all-reduced (one 1-element collective per iteration).

    Args:
        log_vars (Mapping): what ``parse_losses`` returns: ``loss`` and every term, as scalar tensors.
    """
    terms = {k: v for k, v in log_vars.items() if 'loss' in k and k != 'loss'} or dict(log_vars)
    values = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
    bad = (~torch.isfinite(values)).float()
    if dist.is_available() and dist.is_initialized():
        local = bad.clone()
        dist.all_reduce(bad)
        if bad.any() and not local.any():
            names = [k for k, flag in zip(terms, bad) if flag]
            raise NonFiniteError(f'{", ".join(names)} non-finite on another process at {_where()}; stopped here too')
    if bad.any():
        found = ', '.join(f'{k} = {v.item()}' for (k, v), flag in zip(terms.items(), bad) if flag)
        raise NonFiniteError(
            f'{found} at {_where()}: stopped before the optimizer step and the teacher update. '
            'Resume from the last checkpoint with a lower lr (optim_wrapper.optimizer.lr) or check the data.'
        )


def first_non_finite(state_dict: Mapping[str, object]) -> Optional[str]:
    """Name of the first floating-point tensor (or float) with a NaN or Inf in ``state_dict``, else None."""
    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            return name
        if isinstance(value, float) and not math.isfinite(value):
            return name
    return None
