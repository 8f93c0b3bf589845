"""Start MST from a public backbone: timm, DINO and DeiT checkpoints, read weights-only, in MST's names.

What :func:`import_backbone` reads (``tools/model_converters/timm_to_mst.py`` is its command):

============================  ===============================================================================
format                        what is in the file
============================  ===============================================================================
timm ``.pth`` / safetensors   a ``VisionTransformer`` or ``SwinTransformer`` state dict (``model.state_dict()``)
DINO, backbone release        ``dino_deitsmall16_pretrain.pth``: a timm-named ViT state dict
DINO, full checkpoint         ``{'student', 'teacher', 'args': argparse.Namespace, ...}``; the teacher by default
DeiT release                  ``{'model': state dict with head}``
official Swin release         ``{'model': ...}`` with the patch merging at the end of each stage
mmpretrain classifier         ``{'state_dict': {'backbone.*', 'head.*'}}``: already MST's names
============================  ===============================================================================

Classifier heads and DINO's projection head are left behind: MST's heads and decoder start fresh. Loading is
weights-only: tensors, containers and, for DINO's full checkpoint, ``argparse.Namespace``; any other object in the
file is refused before it is built.
"""

import argparse
import os.path as osp
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

from mmmst.files import unreadable_file

from .timm_format import (
    REBUILT,
    TimmFormatError,
    build_reference_backbone,
    check_backbone_shapes,
    check_kind,
    check_swin_exact,
    from_timm,
)

#: keys of a classifier or a projection head, left behind
HEADS = ('head.', 'head_dist.', 'fc.', 'classifier.')


def load_public_checkpoint(src: str):
    """The object in ``src``, weights-only (``argparse.Namespace`` admitted, for DINO's full checkpoint).

    Raises:
        TimmFormatError: the file is missing, a directory, empty, not a checkpoint, or holds an object outside the
            allow-list.
    """
    why = unreadable_file(src)
    if why:
        raise TimmFormatError(f'checkpoint {src!r} {why}')
    if src.endswith('.safetensors'):
        from safetensors.torch import load_file

        try:
            return load_file(src)
        except Exception as err:  # safetensors raises its own SafetensorError
            raise TimmFormatError(f'{src}: not a readable safetensors file: {err}') from None
    complete = zipfile.is_zipfile(src)  # torch writes zip archives (since 1.6), their directory comes last
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(src, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        said = (str(err).splitlines() or [''])[0]
        if complete:
            raise TimmFormatError(
                f'refusing {src!r}: it holds an object other than tensors, containers and argparse.Namespace, and '
                f'nothing in it was run. torch said: {said}'
            ) from None
        unreadable = f'{src}: not a readable PyTorch checkpoint (truncated, or another kind of file)'
        raise TimmFormatError(unreadable) from None
    except Exception as err:  # torch's readers raise KeyError, RuntimeError, EOFError, ... for a file not theirs
        said = (str(err).splitlines() or [''])[0]
        raise TimmFormatError(
            f'{src}: not a readable PyTorch checkpoint (truncated, or another kind of file; {type(err).__name__}: '
            f'{said})'
        ) from None


def _strip(state: Dict[str, torch.Tensor], prefixes=('module.', 'backbone.')) -> OrderedDict:
    out = OrderedDict()
    for key, value in state.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def backbone_weights(checkpoint, source: str = 'teacher', filename: str = '<checkpoint>') -> Tuple[OrderedDict, str]:
    """The backbone tensors of a public checkpoint, heads left out: ``(state dict, what the file was)``.

    The names are timm's, except for an mmpretrain checkpoint (``'mmpretrain'`` in the description), whose
    ``backbone.*`` keys are already MST's.

    Raises:
        TimmFormatError: a format this reader does not know, or a backbone MST does not have (distillation or
            register tokens, an average-pooled ViT); the message names the file.
    """
    if not isinstance(checkpoint, dict):
        raise TimmFormatError(f'{filename}: holds a {type(checkpoint).__name__}, not a state dict')
    if 'teacher' in checkpoint and 'student' in checkpoint:
        state, kind = _strip(checkpoint[source]), f"DINO's full checkpoint ({source})"
    elif isinstance(checkpoint.get('model'), dict):
        state, kind = _strip(checkpoint['model']), 'a DeiT / Swin release ("model")'
    elif isinstance(checkpoint.get('state_dict'), dict):
        keys = checkpoint['state_dict']
        if any(k.startswith(('teacher.', 'neck.', 'decoder.')) for k in keys):
            raise TimmFormatError(
                f'{filename} is an MST checkpoint: continue it with load_from (or --resume), or export it with '
                f'mst_to_timm.py first'
            )
        state = OrderedDict((k[len('backbone.') :], v) for k, v in keys.items() if k.startswith('backbone.'))
        if not state:
            raise TimmFormatError(f'{filename}: an mmengine checkpoint without "backbone.*" keys')
        return state, 'an mmpretrain checkpoint (backbone.*)'
    else:
        state, kind = _strip(checkpoint), 'a timm state dict'
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TimmFormatError(f'{filename}: not a state dict of tensors (first keys: {list(state)[:5]})')
    for key, why in (
        ('dist_token', 'a distilled DeiT (dist_token): MSTViT has one CLS token; take the non-distilled DeiT'),
        ('reg_token', 'a ViT with register tokens: MSTViT has none'),
        ('fc_norm.weight', 'an average-pooled ViT (fc_norm): MSTViT reads its CLS token after a final norm'),
    ):
        if key in state:
            raise TimmFormatError(f'{filename} holds {why}')
    state = OrderedDict((k, v) for k, v in state.items() if not k.startswith(HEADS))
    if 'layers.0.downsample.reduction.weight' in state:  # official Swin: merging at the end of stage N
        state = OrderedDict(
            (re.sub(r'^layers\.(\d+)\.downsample\.', lambda m: f'layers.{int(m.group(1)) + 1}.downsample.', k), v)
            for k, v in state.items()
        )
    return state, kind


def import_backbone(src: str, backbone_cfg: dict, source: str = 'teacher') -> Tuple[OrderedDict, List[str]]:
    """A public backbone in MST's names, checked against (and resampled to) the backbone of a config.

    Args:
        src (str): the checkpoint (see the module docstring for the formats).
        backbone_cfg (dict): the MST config's ``model.backbone``.
        source (str): ``'teacher'`` or ``'student'``, for DINO's full checkpoint.

    Returns:
        tuple: the state dict (``cls_token``, ``layers.0.ln1.weight``, ...: an ``MSTViT`` / ``MSTSwinTransformer``
        of the config loads it with only the [MASK] token missing) and notes on what was done (for the log).

    Raises:
        TimmFormatError: one line naming the file and what differs (patch size, width, depth, Swin vs ViT, ...).
    """
    from mmpretrain.models.utils import resize_pos_embed

    state, kind = backbone_weights(load_public_checkpoint(src), source, src)
    notes = [f'read {kind}']
    swin_cfg = 'Swin' in backbone_cfg['type']
    check_kind(state, backbone_cfg, src)
    if swin_cfg:
        check_swin_exact(backbone_cfg)
    if 'mmpretrain' not in kind:
        try:
            state = from_timm(state, swin_cfg)
        except TimmFormatError as err:
            raise TimmFormatError(f'{src}: {err}') from None
    reference_model = build_reference_backbone(backbone_cfg)
    reference = reference_model.state_dict()
    check_backbone_shapes(state, reference, what=src)
    for key in ('pos_embed', 'absolute_pos_embed'):
        if key in state and state[key].shape != reference[key].shape:
            extra = getattr(reference_model, 'num_extra_tokens', 0)
            side = int(round((state[key].shape[1] - extra) ** 0.5))
            if side * side != state[key].shape[1] - extra:
                raise TimmFormatError(f'{src}: {key} {tuple(state[key].shape)} is not a square grid of patches')
            target = reference_model.patch_resolution
            state[key] = resize_pos_embed(state[key], (side, side), target, 'bicubic', extra)
            notes.append(f'{key} resampled from {side} x {side} to {target[0]} x {target[1]} patches (bicubic)')
    for key, value in reference.items():  # buffers rebuilt from the window size: the config's own
        if key.endswith(REBUILT):
            state[key] = value
    return OrderedDict((k, state[k]) for k in reference), notes


def write_imported_backbone(
    src: str, dst: str, backbone_cfg: dict, source: str = 'teacher', config: str = None, force: bool = False
):
    """:func:`import_backbone`, saved atomically to ``dst`` as ``{'state_dict': {'backbone.<name>': tensor}}`` (what
    a ``Pretrained`` ``init_cfg`` with ``prefix='backbone.'`` reads); returns ``(state, notes)``. A file of another
    kind at ``dst`` is refused unless ``force`` (:func:`~mmmst.apis.export.check_output`).
    ``timm_to_mst.py`` and the lab's runner call it."""
    from .export import check_output, save_atomically

    check_output(dst, src, 'backbone', force)
    state, notes = import_backbone(src, backbone_cfg, source)
    meta = dict(source=osp.abspath(src), notes=notes, **({'config': osp.abspath(config)} if config else {}))
    save_atomically(dict(state_dict={'backbone.' + k: v for k, v in state.items()}, meta=meta), dst)
    return state, notes
