"""ViTDet's simple feature pyramid: four scales from a single-scale ViT map, for mmdet's FPN."""

from typing import Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.models.utils import LayerNorm2d
from torch import nn

from mmmst.registry import MODELS


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """(B, C, H/16, W/16) -> maps at strides 4, 8, 16, 32 (Li et al., ViTDet), fed to an FPN.

    stride 4: 2 x [deconv x2] (C -> C/2 -> C/4); stride 8: deconv x2 (C -> C/2); stride 16: identity;
    stride 32: max-pool x2. Output widths ``(C/4, C/2, C, C)``, the ``in_channels`` of the FPN behind it.
    mmdet configs use it as ``dict(type='mmpretrain.SimpleFeaturePyramid', in_channels=384)``.

    Args:
        in_channels (int): width of the ViT map (384 for DeiT-S).
        scales (sequence[float]): output scales relative to the input map. Defaults to (4, 2, 1, 0.5).
    """

    def __init__(self, in_channels: int, scales: Sequence[float] = (4.0, 2.0, 1.0, 0.5), init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.scales = tuple(scales)
        self.out_channels = []
        stages = []
        for scale in self.scales:
            if scale == 4.0:
                width = in_channels // 4
                stage = nn.Sequential(
                    nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2),
                    LayerNorm2d(in_channels // 2),  # mmpretrain's LN2d: LayerNorm over channels
                    nn.GELU(),
                    nn.ConvTranspose2d(in_channels // 2, width, 2, stride=2),
                )
            elif scale == 2.0:
                width = in_channels // 2
                stage = nn.ConvTranspose2d(in_channels, width, 2, stride=2)
            elif scale == 1.0:
                width, stage = in_channels, nn.Identity()
            elif scale == 0.5:
                width, stage = in_channels, nn.MaxPool2d(2, stride=2)
            else:
                raise ValueError(f'SimpleFeaturePyramid: scale {scale} is not one of 4, 2, 1, 0.5')
            stages.append(stage)
            self.out_channels.append(width)
        self.stages = nn.ModuleList(stages)

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
        x = inputs[-1]  # the last (only) ViT map
        return tuple(stage(x) for stage in self.stages)
