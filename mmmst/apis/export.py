"""Take a pretrained backbone out of an MST checkpoint: as mmpretrain's ``backbone.*`` keys, or as timm's.

``mst_backbone_state`` reads the teacher (or student) backbone; ``vit_to_timm`` renames an ``MSTViT`` state dict to
timm's ``VisionTransformer`` (``timm.create_model('vit_small_patch16_224', num_classes=0)`` for DeiT-S/16), and
``timm_vit_kwargs`` says which timm model has the same shape. The [MASK] token is dropped: downstream models have
none. Used by ``tools/model_converters/mst_to_backbone.py`` and ``mst_to_timm.py``.
"""

import re
from collections import OrderedDict
from typing import Dict

PREFIXES = dict(teacher='teacher.module.backbone.', student='backbone.')
DROPPED = ('mask_token',)


def mst_backbone_state(checkpoint: dict, source: str = 'teacher', filename: str = '<checkpoint>') -> OrderedDict:
    """The teacher or student backbone of an MST checkpoint, keys relative to the backbone (``cls_token``, ...).

    Raises:
        KeyError: the checkpoint has no ``state_dict``, or no key of that backbone; the message names the file.
    """
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        keys = sorted(checkpoint)[:5] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise KeyError(f'{filename}: not an mmengine checkpoint (no "state_dict"; found {keys})')
    prefix, state = PREFIXES[source], checkpoint['state_dict']
    out = OrderedDict(
        (key[len(prefix) :], value)
        for key, value in state.items()
        if key.startswith(prefix) and not key[len(prefix) :].startswith(DROPPED)
    )
    if not out:
        raise KeyError(
            f'{filename}: no "{prefix}*" keys, so it is not an MST pretraining checkpoint '
            f'(first keys: {sorted(state)[:5]})'
        )
    return out


#: MSTViT (mmpretrain's VisionTransformer) key patterns -> timm's VisionTransformer keys
_VIT_TO_TIMM = [
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.attn\.qkv\.', r'blocks.\1.attn.qkv.'),
    (r'^layers\.(\d+)\.attn\.proj\.', r'blocks.\1.attn.proj.'),
    (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
    (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    (r'^ln1\.', 'norm.'),
]


def vit_to_timm(backbone_state: Dict[str, object]) -> OrderedDict:
    """An ``MSTViT`` state dict (:func:`mst_backbone_state`) with timm's ``VisionTransformer`` names.

    Raises:
        KeyError: a key this map does not know (a Swin backbone, a ViT with layer scale); the message names it.
    """
    out = OrderedDict()
    for key, value in backbone_state.items():
        if key in ('cls_token', 'pos_embed'):
            out[key] = value
            continue
        for pattern, replacement in _VIT_TO_TIMM:
            if re.match(pattern, key):
                out[re.sub(pattern, replacement, key)] = value
                break
        else:
            raise KeyError(f'{key!r} has no timm VisionTransformer counterpart (only MSTViT backbones convert)')
    return out


def timm_vit_kwargs(backbone_cfg: dict) -> dict:
    """``timm.models.VisionTransformer`` arguments of the same shape as an ``MSTViT`` config (no classifier)."""
    from mmmst.models import MSTViT

    arch = backbone_cfg.get('arch', 'deit-small')
    arch = MSTViT.arch_zoo[arch.lower()] if isinstance(arch, str) else arch
    return dict(
        img_size=backbone_cfg.get('img_size', 224),
        patch_size=backbone_cfg.get('patch_size', 16),
        in_chans=backbone_cfg.get('in_channels', 3),
        embed_dim=arch['embed_dims'],
        depth=arch['num_layers'],
        num_heads=arch['num_heads'],
        mlp_ratio=arch['feedforward_channels'] / arch['embed_dims'],
        num_classes=0,
    )
