"""An MST model from a config, with its checkpoint loaded strictly, or initialised (the untrained baseline)."""

from typing import Optional

import torch
from mmengine.config import Config

from mmmst.engine.non_finite import NonFiniteError, first_non_finite


def init_model(cfg: Config, checkpoint: Optional[str] = None, seed: int = 0) -> torch.nn.Module:
    """Build ``cfg.model`` (with the config's ``data_preprocessor``) in eval mode.

    Unlike ``mmpretrain.apis.get_model``, the checkpoint must match the model exactly (a mismatch raises and names
    the keys), and without a checkpoint the model is initialised under ``torch.manual_seed(seed)`` — the
    randomly initialised network that evaluations compare against.

    Args:
        cfg (Config): a config with ``model`` (and optionally ``data_preprocessor``).
        checkpoint (str, optional): an MST checkpoint. None: the initialised, untrained network.
            One holding a NaN or Inf weight is refused (:class:`NonFiniteError`).
        seed (int): torch seed of the initialisation. Defaults to 0.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS

    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    if cfg.get('data_preprocessor'):
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    if checkpoint is None:
        model.init_weights()  # MST: the teacher starts as a copy of the initialised student
    else:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
        bad = first_non_finite(model.state_dict())
        if bad is not None:
            raise NonFiniteError(f'{checkpoint}: {bad} holds NaN or Inf; evaluate an earlier checkpoint')
    return model.eval()
