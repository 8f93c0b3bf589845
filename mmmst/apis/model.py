"""An MST model from a config, with its checkpoint loaded strictly, or initialised (the untrained baseline)."""

import logging
from contextlib import contextmanager
from typing import Optional, Tuple

import torch
from mmengine.config import Config

from mmmst.errors import MSTError, config_errors
from mmmst.runtime.non_finite import NonFiniteError, first_non_finite


class CheckpointMismatchError(MSTError, ValueError):
    """A checkpoint whose weights do not fit the model a config builds (another config, another architecture)."""


def state_dict_mismatch(model_state: dict, checkpoint_state: dict) -> Optional[str]:
    """One sentence naming how two state dicts differ (the first keys of each kind), or None when they match.

    Args:
        model_state (dict): what the model expects, name -> tensor.
        checkpoint_state (dict): what the checkpoint holds, name -> tensor.
    """
    missing = [k for k in model_state if k not in checkpoint_state]
    unexpected = [k for k in checkpoint_state if k not in model_state]
    shapes = [
        f'{k} {tuple(checkpoint_state[k].shape)} in the checkpoint, {tuple(v.shape)} in the model'
        for k, v in model_state.items()
        if k in checkpoint_state and hasattr(checkpoint_state[k], 'shape') and checkpoint_state[k].shape != v.shape
    ]
    parts = []
    for what, keys in (('of another shape', shapes), ('missing', missing), ('unexpected', unexpected)):
        if keys:
            more = f' and {len(keys) - 2} more' if len(keys) > 2 else ''
            parts.append(f'{len(keys)} keys {what} ({"; ".join(keys[:2])}{more})')
    return ', '.join(parts) or None


def checkpoint_state(checkpoint: str) -> Tuple[object, Optional[dict]]:
    """The whole checkpoint file (loaded on the CPU, weights only) and its state dict, name -> tensor; the state
    dict is None when the file holds none (a bare state dict counts as one)."""
    from mmengine.runner.checkpoint import _load_checkpoint

    loaded = _load_checkpoint(checkpoint, map_location='cpu')
    state = loaded.get('state_dict', loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(hasattr(v, 'shape') for v in state.values()):
        state = None
    return loaded, state


@contextmanager
def quiet_mmengine_logger(level=logging.WARNING):
    """Raise mmengine's current logger to ``level`` for a while (``init_weights`` logs every parameter at INFO)."""
    from mmengine.logging import MMLogger

    logger = MMLogger.get_current_instance()
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


@config_errors
def init_model(cfg: Config, checkpoint: Optional[str] = None, seed: int = 0) -> torch.nn.Module:
    """Build ``cfg.model`` (with the config's ``data_preprocessor``) in eval mode.

    Unlike ``mmpretrain.apis.get_model``, the checkpoint must match the model exactly (a mismatch raises one line
    naming the config, the checkpoint and the first keys that differ), and without a checkpoint the model is
    initialised under ``torch.manual_seed(seed)``: the randomly initialised network that evaluations compare
    against.

    Args:
        cfg (Config): a config with ``model`` (and optionally ``data_preprocessor``).
        checkpoint (str, optional): an MST checkpoint. None: the initialised, untrained network.
            One holding a NaN or Inf weight is refused (:class:`NonFiniteError`), one that does not fit the
            model too (:class:`CheckpointMismatchError`).
        seed (int): torch seed of the initialisation. Defaults to 0.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    from mmpretrain.registry import MODELS

    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    if cfg.get('data_preprocessor'):
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    if checkpoint is None:
        with quiet_mmengine_logger():
            model.init_weights()  # MST: the teacher starts as a copy of the initialised student
        return model.eval()
    _, state = checkpoint_state(checkpoint)
    mismatch = 'it holds no state dict of tensors' if state is None else state_dict_mismatch(model.state_dict(), state)
    if mismatch:
        raise CheckpointMismatchError(
            f'{checkpoint} does not fit the model of {cfg.filename or "the config"}: {mismatch}. '
            'Give the config the checkpoint was trained with (work_dirs/<config name>/ holds both)'
        )
    _load_checkpoint_to_model(model, state, strict=True)
    bad = first_non_finite(model.state_dict())
    if bad is not None:
        raise NonFiniteError(f'{checkpoint}: {bad} holds NaN or Inf; evaluate an earlier checkpoint')
    return model.eval()
