"""DINO's projection head, MST's neck for student and teacher (DINO's loss is the head, ``DINOHead``)."""

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from mmmst.registry import MODELS


@MODELS.register_module()
class DINONeck(BaseModule):
    """DINO projection head: MLP, L2 normalisation, weight-normalised prototypes.

    ``x -> Linear(in, hidden) -> GELU -> [Linear(hidden, hidden) -> GELU] * (num_layers - 2)
    -> Linear(hidden, bottleneck) -> L2-normalise -> last_layer (weight-normed, no bias) -> logits``.

    Args:
        in_channels (int): width of the backbone's image token (384 for DeiT-S).
        out_channels (int): number of prototypes K (65536 in DINO).
        hidden_channels (int): MLP width. Defaults to 2048.
        bottleneck_channels (int): width before the prototypes. Defaults to 256.
        num_layers (int): linear layers of the MLP, >= 1. Defaults to 3.
        norm_last_layer (bool): fix the weight-norm magnitude of ``last_layer`` to 1 (DINO: False for ViT-S,
            which then needs the first-epoch last-layer freeze). Defaults to True.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 65536,
        hidden_channels: int = 2048,
        bottleneck_channels: int = 256,
        num_layers: int = 3,
        norm_last_layer: bool = True,
        init_cfg=None,
    ):
        super().__init__(init_cfg=init_cfg)
        for name, value in dict(
            in_channels=in_channels,
            out_channels=out_channels,
            hidden_channels=hidden_channels,
            bottleneck_channels=bottleneck_channels,
            num_layers=num_layers,
        ).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'DINONeck: {name} must be a positive int, got {value!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        if num_layers == 1:
            layers = [nn.Linear(in_channels, bottleneck_channels)]
        else:
            layers = [nn.Linear(in_channels, hidden_channels), nn.GELU()]
            for _ in range(num_layers - 2):
                layers += [nn.Linear(hidden_channels, hidden_channels), nn.GELU()]
            layers.append(nn.Linear(hidden_channels, bottleneck_channels))
        self.mlp = nn.Sequential(*layers)
        self.last_layer = weight_norm(nn.Linear(bottleneck_channels, out_channels, bias=False))
        self.norm_last_layer = norm_last_layer
        self._init_last_layer()

    def _init_last_layer(self):
        # weight_g (the magnitude) starts at 1 and, with norm_last_layer, stays there.
        magnitude = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            magnitude.fill_(1.0)
        magnitude.requires_grad = not self.norm_last_layer

    def init_weights(self):
        super().init_weights()
        if self.init_cfg is None:
            for m in self.mlp.modules():
                if isinstance(m, nn.Linear):
                    trunc_normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)
            self._init_last_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels) image tokens -> (B, out_channels) prototype logits."""
        x = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(x)
