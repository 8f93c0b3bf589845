"""Vision Transformer with MST's [MASK] token and the teacher's CLS-to-patch attention."""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed

from mmmst.registry import MODELS

from .drop_path import python_drop_rates
from .mask_token import MaskTokenMixin, check_sizes
from .output import MSTBackboneOutput


@MODELS.register_module()
class MSTViT(MaskTokenMixin, VisionTransformer):
    """ViT (DeiT) backbone of MST.

    Two additions to mmpretrain's :class:`VisionTransformer`, everything else (archs, ``out_type``,
    ``out_indices``, position-embedding interpolation for 96 px local crops) is inherited:

    - ``mask``: the patch embeddings of masked patches are replaced by a learnable ``mask_token`` before the
      position embedding is added (BERT style, paper §3.2). The token exists only with ``with_mask_token=True``,
      which MST sets when it masks (see :class:`MaskTokenMixin`).
    - ``encode(x, mask, return_cls_attention=True)``: what MST needs of a view (CLS token, patch-token map)
      and, for the teacher, the last block's CLS-to-patch attention averaged over heads,
      ``softmax(q_cls K^T / sqrt(d))[:, 1:]``. It costs one extra ``q_cls @ K^T`` per head (O(N)); the block
      output still comes from the fused ``scaled_dot_product_attention``, no N x N matrix is materialised.

    Args:
        arch (str | dict): e.g. ``'deit-small'``, ``'deit-tiny'``, ``'base'``, or a dict with ``embed_dims``,
            ``num_layers``, ``num_heads``, ``feedforward_channels``.
        img_size (int): size of the global views; must be divisible by ``patch_size``.
        patch_size (int): patch size.
        norm_out_indices (bool): apply the final norm to every output of ``out_indices``, not only the last
            block's (DINO's ``get_intermediate_layers``, used by the linear probe). Defaults to False.
        with_mask_token (bool): own a learnable ``mask_token``. Defaults to False (downstream models).
        **kwargs: the rest of :class:`VisionTransformer`'s arguments.
    """

    def __init__(
        self, arch='deit-small', img_size=224, patch_size=16, norm_out_indices=False, with_mask_token=False, **kwargs
    ):
        check_sizes(type(self).__name__, img_size, patch_size)
        if isinstance(arch, str) and arch.lower() not in self.arch_zoo:
            raise ValueError(f'MSTViT: unknown arch {arch!r}; choose from {sorted(self.arch_zoo)} or pass a dict')
        sizes = img_size if isinstance(img_size, (tuple, list)) else (img_size, img_size)
        if any(s % patch_size for s in sizes):
            raise ValueError(f'MSTViT: img_size {img_size} is not divisible by patch_size {patch_size}')
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size, **kwargs)
        self.patch_size = patch_size
        self.norm_out_indices = norm_out_indices
        self._init_mask_token(with_mask_token, self.embed_dims)
        python_drop_rates(self)

    def init_weights(self):
        super().init_weights()
        self._init_mask_token_weights()

    @property
    def feat_channels(self) -> int:
        """Width of the patch tokens returned by :meth:`encode`."""
        return self.embed_dims

    @property
    def feat_stride(self) -> int:
        """Input pixels per patch token along one side."""
        return self.patch_size

    def _embed(self, x: torch.Tensor, mask: Optional[torch.Tensor]):
        """Patch embedding, [MASK] replacement, CLS token and position embedding.

        Args:
            x (Tensor): (B, C, H, W) images.
            mask (Tensor, optional): (B, N) bool, True patches get the mask token.

        Returns:
            tuple: tokens (B, 1 + N, C) and the patch resolution (H / p, W / p).
        """
        B = x.shape[0]
        x, patch_resolution = self.patch_embed(x)  # (B, N, C)
        if mask is not None:
            if mask.shape != x.shape[:2]:
                raise ValueError(
                    f'MSTViT: mask shape {tuple(mask.shape)} does not match the {tuple(x.shape[:2])} patches'
                )
            x = self._replace_masked(x, mask)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            patch_resolution,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens,
        )
        return self.pre_norm(self.drop_after_pos(x)), patch_resolution

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        """mmpretrain's ViT forward (``out_indices`` / ``out_type``), with optional masked patches.

        Used by classifiers, linear probes and dense heads. Args as in :meth:`encode`.
        """
        x, patch_resolution = self._embed(x, mask)
        outs = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == last and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                normed = self.norm_out_indices and i != last and self.final_norm
                outs.append(self._format_output(self.ln1(x) if normed else x, patch_resolution))
        return tuple(outs)

    def encode(
        self, x: torch.Tensor, mask: Optional[torch.Tensor] = None, return_cls_attention: bool = False
    ) -> MSTBackboneOutput:
        """What MST needs of a view: CLS token, patch-token map and, for the teacher, the CLS attention.

        Args:
            x (Tensor): (B, C, H, W) images.
            mask (Tensor, optional): (B, N) bool, N = (H / p) * (W / p); True patches get the mask token.
            return_cls_attention (bool): compute the last block's CLS-to-patch attention.

        Returns:
            MSTBackboneOutput: ``cls_token`` (B, C), ``patch_map`` (B, C, H / p, W / p),
            ``cls_attention`` (B, N) or None.
        """
        x, (h, w) = self._embed(x, mask)
        cls_attention = None
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last and return_cls_attention:
                x, cls_attention = self._layer_with_cls_attention(layer, x)
            else:
                x = layer(x)
        if self.final_norm:
            x = self.ln1(x)
        patch_tokens = x[:, self.num_extra_tokens :]  # (B, N, C)
        patch_map = patch_tokens.transpose(1, 2).reshape(x.shape[0], -1, h, w)
        return MSTBackboneOutput(x[:, 0], patch_map, cls_attention)

    def _layer_with_cls_attention(self, layer, x: torch.Tensor):
        """One ``TransformerEncoderLayer`` forward that also returns the CLS-to-patch attention (B, N).

        Mirrors ``TransformerEncoderLayer.forward`` / ``MultiheadAttention.forward`` so that qkv is computed
        once and the block output still uses the fused kernel.
        """
        if self.cls_token is None:
            raise ValueError('MSTViT: return_cls_attention needs with_cls_token=True')
        attn = layer.attn
        B, L, _ = x.shape
        h = layer.ln1(x)
        qkv = attn.qkv(h).reshape(B, L, 3, attn.num_heads, attn.head_dims).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, L, d)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop if self.training else 0.0)
        out = out.transpose(1, 2).reshape(B, L, attn.embed_dims)
        out = attn.out_drop(attn.gamma1(attn.proj_drop(attn.proj(out))))
        x = x + out
        x = layer.ffn(layer.ln2(x), identity=x)

        # (B, heads, 1, L): softmax over all tokens of the CLS query, as in DINO's attention maps
        cls_row = (q[:, :, :1] * attn.head_dims**-0.5) @ k.transpose(-2, -1)
        cls_attention = cls_row.float().softmax(dim=-1)[:, :, 0, self.num_extra_tokens :].mean(dim=1)
        return x, cls_attention.to(x.dtype)
