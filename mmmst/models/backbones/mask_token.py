"""The learnable [MASK] embedding of MST's backbones, present only where something masks."""

from typing import Optional

import torch
from mmengine.model.weight_init import trunc_normal_
from torch import nn


def check_sizes(backbone: str, img_size, patch_size) -> None:
    """Refuse an ``img_size`` or ``patch_size`` that is not a positive integer (or a pair of them), naming the key.

    Raises:
        ValueError: e.g. ``MSTViT: patch_size must be a positive integer, got 0``.
    """

    def positive_int(value):
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    if not positive_int(patch_size):
        raise ValueError(f'{backbone}: patch_size must be a positive integer, got {patch_size!r}')
    sizes = img_size if isinstance(img_size, (tuple, list)) else (img_size,)
    if not sizes or len(sizes) > 2 or not all(positive_int(s) for s in sizes):
        raise ValueError(f'{backbone}: img_size must be a positive integer or a pair of them, got {img_size!r}')


class MaskTokenMixin:
    """Adds MST's ``mask_token`` (paper §3.2) to a backbone, only when ``with_mask_token=True``.

    Only MST pretraining with a mask generator masks patches; a backbone for DINO mode, a linear probe or a
    detector / segmentor has no mask token at all, so no trainable parameter is left without a gradient (DDP
    with ``find_unused_parameters=False``, the OpenMMLab default, stops on such a parameter at its second step).

    Loading: a checkpoint's ``mask_token`` is dropped by a backbone that has none (every MST checkpoint holds
    one, and older DINO-mode checkpoints do too); every other key is loaded exactly as before, so a wrong prefix
    or layout still reports its missing and unexpected keys.
    """

    mask_token: Optional[nn.Parameter]

    def _init_mask_token(self, with_mask_token: bool, embed_dims: int) -> None:
        if with_mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        else:
            self.register_parameter('mask_token', None)

    def _init_mask_token_weights(self) -> None:
        """BERT / DINO-style init, skipped when the token came from a checkpoint (``init_cfg`` Pretrained).

        Called after the backbone's own init: a public backbone (timm, DINO, ``timm_to_mst.py``) has no mask token,
        so it is drawn here even under a Pretrained ``init_cfg``; a zero token would make masked patches carry
        nothing but their position.
        """
        if self.mask_token is not None and not getattr(self, '_mask_token_loaded', False):
            trunc_normal_(self.mask_token, std=0.02)

    def _replace_masked(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Replace masked patch embeddings by the mask token.

        Args:
            x (Tensor): (B, N, C) patch embeddings (before the position embedding).
            mask (Tensor): (B, N) bool, True where the patch is masked.

        Returns:
            Tensor: (B, N, C), ``x * (1 - m) + mask_token * m``.
        """
        if self.mask_token is None:
            raise ValueError(
                f'{type(self).__name__}: a mask was given but the backbone was built with with_mask_token=False '
                '(MST builds it with a mask token whenever its mask_generator is set)'
            )
        w = mask.unsqueeze(-1).to(x.dtype)  # (B, N, 1)
        return x * (1 - w) + self.mask_token.to(x.dtype) * w

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._mask_token_loaded = prefix + 'mask_token' in state_dict
        if self.mask_token is None:
            state_dict.pop(prefix + 'mask_token', None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
