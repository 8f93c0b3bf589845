"""Swin Transformer with MST's [MASK] token and a stand-in for the CLS attention."""

from typing import Optional, Tuple

import torch
from mmpretrain.models.backbones import SwinTransformer
from mmpretrain.models.utils import resize_pos_embed
from torch import nn

from mmmst.registry import MODELS

from .drop_path import python_drop_rates
from .mask_token import MaskTokenMixin, check_sizes
from .output import MSTBackboneOutput


@MODELS.register_module()
class MSTSwinTransformer(MaskTokenMixin, SwinTransformer):
    """Swin backbone of MST.

    Swin has no CLS token, so two stand-ins make the whole algorithm run:

    - **Image token**: the mean of the normalised final-stage tokens (what Swin classifiers pool).
    - **CLS attention stand-in**: ``softmax_j(<t_j, g> / sqrt(C))`` over the final-stage tokens ``t_j`` and the
      pooled token ``g``, shape (B, h * w) (7 x 7 for 224 px input). It ranks regions by how much they agree
      with the image-level representation, as the CLS row of a ViT's attention does.
    - **Masking** happens on the final-stage grid: a (B, h * w) mask is expanded to the block of patch
      embeddings each final-stage token covers (8 x 8 patches of 4 px for Swin-T) and those patch embeddings
      are replaced by ``mask_token``. A (B, N) mask at the patch-embedding resolution is accepted as well.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'``, ``'large'`` or a dict.
        img_size (int): size of the global views; must be divisible by ``patch_size * 2 ** (stages - 1)``.
        pad_small_map (bool): pad feature maps smaller than a window; on by default because the 96 px local
            crops give 6 x 6 and 3 x 3 maps in Swin-T's last stages (window 7).
        with_mask_token (bool): own a learnable ``mask_token``. Defaults to False (downstream models).
        **kwargs: the rest of :class:`SwinTransformer`'s arguments.
    """

    def __init__(
        self,
        arch='tiny',
        img_size=224,
        patch_size=4,
        out_indices=(3,),
        pad_small_map=True,
        with_mask_token=False,
        **kwargs,
    ):
        check_sizes(type(self).__name__, img_size, patch_size)
        if isinstance(arch, str) and arch.lower() not in self.arch_zoo:
            raise ValueError(
                f'MSTSwinTransformer: unknown arch {arch!r}; choose from {sorted(self.arch_zoo)} or pass a dict'
            )
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            out_indices=out_indices,
            pad_small_map=pad_small_map,
            **kwargs,
        )
        stride = patch_size * 2 ** (len(self.stages) - 1)
        sizes = img_size if isinstance(img_size, (tuple, list)) else (img_size, img_size)
        if any(s % stride for s in sizes):
            raise ValueError(f'MSTSwinTransformer: img_size {img_size} is not divisible by the final stride {stride}')
        self.patch_size = patch_size
        self._init_mask_token(with_mask_token, self.embed_dims)
        python_drop_rates(self)
        # encode() needs the final-stage norm, which SwinTransformer builds only for stages in out_indices.
        last = len(self.stages) - 1
        if not hasattr(self, f'norm{last}'):
            self.add_module(f'norm{last}', nn.LayerNorm(self.num_features[last]))

    def init_weights(self):
        super().init_weights()
        self._init_mask_token_weights()

    @property
    def feat_channels(self) -> int:
        return self.num_features[-1]

    @property
    def feat_stride(self) -> int:
        return self.patch_size * 2 ** (len(self.stages) - 1)

    def _embed(self, x: torch.Tensor, mask: Optional[torch.Tensor]):
        """Patch embedding with [MASK] replacement and absolute position embedding.

        Returns:
            tuple: tokens (B, N, C) and the patch resolution.
        """
        x, hw_shape = self.patch_embed(x)  # (B, N, C)
        if mask is not None:
            x = self._replace_masked(x, self._mask_at_patch_resolution(mask, hw_shape))
        if self.use_abs_pos_embed:
            x = x + resize_pos_embed(
                self.absolute_pos_embed, self.patch_resolution, hw_shape, self.interpolate_mode, self.num_extra_tokens
            )
        return self.drop_after_pos(x), hw_shape

    def _mask_at_patch_resolution(self, mask: torch.Tensor, hw_shape) -> torch.Tensor:
        """(B, h * w) final-stage mask -> (B, H * W) patch mask (nearest, block-wise); (B, H * W) passes."""
        H, W = hw_shape
        factor = 2 ** (len(self.stages) - 1)
        h, w = -(-H // factor), -(-W // factor)
        if mask.shape[1] == H * W:
            return mask
        if mask.shape[1] != h * w:
            raise ValueError(
                f'MSTSwinTransformer: mask shape {tuple(mask.shape)} matches neither the {H}x{W} patch grid '
                f'nor the {h}x{w} final-stage grid'
            )
        grid = mask.view(-1, h, w).repeat_interleave(factor, 1).repeat_interleave(factor, 2)
        return grid[:, :H, :W].flatten(1)

    def _run_stages(self, x, hw_shape, collect_outputs: bool):
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw_shape = stage(x, hw_shape, do_downsample=self.out_after_downsample)
            if collect_outputs and i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(out.view(-1, *hw_shape, self.num_features[i]).permute(0, 3, 1, 2).contiguous())
            if stage.downsample is not None and not self.out_after_downsample:
                x, hw_shape = stage.downsample(x, hw_shape)
        return x, hw_shape, outs

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        """mmpretrain's Swin forward (feature maps of ``out_indices``), with optional masked patches."""
        x, hw_shape = self._embed(x, mask)
        return tuple(self._run_stages(x, hw_shape, collect_outputs=True)[2])

    def encode(
        self, x: torch.Tensor, mask: Optional[torch.Tensor] = None, return_cls_attention: bool = False
    ) -> MSTBackboneOutput:
        """Image token, final-stage map and the attention stand-in (see the class docstring).

        Args:
            x (Tensor): (B, C, H, W) images.
            mask (Tensor, optional): (B, h * w) final-stage mask or (B, N) patch mask, bool.
            return_cls_attention (bool): compute the attention stand-in.

        Returns:
            MSTBackboneOutput: ``cls_token`` (B, C), ``patch_map`` (B, C, h, w), ``cls_attention`` (B, h * w).
        """
        x, hw_shape = self._embed(x, mask)
        x, (h, w), _ = self._run_stages(x, hw_shape, collect_outputs=False)
        tokens = getattr(self, f'norm{len(self.stages) - 1}')(x)  # (B, h * w, C)
        pooled = tokens.mean(dim=1)  # (B, C)
        cls_attention = None
        if return_cls_attention:
            scores = torch.einsum('bnc,bc->bn', tokens, pooled) * tokens.shape[-1] ** -0.5
            cls_attention = scores.float().softmax(dim=-1).to(tokens.dtype)
        patch_map = tokens.transpose(1, 2).reshape(x.shape[0], -1, h, w)
        return MSTBackboneOutput(pooled, patch_map, cls_attention)
