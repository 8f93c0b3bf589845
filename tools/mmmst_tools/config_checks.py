"""Checks that turn a bad command line or config into one clear message before a Runner is built."""

import difflib
import os
import os.path as osp
import sys
from typing import Dict, Iterable, List

from mmengine.config import Config


def cfg_option_warnings(cfg: Config, options: Dict[str, object]) -> List[str]:
    """Warnings for ``--cfg-options`` keys that add a new key which looks like a typo of an existing one.

    Every key may be set, as in mmengine (a new key is how ``randomness.deterministic=True`` or
    ``model_wrapper_cfg.find_unused_parameters=True`` are given); only a new key within a small edit distance of
    an existing one at the same level (``drop_path_rat`` for ``drop_path_rate``) is worth a warning.

    Returns:
        list[str]: one message per suspicious key, naming the likely intended key.
    """
    messages = []
    tree = cfg.to_dict() if isinstance(cfg, Config) else cfg
    for dotted in options or {}:
        node, walked = tree, []
        for part in dotted.split('.'):
            if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                close = difflib.get_close_matches(part, list(node) if isinstance(node, dict) else [], n=1, cutoff=0.8)
                if close:
                    intended = '.'.join(walked + close)
                    messages.append(f'--cfg-options {dotted!r} adds a new key; did you mean {intended!r}?')
                break
            walked.append(part)
    return messages


def _dataset_roots(dataset) -> Iterable[str]:
    if not isinstance(dataset, dict):
        return
    if 'datasets' in dataset:  # ConcatDataset and friends
        for sub in dataset['datasets']:
            yield from _dataset_roots(sub)
    elif 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset
        yield from _dataset_roots(dataset['dataset'])
    elif dataset.get('data_root'):
        yield dataset['data_root']


def check_data_roots(cfg: Config, loaders=('train_dataloader',)) -> None:
    """Every ``data_root`` the given dataloaders read must exist and hold at least one entry.

    Raises:
        FileNotFoundError: naming the dataloader and the missing or empty folder.
    """
    for name in loaders:
        loader = cfg.get(name)
        if not loader:
            continue
        for root in _dataset_roots(loader.get('dataset')):
            if not osp.isdir(root):
                raise FileNotFoundError(
                    f'{name}: data_root {root!r} does not exist. Put the data there or pass '
                    f'--cfg-options {name}.dataset.data_root=<path>'
                )
            if not any(True for _ in os.scandir(root)):
                raise FileNotFoundError(f'{name}: data_root {root!r} is empty')


def load_checked_config(path: str, cfg_options=None, loaders=('train_dataloader',)) -> Config:
    """``Config.fromfile`` + ``--cfg-options`` (mmengine's rules, with a warning for likely typos) + existence of
    the loaders' data roots.

    Raises:
        KeyError: a loader is missing from the config.
        FileNotFoundError: a data root is missing or empty.
    """
    cfg = Config.fromfile(path)
    for message in cfg_option_warnings(cfg, cfg_options):
        print(f'warning: {message}', file=sys.stderr)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    for name in loaders:
        if name not in cfg:
            raise KeyError(f'{path} has no {name}')
    check_data_roots(cfg, loaders=loaders)
    return cfg


def check_model_builds(cfg: Config) -> None:
    """Build ``cfg.model`` once, before a Runner prints hundreds of lines: a bad value fails in one message.

    Raises:
        ValueError / TypeError / KeyError: what the model's constructors raise (they name the value).
    """
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        MODELS.build(cfg.model)
