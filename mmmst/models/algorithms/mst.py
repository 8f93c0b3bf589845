"""MST: Masked Self-Supervised Transformer (NeurIPS 2021)."""

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.structures import DataSample
from torch import nn

from mmmst.dino_recipe import NUM_GLOBAL_VIEWS
from mmmst.models.backbones.output import MSTBackboneOutput
from mmmst.registry import MODELS
from mmmst.runtime.non_finite import check_finite_losses

from .teacher_ema import TeacherEMA


@MODELS.register_module()
class MST(BaseSelfSupervisor):
    """MST = DINO self-distillation + attention-guided masking + global image decoder (paper fig. 1).

    The student is ``backbone`` + ``neck``; the teacher is an exponential moving average of both (paper eq. 1)
    with momentum ``m`` following a cosine from ``teacher_momentum`` to 1 over all iterations (:class:`TeacherEMA`:
    mmpretrain's ``CosineEMA`` schedule in a few fused kernels, no host sync). The teacher runs in eval mode (no
    drop path), as DINO's teacher is built without it.

    Args:
        backbone (dict): ``MSTViT`` or ``MSTSwinTransformer``.
        neck (dict): ``DINONeck`` (DINO's projection head); ``in_channels`` must equal the backbone width.
        head (dict): ``DINOHead`` (DINO's loss and centre); ``out_channels`` must equal the neck's.
        mask_generator (dict, optional): ``AttentionGuidedMaskGenerator`` / ``RandomMaskGenerator``.
            None: no masking (DINO).
        decoder (dict, optional): ``MSTDecoder``. None: no restoration loss.
        teacher_momentum (float): m at iteration 0. Defaults to 0.996 (DINO).

    The first ``NUM_GLOBAL_VIEWS`` (2, DINO's) views of a sample are the global ones, seen by the teacher.
    """

    def __init__(
        self,
        backbone: dict,
        neck: dict,
        head: dict,
        mask_generator: Optional[dict] = None,
        decoder: Optional[dict] = None,
        teacher_momentum: float = 0.996,
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
        width = self.backbone.feat_channels
        if self.neck.in_channels != width:
            raise ValueError(f'MST: neck.in_channels={self.neck.in_channels} does not match the backbone width {width}')
        if self.head.out_channels != self.neck.out_channels:
            raise ValueError(
                f'MST: head.out_channels={self.head.out_channels} does not match '
                f'neck.out_channels={self.neck.out_channels}'
            )
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

        # The EMA's momentum (mmpretrain's convention) is the weight of the new value: 1 - m.
        self.teacher = TeacherEMA(self._student(), momentum=1 - teacher_momentum, end_momentum=0.0)
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

    def compile_networks(self, compile_cfg: Optional[dict] = None) -> str:
        """``torch.compile`` the networks of the student and of the teacher, each module in place
        (``nn.Module.compile``: parameter names, checkpoints and the teacher's EMA update unchanged); returns the
        log line naming what was compiled and what stays eager.

        This is what mmengine's ``compile=True`` does for MST (``tools/train.py``): mmengine compiles the whole
        ``train_step``, which dynamo cannot trace through mmengine's optimizer wrapper and message hub. The
        data preprocessor (batched photometric draws), the mask generator and the losses stay eager: they are a
        small share of the step, and the random draws keep their generator streams exact.
        """
        compile_cfg = dict(compile_cfg or {})
        parts = dict(
            student_backbone=self.backbone,
            student_neck=self.neck,
            decoder=self.decoder,
            teacher_backbone=self.teacher.module.backbone,
            teacher_neck=self.teacher.module.neck,
        )
        compiled = [name for name, module in parts.items() if module is not None]
        for name in compiled:
            parts[name].compile(**compile_cfg)
        return (
            f'compile: torch.compile({", ".join(f"{k}={v!r}" for k, v in compile_cfg.items())}) of '
            f'{", ".join(compiled)}; left eager: data preprocessor, mask generator, losses, optimizer step'
        )

    def extract_feat(self, inputs: torch.Tensor):
        """Features of the teacher backbone, which is what DINO and MST evaluate (k-NN, linear)."""
        return self.teacher.module.backbone(inputs)

    @torch.no_grad()
    def teacher_and_mask(
        self, global_views: torch.Tensor, return_cls_attention: bool = False, generator=None
    ) -> Tuple[MSTBackboneOutput, Optional[torch.Tensor]]:
        """The teacher backbone on the unmasked global views, and the student's mask drawn from its CLS attention.

        Paper eq. 4-5: the teacher's last-layer CLS-to-patch attention ranks the patches; the mask generator picks
        among the lowest-ranked ones. The teacher never sees a mask.

        Args:
            global_views (Tensor): (V_g * B, C, H, W) the global views, view-major.
            return_cls_attention (bool): keep the attention in the output even without a mask generator (pictures).
            generator (torch.Generator, optional): the mask's random draws (pictures that repeat).

        Returns:
            tuple: the teacher's :class:`MSTBackboneOutput` (``cls_token`` (V_g * B, C); ``cls_attention``
            (V_g * B, N) when asked for or when masking) and the (V_g * B, N) bool mask (True: replaced by [MASK]),
            None without a mask generator.
        """
        masks = self.mask_generator is not None
        teacher = self.teacher.module.backbone
        teacher_out = teacher.encode(global_views, return_cls_attention=masks or return_cls_attention)
        mask = self.mask_generator(teacher_out.cls_attention, generator) if masks else None
        return teacher_out, mask

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """One MST iteration (paper fig. 1).

        Args:
            inputs (list[Tensor]): views ``[global_1, global_2, local_1, ..., local_n]``, each (B, 3, H, W).
            data_samples (list[DataSample]): unused.

        Returns:
            dict: ``loss_dino`` and, with a decoder, ``loss_restore``; the collapse monitors, logged, not optimised:
            the head's (``teacher_entropy``, ``kl_teacher_student``, ``center_norm``; :meth:`DINOHead.loss`) and
            ``teacher_feature_std``, ``mask_ratio`` (:meth:`collapse_monitors`).
        """
        if len(inputs) < NUM_GLOBAL_VIEWS:
            raise ValueError(f'MST: expects >= {NUM_GLOBAL_VIEWS} views per sample, got {len(inputs)}')
        global_views = torch.cat(inputs[:NUM_GLOBAL_VIEWS])  # (V_g * B, 3, H, W)
        local_views = inputs[NUM_GLOBAL_VIEWS:]

        # Teacher = EMA of the student after the previous optimizer step (eq. 1). Done here rather than in a
        # hook after the step so that it runs inside the DDP-wrapped forward too (as mmpretrain's BYOL/MoCo v3).
        self.teacher.update_parameters(self._student())

        # Teacher on the unmasked global views -> its CLS attention -> the student's mask (eq. 4-5).
        teacher_out, mask = self.teacher_and_mask(global_views)
        with torch.no_grad():
            teacher_logits = self.teacher.module.neck(teacher_out.cls_token).chunk(NUM_GLOBAL_VIEWS)

        # Student on the masked global views and the (unmasked) local views.
        student_global = self.backbone.encode(global_views, mask=mask)
        student_logits = list(self.neck(student_global.cls_token).chunk(NUM_GLOBAL_VIEWS))
        if local_views:
            student_local = self.backbone.encode(torch.cat(local_views))
            student_logits += list(self.neck(student_local.cls_token).chunk(len(local_views)))

        # DINO loss (eq. 2) with the head's collapse monitors; the head moves its centre after the loss.
        losses = self.head.loss(student_logits, list(teacher_logits))
        # + lambda * restoration of the unmasked global views from the masked student's patch tokens (eq. 6-7).
        if self.decoder is not None:
            losses['loss_restore'] = self.decoder.loss(student_global.patch_map, global_views)
        # The monitors have no 'loss' in their names: mmengine logs them and adds them to nothing.
        losses.update(self.collapse_monitors(teacher_out.cls_token, mask))
        return losses

    @torch.no_grad()
    def collapse_monitors(self, teacher_cls: torch.Tensor, mask: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The monitors beside the head's (``teacher_entropy``, ``kl_teacher_student``, ``center_norm``; DINO §5.3).

        Args:
            teacher_cls (Tensor): (V_g * B, C) the teacher's CLS tokens of the global views.
            mask (Tensor | None): (V_g * B, N) the student's mask.

        Returns:
            dict: ``teacher_feature_std`` (per-dimension std over the batch of the L2-normalised CLS features,
            averaged over dimensions and views; 0 when every image gets the same feature) and ``mask_ratio``
            (fraction of the student's global patches masked).
        """
        # (V_g, B, C): the spread is over the images of one view, not between the two views of an image
        features = F.normalize(teacher_cls.float(), dim=-1).unflatten(0, (NUM_GLOBAL_VIEWS, -1))
        return dict(
            teacher_feature_std=features.std(dim=1).mean(),
            mask_ratio=mask.float().mean() if mask is not None else features.new_zeros(()),
        )
