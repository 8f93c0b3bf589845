"""MST backbones in timm's names and shapes, both ways: one set of rules for export and import.

- **Names.** ``MSTViT`` (mmpretrain's ``VisionTransformer``) and timm's ``VisionTransformer`` (also DINO's and
  DeiT's released ViTs) differ in names only; ``MSTSwinTransformer`` (mmpretrain's ``SwinTransformer``) and timm's
  ``SwinTransformer`` also in where the patch merging sits (mmpretrain: end of stage N; timm: start of stage N + 1)
  and in the order of its 4C input channels. :data:`VIT_NAMES` and :data:`SWIN_NAMES` are read in both
  directions by :func:`to_timm` and :func:`from_timm`.
- **Shapes.** :func:`check_backbone_shapes` compares a state dict (MST names) with the backbone a config builds;
  :func:`check_swin_exact` refuses the Swin image sizes where the two implementations compute different features
  from the same weights; :func:`timm_vit_kwargs` / :func:`timm_swin_kwargs` give the timm model of a config's shape.

Every refusal is a :class:`TimmFormatError` whose message is the one line the converters print.
"""

import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

from mmmst.errors import MSTError


class TimmFormatError(MSTError, ValueError):
    """Weights and a backbone config that cannot be mapped onto each other exactly; the message says why."""


#: (MST name, timm name) templates of ``MSTViT``; ``{i}`` is a block index
VIT_NAMES = [
    ('cls_token', 'cls_token'),
    ('pos_embed', 'pos_embed'),
    ('patch_embed.projection.', 'patch_embed.proj.'),
    ('pre_norm.', 'norm_pre.'),
    ('layers.{i}.ln1.', 'blocks.{i}.norm1.'),
    ('layers.{i}.ln2.', 'blocks.{i}.norm2.'),
    ('layers.{i}.attn.qkv.', 'blocks.{i}.attn.qkv.'),
    ('layers.{i}.attn.proj.', 'blocks.{i}.attn.proj.'),
    ('layers.{i}.ffn.layers.0.0.', 'blocks.{i}.mlp.fc1.'),
    ('layers.{i}.ffn.layers.1.', 'blocks.{i}.mlp.fc2.'),
    ('ln1.', 'norm.'),
]

#: the same for ``MSTSwinTransformer`` (``{i}`` a stage, ``{j}`` a block); the patch merging and the final norm
#: are handled by :func:`to_timm` / :func:`from_timm` (index shift, channel order)
SWIN_NAMES = [
    ('patch_embed.projection.', 'patch_embed.proj.'),
    ('patch_embed.norm.', 'patch_embed.norm.'),
    ('stages.{i}.blocks.{j}.norm1.', 'layers.{i}.blocks.{j}.norm1.'),
    ('stages.{i}.blocks.{j}.norm2.', 'layers.{i}.blocks.{j}.norm2.'),
    ('stages.{i}.blocks.{j}.attn.w_msa.', 'layers.{i}.blocks.{j}.attn.'),
    ('stages.{i}.blocks.{j}.ffn.layers.0.0.', 'layers.{i}.blocks.{j}.mlp.fc1.'),
    ('stages.{i}.blocks.{j}.ffn.layers.1.', 'layers.{i}.blocks.{j}.mlp.fc2.'),
]

#: buffers that both sides rebuild from the window size; never converted
REBUILT = ('relative_position_index', 'attn_mask')


def _pattern(template: str) -> str:
    pattern = '^' + re.escape(template)
    return pattern.replace(r'\{i\}', r'(?P<i>\d+)').replace(r'\{j\}', r'(?P<j>\d+)')


def _rename(key: str, names: List[Tuple[str, str]], forward: bool):
    """``key`` with its prefix renamed (MST -> timm when ``forward``), or None when no template matches."""
    for mst, timm in names:
        source, target = (mst, timm) if forward else (timm, mst)
        match = re.match(_pattern(source), key)
        if match:
            return target.format(**match.groupdict()) + key[match.end() :]
    return None


def _merging_order(channels4: int) -> torch.Tensor:
    """Index ``order`` with ``timm_value = mst_value[..., order]`` for a patch merging's 4C input channels.

    mmcv's ``PatchMerging`` gathers each 2 x 2 neighbourhood with ``nn.Unfold``: channel ``c * 4 + 2 * dy + dx``.
    timm (like the official Swin) concatenates the four neighbours: channel ``(2 * dx + dy) * C + c``.
    """
    channels = channels4 // 4
    c, dy, dx = torch.meshgrid(torch.arange(channels), torch.arange(2), torch.arange(2), indexing='ij')
    source = (c * 4 + 2 * dy + dx).flatten()  # mmcv's index of (c, dy, dx) ...
    target = ((2 * dx + dy) * channels + c).flatten()  # ... and timm's
    order = torch.empty_like(source)
    order[target] = source
    return order


def _last_stage(keys, prefix: str) -> int:
    stages = [int(m.group(1)) for m in (re.match(prefix + r'(\d+)\.', k) for k in keys) if m]
    return max(stages) if stages else 0


def to_timm(backbone_state: Dict[str, torch.Tensor], swin: bool) -> OrderedDict:
    """An MST backbone state dict (``cls_token``, ``layers.0.ln1.weight``, ...) in timm's names.

    Raises:
        TimmFormatError: a key without a timm counterpart (another backbone, a ViT with layer scale), named.
    """
    out = OrderedDict()
    last = _last_stage(backbone_state, r'^stages\.') if swin else None
    for key, value in backbone_state.items():
        if key.endswith(REBUILT):
            continue
        if swin:
            merging = re.match(r'^stages\.(\d+)\.downsample\.(norm\.weight|norm\.bias|reduction\.weight)$', key)
            if merging:
                name = f'layers.{int(merging.group(1)) + 1}.downsample.{merging.group(2)}'
                out[name] = value[..., _merging_order(value.shape[-1])]
                continue
            if re.match(r'^norm\d+\.', key):
                if not key.startswith(f'norm{last}.'):
                    raise TimmFormatError(f"{key!r}: timm's SwinTransformer has a norm after the last stage only")
                out['norm.' + key.split('.', 1)[1]] = value
                continue
        name = _rename(key, SWIN_NAMES if swin else VIT_NAMES, forward=True)
        if name is None:
            kind, ours = ('SwinTransformer', 'MSTSwinTransformer') if swin else ('VisionTransformer', 'MSTViT')
            raise TimmFormatError(f'{key!r} has no timm {kind} counterpart (not an {ours} weight)')
        out[name] = value
    return out


def from_timm(timm_state: Dict[str, torch.Tensor], swin: bool) -> OrderedDict:
    """The inverse of :func:`to_timm`: a timm ``VisionTransformer`` / ``SwinTransformer`` backbone in MST names.

    Raises:
        TimmFormatError: a key that no MST backbone holds (a distillation token, an average-pool norm), named.
    """
    out = OrderedDict()
    last = _last_stage(timm_state, r'^layers\.') if swin else None
    for key, value in timm_state.items():
        if key.endswith(REBUILT):
            continue
        if swin:
            merging = re.match(r'^layers\.(\d+)\.downsample\.(norm\.weight|norm\.bias|reduction\.weight)$', key)
            if merging:
                name = f'stages.{int(merging.group(1)) - 1}.downsample.{merging.group(2)}'
                out[name] = value[..., torch.argsort(_merging_order(value.shape[-1]))]
                continue
            if key.startswith('norm.'):
                out[f'norm{last}.' + key[len('norm.') :]] = value
                continue
        name = _rename(key, SWIN_NAMES if swin else VIT_NAMES, forward=False)
        if name is None:
            raise TimmFormatError(f'{key!r} has no counterpart in MST{"SwinTransformer" if swin else "ViT"}')
        out[name] = value
    return out


def build_reference_backbone(backbone_cfg: dict):
    """The backbone a config builds, without [MASK] token and init (its names and shapes are the reference)."""
    from mmmst.registry import MODELS

    cfg = dict(backbone_cfg)
    cfg.update(with_mask_token=False, init_cfg=None)
    return MODELS.build(cfg)


def is_swin(state) -> bool:
    """Whether a state dict (MST or timm names) holds a Swin Transformer: blocks inside stages."""
    return any(re.match(r'^(layers|stages)\.\d+\.blocks\.', k) for k in state)


def check_kind(state, backbone_cfg: dict, what: str) -> None:
    """Refuse Swin weights for a ViT config and the reverse, in one line naming both."""
    if is_swin(state) != ('Swin' in backbone_cfg['type']):
        held = 'a Swin Transformer' if is_swin(state) else 'a ViT'
        raise TimmFormatError(f"{what} holds {held}; the config's backbone is {backbone_cfg['type']}")


def _depth(keys) -> int:
    """Transformer blocks of a state dict in MST names (ViT: ``layers.N``; Swin: ``stages.N.blocks.M``)."""
    return len({m.group(0) for m in (re.match(r'^(layers\.\d+|stages\.\d+\.blocks\.\d+)\.', k) for k in keys) if m})


def check_backbone_shapes(state: Dict[str, torch.Tensor], reference: Dict[str, torch.Tensor], what: str) -> None:
    """Refuse ``state`` (MST names) unless it has exactly the keys and shapes of ``reference``.

    ``what`` names the weights in the message. The position embedding may differ in its grid only (the image
    size): the caller resamples it or refuses. The first difference that tells the user most is reported:
    width, depth, patch size, input channels, then any key.

    Raises:
        TimmFormatError: one line naming both shapes.
    """
    for key, meaning in (('cls_token', 'width'), ('patch_embed.projection.weight', 'patch embedding')):
        if key in state and key in reference and state[key].shape != reference[key].shape:
            got, want = tuple(state[key].shape), tuple(reference[key].shape)
            if key == 'patch_embed.projection.weight':
                meaning = (
                    f'width {got[0]}, {got[1]} input channels, patch size {got[2]} in {what}; '
                    f'width {want[0]}, {want[1]} input channels, patch size {want[2]} in the config'
                )
                raise TimmFormatError(f'{meaning}: the backbones differ')
            raise TimmFormatError(f'{meaning} {got[-1]} in {what}, {want[-1]} in the config: the backbones differ')
    got_depth, want_depth = _depth(state), _depth(reference)
    if got_depth != want_depth:
        raise TimmFormatError(f'{got_depth} blocks in {what}, {want_depth} in the config: the backbones differ')
    missing = [k for k in reference if k not in state and not k.endswith(REBUILT)]
    extra = [k for k in state if k not in reference]
    if missing or extra:
        raise TimmFormatError(
            f'{what} and the config differ in their weights: missing {missing[:3]}, unexpected {extra[:3]} '
            f'(qkv_bias, final_norm or pre_norm set differently?)'
        )
    for key, value in state.items():
        if key == 'pos_embed' or key.endswith(REBUILT):
            continue
        if value.shape != reference[key].shape:
            raise TimmFormatError(
                f'{key}: {tuple(value.shape)} in {what}, {tuple(reference[key].shape)} in the config: '
                f'the backbones differ'
            )


def check_export(backbone_state: Dict[str, torch.Tensor], backbone_cfg: dict, what: str) -> None:
    """Refuse to hand out a timm model of the config's shape for weights of another shape (before any write).

    Raises:
        TimmFormatError: naming what differs, or the Swin image size whose features timm would not reproduce.
    """
    check_kind(backbone_state, backbone_cfg, what)
    if 'Swin' in backbone_cfg['type']:
        check_swin_exact(backbone_cfg)
    reference = build_reference_backbone(backbone_cfg).state_dict()
    state = {k: v for k, v in backbone_state.items() if not k.startswith('mask_token')}
    check_backbone_shapes(state, reference, what)
    for key in ('pos_embed', 'absolute_pos_embed'):
        if key in state and state[key].shape != reference[key].shape:
            raise TimmFormatError(
                f'{key}: {tuple(state[key].shape)} in {what}, {tuple(reference[key].shape)} in the config: '
                f'the image size or patch size differs'
            )


def write_timm(backbone_state: Dict[str, torch.Tensor], backbone_cfg: dict, dst: str, what: str) -> OrderedDict:
    """Check an MST backbone against its config (:func:`check_export`), rename it to timm's names and save it to
    ``dst`` atomically; returns what was written. ``mst_to_timm.py`` and the lab's runner call it."""
    from .export import save_atomically

    check_export(backbone_state, backbone_cfg, what)
    state = to_timm(backbone_state, 'Swin' in backbone_cfg['type'])
    save_atomically(dict(state), dst)
    return state


def swin_stage_maps(backbone_cfg: dict) -> List[int]:
    """The side of each stage's feature map at the config's ``img_size`` (smallest side)."""
    from mmmst.models import MSTSwinTransformer

    arch = backbone_cfg.get('arch', 'tiny')
    arch = MSTSwinTransformer.arch_zoo[arch.lower()] if isinstance(arch, str) else arch
    size = backbone_cfg.get('img_size', 224)
    size = min(size) if isinstance(size, (tuple, list)) else size
    side = size // backbone_cfg.get('patch_size', 4)
    return [side // 2**s for s in range(len(arch['depths']))]


def check_swin_exact(backbone_cfg: dict) -> None:
    """Refuse a Swin image size at which mmpretrain's and timm's Swin compute different features.

    On a stage map that is not a multiple of the window, mmpretrain pads the map and then shifts the windows,
    timm shifts and then pads: the same weights load on both sides and give other features. Maps that are
    multiples of the window (224 px for window 7, patch 4) agree; so does a map smaller than the window when
    ``pad_small_map=False`` (both shrink the window and stop shifting).

    Raises:
        TimmFormatError: naming the stage, its map and the window, and an image size that works.
    """
    window = backbone_cfg.get('window_size', 7)
    pad_small_map = backbone_cfg.get('pad_small_map', True)
    maps = swin_stage_maps(backbone_cfg)
    for stage, side in enumerate(maps):
        if side % window and (pad_small_map or side > window):
            stride = backbone_cfg.get('patch_size', 4) * 2 ** (len(maps) - 1)
            raise TimmFormatError(
                f'img_size {backbone_cfg.get("img_size", 224)}: stage {stage} has a {side} x {side} map, not a '
                f'multiple of window_size {window}; there mmpretrain pads then shifts the windows and timm shifts '
                f'then pads, so the weights would give other features. Use an img_size that is a multiple of '
                f'{stride * window} (e.g. {stride * window})'
            )


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
        qkv_bias=backbone_cfg.get('qkv_bias', True),
        pre_norm=backbone_cfg.get('pre_norm', False),
        final_norm=backbone_cfg.get('final_norm', True),
        num_classes=0,
    )


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
        qkv_bias=backbone_cfg.get('qkv_bias', True),
        always_partition=backbone_cfg.get('pad_small_map', True),
        num_classes=0,
    )
