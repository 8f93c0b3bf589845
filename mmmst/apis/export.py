"""Take a pretrained backbone out of an MST checkpoint: as mmpretrain's ``backbone.*`` keys, or as timm's.

``mst_backbone_state`` reads the teacher (or student) backbone; :mod:`mmmst.apis.timm_format` renames it to timm's
``VisionTransformer`` (``timm.create_model('vit_small_patch16_224', num_classes=0)`` for DeiT-S/16) or
``SwinTransformer`` (``swin_tiny_patch4_window7_224`` for Swin-T) and says which timm model has the same shape. The
[MASK] token is dropped: downstream models have none. ``check_output`` and ``save_atomically`` are the output rules
of every converter (``tools/model_converters``): never the input, never a directory, the folder made.
"""

import os
import os.path as osp
from collections import OrderedDict
from typing import Tuple

import torch

from mmmst.errors import MSTError

PREFIXES = dict(teacher='teacher.module.backbone.', student='backbone.')
DROPPED = ('mask_token',)


class ExportError(MSTError, ValueError):
    """A converter's input or output that cannot be used; the message is the one line the tools print."""


def read_backbone(src: str, dst: str, source: str = 'teacher') -> Tuple[dict, OrderedDict]:
    """The checks and the load both converters start with: ``(checkpoint, backbone state dict)``.

    Raises:
        ExportError: ``src`` does not exist, ``dst`` is ``src``, or ``src`` is not a readable MST checkpoint.
    """
    from mmengine.runner import CheckpointLoader

    from mmmst.runtime.safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError

    if not osp.isfile(src):
        raise ExportError(f'checkpoint {src!r} does not exist')
    check_output(dst, src)
    try:
        checkpoint = CheckpointLoader.load_checkpoint(src, map_location='cpu', logger='silent')
        return checkpoint, mst_backbone_state(checkpoint, source, src)
    except KeyError as err:
        raise ExportError(err.args[0]) from None
    except (CorruptCheckpointError, UnsafeCheckpointError) as err:
        raise ExportError(str(err)) from None


def check_output(dst: str, src: str) -> None:
    """Refuse an output path that is the input or a directory (before anything is read or written).

    Raises:
        ExportError: naming ``dst``.
    """
    if osp.realpath(dst) == osp.realpath(src):
        raise ExportError(f'the output {dst!r} is the input checkpoint; give another file name')
    if osp.isdir(dst):
        raise ExportError(f'the output {dst!r} is a directory; give a file name, e.g. {osp.join(dst, "backbone.pth")}')


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
