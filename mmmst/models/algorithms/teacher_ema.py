"""The teacher's exponential moving average (paper eq. 1; DINO's momentum schedule), with no host sync per step."""

from math import cos, pi
from typing import Optional

import torch
from mmengine.logging import MessageHub
from mmpretrain.models.utils import CosineEMA
from torch import nn

from mmmst.registry import MODELS


@MODELS.register_module()
class TeacherEMA(CosineEMA):
    """mmpretrain's :class:`CosineEMA` (same arguments, buffers and checkpoints: ``steps``, ``module.*``), updated
    in a few fused kernels with the momentum computed once per iteration on the host.

    Paper eq. 1 / DINO: ``teacher <- m * teacher + (1 - m) * student``, with the weight of the student
    ``w = 1 - m`` following ``w_k = w_end - (w_end - w_0) * (cos(pi * k / K) + 1) / 2`` over the ``K`` training
    iterations (``momentum`` = ``w_0``, ``end_momentum`` = ``w_end``).

    ``CosineEMA`` evaluates that cosine from the ``steps`` buffer once per parameter and tests ``steps == 0`` and
    ``steps % interval`` on it: on a GPU the buffer lives on the device, so each of those is a device-to-host sync
    (one per parameter per iteration), and each parameter costs ~4 kernels. Here the iteration count is kept on
    the host as well (read from the buffer once after construction or a checkpoint load), the momentum is one
    Python float, and all floating-point parameters are updated by one ``torch._foreach_lerp_`` (``a + w (s - a)``,
    equal to ``CosineEMA``'s ``a (1 - w) + w s`` to fp32 rounding), the buffers copied by one ``_foreach_copy_``.
    """

    def __init__(self, model: nn.Module, *args, **kwargs) -> None:
        super().__init__(model, *args, **kwargs)
        self._host_steps: Optional[int] = None  # ``int(self.steps)``, kept without reading the device

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._host_steps = None  # a resumed ``steps``: read again, once

    def momentum_at(self, steps: int) -> float:
        """The student's weight ``w_k`` at update ``k = steps`` (a Python float: no device read)."""
        max_iters = MessageHub.get_current_instance().get_info('max_iters')
        cosine_annealing = (cos(pi * steps / float(max_iters)) + 1) / 2
        return self.end_momentum - (self.end_momentum - self.momentum) * cosine_annealing

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """One EMA step of every parameter (and a copy of every buffer) of ``model``; ``steps`` += 1.

        Args:
            model (nn.Module): the student, with the parameter names of ``self.module``.
        """
        if self._host_steps is None:
            self._host_steps = int(self.steps)  # once per run start or load, not per iteration
        steps = self._host_steps
        source = model.state_dict() if self.update_buffers else dict(model.named_parameters())
        names = [k for k, p in self.avg_parameters.items() if steps == 0 or p.dtype.is_floating_point]
        # no ``.data``: under no_grad the tensors themselves are updated, without a detach op per tensor
        averaged = [self.avg_parameters[k] for k in names]
        new = [source[k].to(a.device) for k, a in zip(names, averaged)]
        if steps == 0:  # the teacher starts as the student
            torch._foreach_copy_(averaged, new)
        elif steps % self.interval == 0:
            torch._foreach_lerp_(averaged, new, self.momentum_at(steps))
        if not self.update_buffers:  # the buffers follow the student's
            buffers = list(self.module.buffers())
            if buffers:
                torch._foreach_copy_(buffers, [b.to(a.device) for a, b in zip(buffers, model.buffers())])
        self.steps.add_(1)
        self._host_steps = steps + 1
