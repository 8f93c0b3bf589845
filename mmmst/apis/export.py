"""Take a pretrained backbone out of an MST checkpoint: as mmpretrain's ``backbone.*`` keys, or as timm's.

``mst_backbone_state`` reads the teacher (or student) backbone; :mod:`mmmst.apis.timm_format` renames it to timm's
``VisionTransformer`` (``timm.create_model('vit_small_patch16_224', num_classes=0)`` for DeiT-S/16) or
``SwinTransformer`` (``swin_tiny_patch4_window7_224`` for Swin-T) and says which timm model has the same shape. The
[MASK] token is dropped: downstream models have none. ``check_output`` and ``save_atomically`` are the output rules
of every converter (``tools/model_converters``): never the input, never a directory, never a file of another kind
unless ``--force``, the folder made.
"""

import os
import os.path as osp
from collections import OrderedDict

import torch

from mmmst.errors import MSTError
from mmmst.files import unreadable_file

PREFIXES = dict(teacher='teacher.module.backbone.', student='backbone.')
DROPPED = ('mask_token',)


class ExportError(MSTError, ValueError):
    """A converter's input or output that cannot be used; the message is the one line the tools print."""


def read_backbone(src: str, dst: str, source: str = 'teacher', kind: str = 'backbone', force: bool = False):
    """The checks and the load both converters start with: ``(checkpoint, backbone state dict)``.

    ``kind`` (a key of :data:`OUTPUT_KINDS`) is what the converter will write to ``dst``; ``force`` lets it replace a
    file of another kind there.

    Raises:
        ExportError: ``src`` cannot be read (named: missing, a directory, empty, no MST checkpoint), or ``dst`` is
            refused by :func:`check_output`.
    """
    from mmengine.runner import CheckpointLoader

    from mmmst.runtime.safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError

    why = unreadable_file(src)
    if why:
        raise ExportError(f'checkpoint {src!r} {why}')
    check_output(dst, src, kind, force)
    try:
        checkpoint = CheckpointLoader.load_checkpoint(src, map_location='cpu', logger='silent')
        return checkpoint, mst_backbone_state(checkpoint, source, src)
    except KeyError as err:
        raise ExportError(err.args[0]) from None
    except (CorruptCheckpointError, UnsafeCheckpointError) as err:
        raise ExportError(str(err)) from None


def _is_backbone_checkpoint(obj) -> bool:
    state = obj.get('state_dict') if isinstance(obj, dict) else None
    return isinstance(state, dict) and bool(state) and all(str(k).startswith('backbone.') for k in state)


def _is_timm_state_dict(obj) -> bool:
    return (
        isinstance(obj, dict)
        and 'patch_embed.proj.weight' in obj
        and all(isinstance(v, torch.Tensor) and not str(k).startswith('backbone.') for k, v in obj.items())
    )


#: what each converter writes, ``kind: (its name in a refusal, a test of a loaded file)``: a file of that kind in
#: the output's place is the converter's own earlier output and is replaced; anything else there is the user's
OUTPUT_KINDS = dict(
    backbone=("a backbone checkpoint ({'state_dict': {'backbone.<name>': tensor}})", _is_backbone_checkpoint),
    timm=('a timm state dict', _is_timm_state_dict),
)


def check_output(dst: str, src: str, kind: str, force: bool = False) -> None:
    """Refuse an output path that is the input, a directory, or a file other than what this converter writes
    (before anything is read or written): a converter replaces only its own kind of file; ``force`` lets it
    replace any other file (never the input).

    Raises:
        ExportError: naming ``dst`` and what it is.
    """
    from mmmst.runtime.safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError, peek_checkpoint

    if osp.exists(dst) and osp.realpath(dst) == osp.realpath(src):
        raise ExportError(f'the output {dst!r} is the input checkpoint; give another file name')
    if osp.isdir(dst):
        raise ExportError(f'the output {dst!r} is a directory; give a file name, e.g. {osp.join(dst, "backbone.pth")}')
    if force or not osp.lexists(dst):
        return
    name, written_here = OUTPUT_KINDS[kind]
    found = unreadable_file(dst)
    if not found:
        try:
            found = '' if written_here(peek_checkpoint(dst)) else 'is a PyTorch checkpoint of another kind'
        except (CorruptCheckpointError, UnsafeCheckpointError):
            found = 'is not a PyTorch checkpoint'
    if found:
        raise ExportError(
            f'the output {dst!r} already exists and {found}, not {name}; give another file name, or pass --force '
            'to replace it'
        )


def save_atomically(obj, dst: str) -> None:
    """``torch.save`` to ``<dst>.partial``, then rename: an interrupted write never leaves a half file as ``dst``.

    The output's folder is made when missing; a failed write removes the partial file and raises ``ExportError``.
    """
    folder = osp.dirname(osp.abspath(dst))
    partial = f'{dst}.partial'
    try:
        os.makedirs(folder, exist_ok=True)
        torch.save(obj, partial)
        os.replace(partial, dst)
    except (OSError, RuntimeError) as err:  # torch.save reports an unwritable place as RuntimeError
        if osp.exists(partial):
            os.remove(partial)
        raise ExportError(f'cannot write {dst!r}: {err}') from None


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
