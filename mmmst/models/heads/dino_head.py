"""DINO self-distillation loss with its centre and teacher temperature (paper eq. 2)."""

from typing import Dict, List

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, get_world_size
from mmengine.model import BaseModule

from mmmst.registry import MODELS


@MODELS.register_module()
class DINOHead(BaseModule):
    """DINO's loss: cross-entropy between the teacher's centred, sharpened distribution and the student's (paper
    eq. 2), with the centre it keeps. (DINO's *projection* head, the MLP and prototypes, is :class:`DINONeck`.)

    For teacher global view ``i`` and student view ``v != i``:
    ``H(P_t^i, P_s^v) = - sum_k softmax((t_i - c) / T_t)_k * log softmax(s_v / T_s)_k``, averaged over the batch
    and then over the pairs. One call of :meth:`loss` returns it with the collapse monitors, then moves the centre
    towards the batch mean of the teacher logits, all-reduced over processes: ``c <- m c + (1 - m) mean(t)``.

    The teacher temperature warms up linearly from ``warmup_teacher_temp`` to ``teacher_temp`` over
    ``warmup_teacher_temp_epochs`` epochs, as DINO's ``np.linspace`` (:meth:`teacher_temp_at`); :meth:`set_epoch`
    (called by ``TeacherTempHook``) moves it.
    It holds ``warmup_teacher_temp`` from construction on, so the head is usable without the hook.

    Args:
        out_channels (int): number of prototypes K, the width of the logits.
        student_temp (float): T_s. Defaults to 0.1 (DINO).
        teacher_temp (float): T_t after the warm-up. Defaults to 0.07 (DINO, ViT-S).
        warmup_teacher_temp (float): T_t at epoch 0. Defaults to 0.04 (DINO).
        warmup_teacher_temp_epochs (int): length of the warm-up. Defaults to 30 (DINO).
        center_momentum (float): m of the centre EMA. Defaults to 0.9 (DINO).
    """

    def __init__(
        self,
        out_channels: int,
        student_temp: float = 0.1,
        teacher_temp: float = 0.07,
        warmup_teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: int = 30,
        center_momentum: float = 0.9,
        init_cfg=None,
    ):
        super().__init__(init_cfg=init_cfg)
        for name, value in dict(
            student_temp=student_temp, teacher_temp=teacher_temp, warmup_teacher_temp=warmup_teacher_temp
        ).items():
            if not value > 0:
                raise ValueError(f'DINOHead: {name} must be > 0, got {value!r}')
        if not 0.0 <= center_momentum < 1.0:
            raise ValueError(f'DINOHead: center_momentum must be in [0, 1), got {center_momentum!r}')
        if warmup_teacher_temp_epochs < 0:
            raise ValueError(f'DINOHead: warmup_teacher_temp_epochs must be >= 0, got {warmup_teacher_temp_epochs!r}')
        self.out_channels = out_channels
        self.student_temp = student_temp
        self.teacher_temp_final = teacher_temp
        self.warmup_teacher_temp = warmup_teacher_temp
        self.warmup_teacher_temp_epochs = warmup_teacher_temp_epochs
        self.center_momentum = center_momentum
        self.teacher_temp = warmup_teacher_temp if warmup_teacher_temp_epochs > 0 else teacher_temp
        self.register_buffer('center', torch.zeros(1, out_channels))

    def teacher_temp_at(self, epoch: int) -> float:
        """T_t at the start of ``epoch``, exactly DINO's schedule.

        DINO: ``np.concatenate((np.linspace(warmup, final, W), np.ones(epochs - W) * final))[epoch]``, so the
        final value is reached at epoch ``W - 1`` (the last warm-up epoch), not ``W``.
        """
        W = self.warmup_teacher_temp_epochs
        if epoch >= W:
            return self.teacher_temp_final
        if W == 1:
            return self.warmup_teacher_temp  # np.linspace(a, b, 1) == [a]
        step = (self.teacher_temp_final - self.warmup_teacher_temp) / (W - 1)
        return self.warmup_teacher_temp + step * epoch

    def set_epoch(self, epoch: int) -> None:
        self.teacher_temp = self.teacher_temp_at(epoch)

    @torch.no_grad()
    def teacher_probs(self, teacher_logits: List[torch.Tensor]) -> List[torch.Tensor]:
        """The targets ``P_t = softmax((t - c) / T_t)``, one (B, K) tensor per teacher view, under the current
        centre."""
        return [F.softmax((t.float() - self.center) / self.teacher_temp, dim=-1) for t in teacher_logits]

    def loss(self, student_logits: List[torch.Tensor], teacher_logits: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """DINO loss over all (teacher view i, student view v) pairs with v != i, then the centre's update.

        Args:
            student_logits (list[Tensor]): one (B, K) tensor per student view, global views first, in the
                same order as the teacher's.
            teacher_logits (list[Tensor]): one (B, K) tensor per teacher (global) view.

        Returns:
            dict: ``loss_dino`` (scalar, eq. 2) and the head's collapse monitors (DINO §5.3), logged, not optimised:
            ``teacher_entropy`` = mean ``H(P_t)`` in nats (``log K``: the teacher's output is uniform, a collapse
            onto the centre; 0: one-hot, a collapse onto one prototype), ``kl_teacher_student`` =
            ``loss_dino - teacher_entropy`` = mean ``KL(P_t || P_s)`` (0: the student has nothing left to learn),
            and ``center_norm``, the L2 norm of the centre after its update.
        """
        if len(teacher_logits) < 2:
            raise ValueError(f'DINOHead: needs >= 2 teacher (global) views, got {len(teacher_logits)}')
        student_log_probs = [F.log_softmax(s.float() / self.student_temp, dim=-1) for s in student_logits]
        teacher_probs = self.teacher_probs(teacher_logits)  # under the centre before this batch moves it
        total, num_pairs = 0.0, 0
        for i, p_t in enumerate(teacher_probs):
            for v, log_p_s in enumerate(student_log_probs):
                if v == i:
                    continue  # the student's view of the same crop is not a target
                total = total + torch.sum(-p_t * log_p_s, dim=-1).mean()
                num_pairs += 1
        loss_dino = total / num_pairs
        self.update_center(torch.cat(teacher_logits))
        entropy = torch.special.entr(torch.cat(teacher_probs)).sum(dim=-1).mean()
        return dict(
            loss_dino=loss_dino,
            teacher_entropy=entropy,
            kl_teacher_student=loss_dino.detach() - entropy,
            center_norm=self.center.norm(),
        )

    @torch.no_grad()
    def update_center(self, teacher_logits: torch.Tensor) -> None:
        """``c <- m c + (1 - m) * mean over all processes' teacher logits``; (V_t * B, K) in."""
        batch_center = teacher_logits.float().sum(dim=0, keepdim=True)
        all_reduce(batch_center)
        batch_center = batch_center / (teacher_logits.shape[0] * get_world_size())
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)
