"""MST: Masked Self-Supervised Transformer (NeurIPS 2021)."""

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.models.utils import CosineEMA
from mmpretrain.structures import DataSample
from torch import nn

from mmmst.engine.non_finite import check_finite_losses
from mmmst.registry import MODELS


@MODELS.register_module()
class MST(BaseSelfSupervisor):
    """MST = DINO self-distillation + attention-guided masking + global image decoder (paper fig. 1).

    The student is ``backbone`` + ``neck``; the teacher is an exponential moving average of both (paper eq. 1)
    with momentum ``m`` following a cosine from ``teacher_momentum`` to 1 over all iterations (mmpretrain's
    :class:`CosineEMA`). The teacher runs in eval mode (no drop path), as DINO's teacher is built without it.

    Args:
        backbone (dict): ``MSTViT`` or ``MSTSwinTransformer``.
        neck (dict): ``MSTNeck`` (DINO projection head); ``in_channels`` must equal the backbone width.
        head (dict): ``MSTHead`` (DINO loss); ``out_channels`` must equal the neck's.
        mask_generator (dict, optional): ``AttentionGuidedMaskGenerator`` / ``RandomMaskGenerator``.
            None: no masking (DINO).
        decoder (dict, optional): ``MSTDecoder``. None: no restoration loss.
        teacher_momentum (float): m at iteration 0. Defaults to 0.996 (DINO).
        num_global_views (int): the first views of a sample are the global ones, seen by the teacher.
            Defaults to 2 (DINO).
    """

    def __init__(
        self,
        backbone: dict,
        neck: dict,
        head: dict,
        mask_generator: Optional[dict] = None,
        decoder: Optional[dict] = None,
        teacher_momentum: float = 0.996,
        num_global_views: int = 2,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        # The [MASK] token exists only where something masks: DINO mode has no parameter without a gradient.
        masks = mask_generator is not None
        if isinstance(backbone, dict):
            if backbone.get('with_mask_token', masks) != masks:
                raise ValueError(
                    f'MST: backbone.with_mask_token={backbone["with_mask_token"]!r} contradicts '
                    f'mask_generator={mask_generator!r}; leave it unset, MST sets it'
                )
            backbone = dict(backbone, with_mask_token=masks)
        super().__init__(
            backbone=backbone, neck=neck, head=head, data_preprocessor=data_preprocessor, init_cfg=init_cfg
        )
        if not 0.0 <= teacher_momentum <= 1.0:
            raise ValueError(f'MST: teacher_momentum must be in [0, 1], got {teacher_momentum!r}')
        if not isinstance(num_global_views, int) or num_global_views < 2:
            raise ValueError(f'MST: num_global_views must be an int >= 2, got {num_global_views!r}')
        width = self.backbone.feat_channels
        if self.neck.in_channels != width:
            raise ValueError(f'MST: neck.in_channels={self.neck.in_channels} does not match the backbone width {width}')
        if self.head.out_channels != self.neck.out_channels:
            raise ValueError(
                f'MST: head.out_channels={self.head.out_channels} does not match '
                f'neck.out_channels={self.neck.out_channels}'
            )
        self.num_global_views = num_global_views

        self.mask_generator = MODELS.build(mask_generator) if isinstance(mask_generator, dict) else mask_generator

        self.decoder = MODELS.build(decoder) if isinstance(decoder, dict) else decoder
        if self.decoder is not None:
            if self.decoder.in_channels != width:
                raise ValueError(
                    f'MST: decoder.in_channels={self.decoder.in_channels} does not match the backbone width {width}'
                )
            if self.decoder.stride != self.backbone.feat_stride:
                raise ValueError(
                    f'MST: decoder.stride={self.decoder.stride} does not match the backbone stride '
                    f'{self.backbone.feat_stride}'
                )

        # CosineEMA's momentum is the weight of the new value: 1 - m.
        self.teacher = CosineEMA(self._student(), momentum=1 - teacher_momentum, end_momentum=0.0)
        self.teacher.train(False)  # from the start, not only once a loop calls train()

    def _student(self) -> nn.ModuleDict:
        """The modules the teacher averages (no new parameters: a view on backbone and neck)."""
        return nn.ModuleDict(dict(backbone=self.backbone, neck=self.neck))

    def init_weights(self):
        super().init_weights()
        # The teacher was copied before the student's init: start it from the initialised student.
        self.teacher.module.load_state_dict(self._student().state_dict())

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.train(False)
        return self

    def parse_losses(self, losses: Dict[str, torch.Tensor]):
        """mmengine's sum of the loss terms, stopping the run on a NaN / Inf term before the optimizer step."""
        loss, log_vars = super().parse_losses(losses)
        check_finite_losses(log_vars)
        return loss, log_vars

    def extract_feat(self, inputs: torch.Tensor):
        """Features of the teacher backbone, which is what DINO and MST evaluate (k-NN, linear)."""
        return self.teacher.module.backbone(inputs)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """One MST iteration (paper fig. 1).

        Args:
            inputs (list[Tensor]): views ``[global_1, global_2, local_1, ..., local_n]``, each (B, 3, H, W).
            data_samples (list[DataSample]): unused.

        Returns:
            dict: ``loss_dino`` and, with a decoder, ``loss_restore``; the collapse monitors of
            :meth:`collapse_monitors` (logged, not optimised).
        """
        if len(inputs) < self.num_global_views:
            raise ValueError(f'MST: expects >= {self.num_global_views} views per sample, got {len(inputs)}')
        global_views = torch.cat(inputs[: self.num_global_views])  # (V_g * B, 3, H, W)
        local_views = inputs[self.num_global_views :]

        # Teacher = EMA of the student after the previous optimizer step (eq. 1). Done here rather than in a
        # hook after the step so that it runs inside the DDP-wrapped forward too (as mmpretrain's BYOL/MoCo v3).
        self.teacher.update_parameters(self._student())

        # Teacher on the unmasked global views -> prototype logits and CLS attention.
        with torch.no_grad():
            teacher = self.teacher.module
            teacher_out = teacher.backbone.encode(global_views, return_cls_attention=self.mask_generator is not None)
            teacher_logits = teacher.neck(teacher_out.cls_token).chunk(self.num_global_views)
            # (V_g * B, N) attention of the CLS token -> (V_g * B, N) bool mask of the student's patches
            mask = None
            if self.mask_generator is not None:
                mask = self.mask_generator(teacher_out.cls_attention)

        # Student on the masked global views and the (unmasked) local views.
        student_global = self.backbone.encode(global_views, mask=mask)
        student_logits = list(self.neck(student_global.cls_token).chunk(self.num_global_views))
        if local_views:
            student_local = self.backbone.encode(torch.cat(local_views))
            student_logits += list(self.neck(student_local.cls_token).chunk(len(local_views)))

        # DINO loss (eq. 2) + lambda * restoration of the global views from the masked tokens (eq. 6-7).
        teacher_probs = self.head.teacher_probs(teacher_logits)  # (B, K) targets, before the loss moves the centre
        losses = dict(loss_dino=self.head.loss(student_logits, list(teacher_logits), teacher_probs))
        if self.decoder is not None:
            losses['loss_restore'] = self.decoder.loss(student_global.patch_map, global_views)

        # Collapse monitors, logged beside the losses (no 'loss' in their names: mmengine adds them to nothing).
        teacher_entropy = self.head.teacher_entropy(teacher_probs)
        losses.update(self.collapse_monitors(teacher_out.cls_token, teacher_entropy, losses['loss_dino'], mask))
        return losses

    @torch.no_grad()
    def collapse_monitors(
        self,
        teacher_cls: torch.Tensor,
        teacher_entropy: torch.Tensor,
        loss_dino: torch.Tensor,
        mask: Optional[torch.Tensor],
    ) -> Dict[str, torch.Tensor]:
        """What tells a learning teacher from a collapsing one (DINO §5.3), from tensors the iteration has.

        Args:
            teacher_cls (Tensor): (V_g * B, C) the teacher's CLS tokens of the global views.
            teacher_entropy (Tensor): ``H(P_t)`` from :meth:`MSTHead.teacher_entropy`.
            loss_dino (Tensor): the DINO loss, the mean cross-entropy ``H(P_t) + KL(P_t || P_s)`` over pairs.
            mask (Tensor | None): (V_g * B, N) the student's mask.

        Returns:
            dict: ``teacher_entropy`` (log K: uniform, 0: one-hot), ``kl_teacher_student`` (0: the student has
            nothing left to learn), ``teacher_feature_std`` (per-dimension std over the batch of the L2-normalised
            CLS features, averaged over dimensions and views; 0 when every image gets the same feature),
            ``mask_ratio`` (fraction of the student's global patches masked) and ``center_norm`` (L2 norm of the
            DINO centre).
        """
        # (V_g, B, C): the spread is over the images of one view, not between the two views of an image
        features = F.normalize(teacher_cls.float(), dim=-1).unflatten(0, (self.num_global_views, -1))
        return dict(
            teacher_entropy=teacher_entropy,
            kl_teacher_student=loss_dino.detach() - teacher_entropy,
            teacher_feature_std=features.std(dim=1).mean(),
            mask_ratio=mask.float().mean() if mask is not None else teacher_entropy.new_zeros(()),
            center_norm=self.head.center.norm(),
        )
