"""Concatenation of several backbone outputs, for linear probes on the last blocks' CLS tokens."""

from typing import Tuple

import torch
from mmengine.model import BaseModule

from mmmst.registry import MODELS


@MODELS.register_module()
class ConcatNeck(BaseModule):
    """``(x_1, ..., x_n)`` each (B, C_i) -> ``(cat(x_1, ..., x_n),)`` of shape (B, sum C_i).

    DINO's linear protocol for ViT-S: the CLS tokens of the last 4 blocks, each normalised by the final norm
    (``MSTViT(out_indices=[8, 9, 10, 11], norm_out_indices=True)``), concatenated.
    """

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor]:
        return (torch.cat([x.flatten(1) for x in inputs], dim=1),)
