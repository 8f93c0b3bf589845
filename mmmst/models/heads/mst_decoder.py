"""MST's global image decoder and restoration loss (paper eq. 6)."""

import math
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

from mmmst.registry import MODELS


@MODELS.register_module()
class MSTDecoder(BaseModule):
    """Restores the whole view from the student's patch tokens with a small CNN (paper §3.3).

    ``(B, C, H/s, W/s)`` patch-token map -> ``log2(s)`` x [3x3 conv -> norm -> act -> x2 up-sample] ->
    3x3 conv to ``out_channels`` -> ``(B, out_channels, H, W)``. Widths halve from ``in_channels`` at every
    stage and never go below ``min_channels`` (chosen here, docs/design.md).

    The loss is ``loss_weight * L1(g(f_s(x_masked)), x)`` over every pixel of the (normalised) view
    (paper eq. 6-7, ``loss_weight`` is the paper's lambda).

    Args:
        in_channels (int): width of the patch tokens (384 for DeiT-S, 768 for Swin-T's last stage).
        stride (int): input pixels per token along one side (16 for ViT-S/16, 32 for Swin-T); a power of 2.
        out_channels (int): image channels. Defaults to 3.
        min_channels (int): narrowest hidden width. Defaults to 32.
        loss_weight (float): lambda of eq. 7. Defaults to 1.0 (chosen here).
        norm_cfg (dict, optional): norm after each conv. Defaults to LayerNorm over the channels of each pixel
            (mmpretrain's ``LN2d``): no batch statistics, so 1 process and N processes compute the same thing,
            and it restored better than per-process BatchNorm in a measured run (the small-scale lab's log,
            ``projects/small_scale_lab/experiment_log.md``). Chosen here: the paper does not name the decoder's norm.
        act_cfg (dict): activation. Defaults to GELU.
    """

    def __init__(
        self,
        in_channels: int,
        stride: int = 16,
        out_channels: int = 3,
        min_channels: int = 32,
        loss_weight: float = 1.0,
        norm_cfg: Optional[dict] = dict(type='mmpretrain.LN2d'),  # noqa: B006 (never mutated; the OpenMMLab idiom)
        act_cfg: dict = dict(type='GELU'),  # noqa: B006
        init_cfg=None,
    ):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(stride, int) or stride < 1 or stride & (stride - 1):
            raise ValueError(f'MSTDecoder: stride must be a power of 2, got {stride!r}')
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'MSTDecoder: in_channels must be a positive int, got {in_channels!r}')
        if loss_weight < 0:
            raise ValueError(f'MSTDecoder: loss_weight must be >= 0, got {loss_weight!r}')
        self.in_channels = in_channels
        self.stride = stride
        self.loss_weight = loss_weight
        stages, width = [], in_channels
        for _ in range(int(math.log2(stride))):
            next_width = max(width // 2, min_channels)
            stages += [
                ConvModule(width, next_width, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
                nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False),
            ]
            width = next_width
        stages.append(nn.Conv2d(width, out_channels, 3, padding=1))
        self.decoder = nn.Sequential(*stages)

    def forward(self, patch_map: torch.Tensor) -> torch.Tensor:
        """(B, C, H/s, W/s) -> (B, out_channels, H, W) restored image."""
        return self.decoder(patch_map)

    def loss(self, patch_map: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Restoration loss (eq. 6): ``loss_weight * mean |g(patch_map) - target|``.

        Args:
            patch_map (Tensor): (B, C, H/s, W/s) student patch tokens of the masked views.
            target (Tensor): (B, out_channels, H, W) the normalised views themselves.
        """
        restored = self(patch_map)
        if restored.shape != target.shape:
            raise ValueError(
                f'MSTDecoder: restored image {tuple(restored.shape)} does not match the view {tuple(target.shape)}'
            )
        return self.loss_weight * F.l1_loss(restored.float(), target.float())
