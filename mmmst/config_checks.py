"""Checks that turn a bad command line or config into one clear message before a Runner is built."""

import os
import os.path as osp
from typing import Dict, Iterable

from mmengine.config import Config


def check_cfg_options(cfg: Config, options: Dict[str, object]) -> None:
    """Refuse ``--cfg-options`` keys that do not exist in the config (mmengine would add them silently).

    Raises:
        KeyError: naming the first unknown key and the keys that do exist at that level.
    """
    for dotted in options or {}:
        node = cfg.to_dict() if isinstance(cfg, Config) else cfg
        walked = []
        for part in dotted.split('.'):
            if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                here = '.'.join(walked) or '<top level>'
                known = sorted(node.keys()) if isinstance(node, dict) else f'a {type(node).__name__}'
                raise KeyError(
                    f'--cfg-options: config key {dotted!r} does not exist ({part!r} is not in {here}; there: {known})'
                )
            walked.append(part)


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
    """``Config.fromfile`` + ``--cfg-options`` (existing keys only) + existence of the loaders' data roots.

    Raises:
        KeyError: an option names a key the config does not have (or a loader is missing).
        FileNotFoundError: a data root is missing or empty.
    """
    cfg = Config.fromfile(path)
    check_cfg_options(cfg, cfg_options)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    for name in loaders:
        if name not in cfg:
            raise KeyError(f'{path} has no {name}')
    check_data_roots(cfg, loaders=loaders)
    return cfg
