"""Take a pretrained backbone out of an MST checkpoint: as mmpretrain's ``backbone.*`` keys, or as timm's.

``mst_backbone_state`` reads the teacher (or student) backbone; ``vit_to_timm`` renames an ``MSTViT`` state dict to
timm's ``VisionTransformer`` (``timm.create_model('vit_small_patch16_224', num_classes=0)`` for DeiT-S/16) and
``swin_to_timm`` an ``MSTSwinTransformer`` one to timm's ``SwinTransformer`` (``swin_tiny_patch4_window7_224`` for
Swin-T); ``timm_vit_kwargs`` / ``timm_swin_kwargs`` say which timm model has the same shape. The [MASK] token is
dropped: downstream models have none. Used by ``tools/model_converters/mst_to_backbone.py`` and ``mst_to_timm.py``.
"""

import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Tuple

import torch

PREFIXES = dict(teacher='teacher.module.backbone.', student='backbone.')
DROPPED = ('mask_token',)


class ExportError(ValueError):
    """A converter's input or output that cannot be used; the message is the one line the tools print."""


def read_backbone(src: str, dst: str, source: str = 'teacher') -> Tuple[dict, OrderedDict]:
    """The checks and the load both converters start with: ``(checkpoint, backbone state dict)``.

    Raises:
        ExportError: ``src`` does not exist, ``dst`` is ``src``, or ``src`` is not a readable MST checkpoint.
    """
    from mmengine.runner import CheckpointLoader

    from mmmst.engine.safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError

    if not osp.isfile(src):
        raise ExportError(f'checkpoint {src!r} does not exist')
    if osp.realpath(dst) == osp.realpath(src):
        raise ExportError(f'the output {dst!r} is the input checkpoint; give another file name')
    try:
        checkpoint = CheckpointLoader.load_checkpoint(src, map_location='cpu', logger='silent')
        return checkpoint, mst_backbone_state(checkpoint, source, src)
    except KeyError as err:
        raise ExportError(err.args[0]) from None
    except (CorruptCheckpointError, UnsafeCheckpointError) as err:
        raise ExportError(str(err)) from None


def save_atomically(obj, dst: str) -> None:
    """``torch.save`` to ``<dst>.partial``, then rename: an interrupted write never leaves a half file as ``dst``."""
    partial = f'{dst}.partial'
    torch.save(obj, partial)
    os.replace(partial, dst)


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
            raise KeyError(f'{key!r} has no timm VisionTransformer counterpart (not an MSTViT weight)')
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


#: MSTSwinTransformer (mmpretrain's SwinTransformer) key patterns -> timm's SwinTransformer keys; the patch merging
#: of stage N (mmpretrain: at its end) is timm's stage N + 1 (at its start)
_SWIN_TO_TIMM = [
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^patch_embed\.norm\.', 'patch_embed.norm.'),
    (r'^stages\.(\d+)\.blocks\.(\d+)\.norm(\d)\.', r'layers.\1.blocks.\2.norm\3.'),
    (r'^stages\.(\d+)\.blocks\.(\d+)\.attn\.w_msa\.', r'layers.\1.blocks.\2.attn.'),
    (r'^stages\.(\d+)\.blocks\.(\d+)\.ffn\.layers\.0\.0\.', r'layers.\1.blocks.\2.mlp.fc1.'),
    (r'^stages\.(\d+)\.blocks\.(\d+)\.ffn\.layers\.1\.', r'layers.\1.blocks.\2.mlp.fc2.'),
]


def _merged_channels_to_timm(value: torch.Tensor) -> torch.Tensor:
    """Reorder the 4C input channels of a patch merging (the reduction's inputs, or the norm before it).

    mmcv's ``PatchMerging`` gathers each 2 x 2 neighbourhood with ``nn.Unfold``: channel ``c * 4 + 2 * dy + dx``.
    timm (like the official Swin) concatenates the four neighbours: channel ``(2 * dx + dy) * C + c``.
    """
    channels = value.shape[-1] // 4
    c, dy, dx = torch.meshgrid(torch.arange(channels), torch.arange(2), torch.arange(2), indexing='ij')
    source = (c * 4 + 2 * dy + dx).flatten()  # mmcv's index of (c, dy, dx) ...
    target = ((2 * dx + dy) * channels + c).flatten()  # ... and timm's
    order = torch.empty_like(source)
    order[target] = source
    return value[..., order]


def swin_to_timm(backbone_state: Dict[str, object]) -> OrderedDict:
    """An ``MSTSwinTransformer`` state dict (:func:`mst_backbone_state`) with timm's ``SwinTransformer`` names.

    The relative position indices (buffers timm rebuilds) are left out; the last stage's norm (``norm3``) is timm's
    ``norm``. Raises ``KeyError`` naming a key this map does not know (a ViT, a Swin with other output stages).
    """
    out = OrderedDict()
    for key, value in backbone_state.items():
        if key.endswith('relative_position_index'):
            continue
        merging = re.match(r'^stages\.(\d+)\.downsample\.(norm\.weight|norm\.bias|reduction\.weight)$', key)
        if merging:
            stage, name = int(merging.group(1)), merging.group(2)
            out[f'layers.{stage + 1}.downsample.{name}'] = _merged_channels_to_timm(value)
            continue
        if key.startswith('norm') and key[4:5].isdigit():
            if not key.startswith(f'norm{_last_stage(backbone_state)}.'):
                raise KeyError(f"{key!r}: timm's SwinTransformer has a norm after the last stage only")
            out['norm.' + key.split('.', 1)[1]] = value
            continue
        for pattern, replacement in _SWIN_TO_TIMM:
            if re.match(pattern, key):
                out[re.sub(pattern, replacement, key)] = value
                break
        else:
            raise KeyError(f'{key!r} has no timm SwinTransformer counterpart (not an MSTSwinTransformer weight)')
    return out


def _last_stage(backbone_state) -> int:
    return max(int(m.group(1)) for m in (re.match(r'^stages\.(\d+)\.', k) for k in backbone_state) if m)


def timm_swin_kwargs(backbone_cfg: dict) -> dict:
    """``timm.models.SwinTransformer`` arguments computing what an ``MSTSwinTransformer`` config computes (no head).

    ``always_partition``: MST's Swin pads a feature map smaller than a window and keeps shifting windows on a map
    as large as one (``pad_small_map=True``, for the 96 px local crops), where timm by default stops shifting: on
    224 px images Swin-T's last stage (7 x 7, window 7) would otherwise differ.
    """
    from mmmst.models import MSTSwinTransformer

    arch = backbone_cfg.get('arch', 'tiny')
    arch = MSTSwinTransformer.arch_zoo[arch.lower()] if isinstance(arch, str) else arch
    return dict(
        img_size=backbone_cfg.get('img_size', 224),
        patch_size=backbone_cfg.get('patch_size', 4),
        in_chans=backbone_cfg.get('in_channels', 3),
        window_size=backbone_cfg.get('window_size', 7),
        embed_dim=arch['embed_dims'],
        depths=tuple(arch['depths']),
        num_heads=tuple(arch['num_heads']),
        always_partition=backbone_cfg.get('pad_small_map', True),
        num_classes=0,
    )
