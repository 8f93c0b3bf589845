"""What an MST backbone returns to the algorithm for one batch of views."""

from typing import NamedTuple, Optional

import torch


class MSTBackboneOutput(NamedTuple):
    """Output of ``MSTViT.encode`` / ``MSTSwinTransformer.encode``.

    Attributes:
        cls_token (Tensor): (B, C) image-level token fed to the projection neck (Swin: pooled final stage).
        patch_map (Tensor): (B, C, h, w) patch tokens as a map, fed to the image decoder.
        cls_attention (Tensor | None): (B, N) attention of the image-level token to each maskable unit
            (ViT: each patch; Swin: each final-stage token). None unless asked for.
    """

    cls_token: torch.Tensor
    patch_map: torch.Tensor
    cls_attention: Optional[torch.Tensor] = None
