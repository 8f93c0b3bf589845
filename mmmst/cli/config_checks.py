"""Checks that turn a bad command line or config into one clear message before a Runner is built."""

import difflib
import os
import os.path as osp
import sys
from typing import Dict, Iterable, List

from mmengine.config import Config, DictAction

from mmmst.datasets.fashion_mnist import IDX_FILES, read_idx_header
from mmmst.errors import config_errors


class CfgOptionsAction(DictAction):
    """mmengine's ``--cfg-options`` action, with one line naming an option that has no ``=``."""

    def __call__(self, parser, namespace, values, option_string=None):
        for value in values:
            if '=' not in value:
                parser.error(f'{option_string} takes key=value pairs; {value!r} has no "="')
        super().__call__(parser, namespace, values, option_string)


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
            elif isinstance(node, dict) and _takes_argument(node.get('type'), part):
                break  # an argument the component has and the config leaves at its default
            else:
                close = difflib.get_close_matches(part, list(node) if isinstance(node, dict) else [], n=1, cutoff=0.8)
                if close:
                    intended = '.'.join(walked + close)
                    messages.append(f'--cfg-options {dotted!r} adds a new key; did you mean {intended!r}?')
                break
            walked.append(part)
    return messages


def _takes_argument(component, name: str) -> bool:
    """Whether a registered component (``type`` of a config dict) has an ``__init__`` argument ``name``."""
    import inspect

    from mmpretrain import registry

    if not isinstance(component, str):
        return False
    for registry_name in ('HOOKS', 'MODELS', 'DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS', 'VISUALIZERS', 'LOOPS'):
        try:
            cls = getattr(registry, registry_name).get(component)
        except KeyError:  # a scope prefix mmengine does not know
            cls = None
        if isinstance(cls, type):
            for klass in cls.__mro__:
                if name in inspect.signature(klass.__init__).parameters:
                    return True
    return False


def _leaf_datasets(dataset) -> Iterable[dict]:
    """The dataset dicts a loader reads, through ConcatDataset / RepeatDataset-style wrappers."""
    if not isinstance(dataset, dict):
        return
    if 'datasets' in dataset:  # ConcatDataset and friends
        for sub in dataset['datasets']:
            yield from _leaf_datasets(sub)
    elif 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset
        yield from _leaf_datasets(dataset['dataset'])
    else:
        yield dataset


def check_idx_file(path: str) -> None:
    """An (un-gzipped) idx file holds exactly the bytes its header announces.

    Raises:
        ValueError: naming the file, its size and the size its header announces (a truncated copy).
    """
    import math

    size = osp.getsize(path)
    with open(path, 'rb') as f:
        item_size, dims = read_idx_header(f, path)
    ndim = len(dims)
    expected = 4 + 4 * ndim + item_size * math.prod(dims)
    if size != expected:
        raise ValueError(
            f'{path} is truncated or damaged: {size} bytes, its header announces {expected} (shape {dims}); '
            'copy it again (tools/dataset_converters/prepare_fashion_mnist.py)'
        )


def check_annotation_file(path: str) -> None:
    """Every line of an mmpretrain annotation file is ``<image path> <integer class index>``.

    Raises:
        ValueError: naming the file and the first bad line (its number and text), or an empty file.
    """
    count = 0
    with open(path) as f:
        for number, line in enumerate(f, 1):
            text = line.rstrip('\n\r')
            parts = text.rsplit(' ', 1)
            if len(parts) != 2 or not parts[0] or not parts[1].lstrip('-').isdigit():
                raise ValueError(f'{path}, line {number}: {text!r} is not "<image path> <integer class index>"')
            count += 1
    if count == 0:
        raise ValueError(f'{path} is empty: it must list "<image path> <integer class index>" lines')


def _check_dataset_files(loader: str, dataset: dict) -> None:
    """The files a dataset will read exist and are whole, before a Runner is built (ImageNet-style folders with
    their annotation files, Fashion-MNIST's idx files)."""
    root = dataset.get('data_root') or ''
    kind = dataset.get('type', '')
    if kind in ('MNIST', 'FashionMNIST'):
        split = 'test' if dataset.get('split') == 'test' or dataset.get('test_mode') else 'train'
        for name in IDX_FILES[split]:
            path = osp.join(root, name)
            if not osp.isfile(path):
                raise FileNotFoundError(f"{loader}: {path!r} does not exist (Fashion-MNIST's un-gzipped idx files)")
            check_idx_file(path)
    elif kind in ('ImageNet', 'CustomDataset'):
        split = dataset.get('split', '')
        prefix = dataset.get('data_prefix') or split
        prefix = prefix.get('img_path', '') if isinstance(prefix, dict) else prefix
        folder = osp.join(root, prefix)
        if prefix and not osp.isdir(folder):
            raise FileNotFoundError(
                f'{loader}: {folder!r} does not exist: data_root {root!r} has no {prefix!r} folder (the layout is '
                f'{osp.join(root, prefix or "train", "<class>", "<image>")} with meta/<split>.txt)'
            )
        ann_file = dataset.get('ann_file') or ''
        if not ann_file and split and osp.isfile(osp.join(root, 'meta', f'{split}.txt')):
            ann_file = osp.join('meta', f'{split}.txt')  # what mmpretrain's ImageNet reads then
        if ann_file:
            path = ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)
            if not osp.isfile(path):
                raise FileNotFoundError(f'{loader}: annotation file {path!r} does not exist')
            if split != 'test' and dataset.get('with_label', True):
                check_annotation_file(path)
        elif kind == 'CustomDataset' and not dataset.get('with_label', True):
            extensions = dataset.get('extensions') or CUSTOM_EXTENSIONS
            check_folder_has_images(loader, folder, extensions)
            from mmmst.datasets.image_folder import folder_links_skipped

            skipped = folder_links_skipped(folder, extensions)
            if skipped:  # mmengine's walk would loop on a link or drop it silently
                dataset['type'] = 'ImageFolderDataset'
                for line in skipped:
                    print(f'warning: {loader}: skipping {line}', file=sys.stderr)


#: mmpretrain's CustomDataset extensions, when a config gives none
CUSTOM_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif')


@config_errors
def check_folder_has_images(loader: str, folder: str, extensions) -> None:
    """An unlabeled image folder (any depth) holds at least one file with one of ``extensions``; the walk stops at
    the first one, so a large folder costs nothing."""
    suffixes = tuple(e.lower() for e in extensions)
    for _, _, files in os.walk(folder, followlinks=True):
        if any(f.lower().endswith(suffixes) for f in files):
            return
    raise FileNotFoundError(
        f'{loader}: no image in {folder!r} or its sub-folders (extensions searched: {", ".join(suffixes)})'
    )


@config_errors
def check_data_roots(cfg: Config, loaders=('train_dataloader',)) -> None:
    """Every ``data_root`` the given dataloaders read must exist and hold at least one entry, and the files its
    dataset reads must be there and whole.

    Raises:
        FileNotFoundError: naming the dataloader and the missing or empty folder or file.
        ValueError: naming a damaged file (a truncated idx file, an annotation line without an integer label).
    """
    for name in loaders:
        loader = cfg.get(name)
        if not loader:
            continue
        for dataset in _leaf_datasets(loader.get('dataset')):
            root = dataset.get('data_root')
            if not root:
                continue
            if osp.isfile(root):
                raise FileNotFoundError(f'{name}: data_root {root!r} is a file; it must be a folder')
            if not osp.isdir(root):
                raise FileNotFoundError(
                    f'{name}: data_root {root!r} does not exist. Put the data there or pass '
                    f'--cfg-options {name}.dataset.data_root=<path>'
                )
            if not any(True for _ in os.scandir(root)):
                raise FileNotFoundError(f'{name}: data_root {root!r} is empty')
            _check_dataset_files(name, dataset)


@config_errors
def load_checked_config(path: str, cfg_options=None, loaders=('train_dataloader',)) -> Config:
    """``Config.fromfile`` + ``--cfg-options`` (mmengine's rules, with a warning for likely typos) + existence of
    the loaders' data roots.

    Raises:
        KeyError: a loader is missing from the config.
        FileNotFoundError: a data root is missing or empty.
    """
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        # mmengine re-raises Python's SyntaxError without its position; the original is the context
        inner = err.__context__ if isinstance(err.__context__, SyntaxError) else err
        raise ValueError(f'{path}, line {inner.lineno}: syntax error: {inner.msg}') from None
    except ModuleNotFoundError as err:  # a `_base_` in another codebase (mmdet::, mmseg::) that is not installed
        package = str(err).split(' is not installed')[0]
        if ' is not installed' not in str(err):
            raise
        raise ValueError(
            f'{path} builds on {package}, which is not installed (the core tier of `make demo` has no mmdet or '
            'mmseg); install the full tier with `make setup` (bash tools/setup_env.sh full)'
        ) from None
    for message in cfg_option_warnings(cfg, cfg_options):
        print(f'warning: {message}', file=sys.stderr)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    for name, loader in cfg.items():
        # num_workers=0 (the usual CPU debugging setting) with the configs' persistent_workers=True: torch refuses
        if name.endswith('dataloader') and isinstance(loader, dict) and loader.get('persistent_workers'):
            if loader.get('num_workers', 0) == 0:
                loader['persistent_workers'] = False
                print(f'note: {name}.persistent_workers set to False: there are no workers to keep (num_workers=0)')
    for name in loaders:
        if name not in cfg:
            raise KeyError(f'{path} has no {name}')
        batch_size = cfg[name].get('batch_size', 1)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'{name}.batch_size must be an int >= 1, got {batch_size!r}')
    lr = ((cfg.get('optim_wrapper') or {}).get('optimizer') or {}).get('lr')
    if lr is not None and (not isinstance(lr, (int, float)) or lr < 0):
        raise ValueError(f'optim_wrapper.optimizer.lr must be a number >= 0, got {lr!r}')
    check_data_roots(cfg, loaders=loaders)
    return cfg


@config_errors
def check_model_builds(cfg: Config):
    """Build ``cfg.model`` once, before a Runner prints hundreds of lines: a bad value fails in one message.
    Returns the model (its state dict is what a checkpoint to resume must match).

    Raises:
        ValueError / TypeError / KeyError: what the model's constructors raise (they name the value).
    """
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        return MODELS.build(cfg.model)


@config_errors
def check_hooks_build(cfg: Config) -> None:
    """Build every default and custom hook once: an option that would fail at the first save or evaluation (a
    misspelt checkpoint option, ``k=0``) fails now, in one message, instead of after an epoch.

    Raises:
        ValueError / TypeError / KeyError: what the hooks' constructors raise (they name the option).
    """
    import copy

    from mmengine.registry import HOOKS, LOOPS, DefaultScope
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
    from mmengine.visualization import Visualizer

    default_hooks = cfg.get('default_hooks') or {}
    for name, hook in default_hooks.items():
        if hook and 'type' not in hook:  # a misspelt name: mmengine's message would not name it
            close = difflib.get_close_matches(name, [n for n, h in default_hooks.items() if h and 'type' in h], n=1)
            hint = f'; did you mean default_hooks.{close[0]}?' if close else ''
            raise ValueError(f'default_hooks.{name} is not a hook (no "type"; it holds {dict(hook)}){hint}')
    hooks = [h for h in default_hooks.values() if h] + list(cfg.get('custom_hooks') or [])
    # VisualizationHook asks for the current visualizer when built; the Runner's own replaces this one
    Visualizer.get_instance('mmmst_config_check')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        train_cfg = cfg.get('train_cfg') or {}
        if 'type' in train_cfg:
            loop_type = LOOPS.get(train_cfg['type']) if isinstance(train_cfg['type'], str) else train_cfg['type']
        else:  # mmengine's by_epoch shorthand
            loop_type = EpochBasedTrainLoop if train_cfg.get('by_epoch', True) else IterBasedTrainLoop
        for hook in hooks:
            built = HOOKS.build(copy.deepcopy(hook))
            if hasattr(built, 'check_loop') and isinstance(loop_type, type):
                built.check_loop(loop_type)  # iteration checkpoints need a loop that resumes inside an epoch


def config_differences(ours: dict, theirs: dict, prefix: str = '') -> List[str]:
    """``key: theirs -> ours`` for every leaf where two (nested) config dicts differ, in key order."""
    out = []
    for key in sorted(set(ours) | set(theirs), key=str):
        a, b = ours.get(key, '<unset>'), theirs.get(key, '<unset>')
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f'{prefix}{key}.')
        elif a != b:
            out.append(f'{prefix}{key}: {b!r} -> {a!r}')
    return out


@config_errors
def check_checkpoint_fits(cfg: Config, model, checkpoint: str, usage: str, remedy: str) -> None:
    """A checkpoint to resume, to start from (``load_from``) or to evaluate must fit the model exactly: mmengine
    would load what fits and leave the rest initialised (the prototypes and centre after a width change, a linear
    probe's head) with a log line only, and train or evaluate on.

    Args:
        usage (str): how the checkpoint was given (``--resume``, ``load_from``, ``tools/test.py``), for the message.
        remedy (str): what to do instead, the message's last sentence.

    Raises:
        ValueError: naming the checkpoint, the first keys that differ and the model settings that changed since
            it was written (from the config saved in its ``meta``).
    """
    from mmmst.apis.model import checkpoint_state, state_dict_mismatch

    loaded, state = checkpoint_state(checkpoint)
    if state is None:
        raise ValueError(f'{usage}: {checkpoint} is not an mmengine checkpoint (no state_dict of tensors)')
    if usage == '--resume' and not (isinstance(loaded, dict) and {'state_dict', 'meta', 'optimizer'} <= set(loaded)):
        raise ValueError(
            f'--resume: {checkpoint} is not a training checkpoint (it has no optimizer and loop state to continue); '
            f'start from its weights with --cfg-options load_from={checkpoint} instead'
        )
    mismatch = state_dict_mismatch(model.state_dict(), state)
    if mismatch is None:
        return
    changed = ''
    saved_cfg = (loaded.get('meta') or {}).get('cfg')
    if saved_cfg:
        try:
            theirs = Config.fromstring(saved_cfg, '.py').to_dict().get('model', {})
            differences = config_differences(cfg.to_dict().get('model', {}), theirs)
            if differences:
                shown = '; '.join(f'model.{d}' for d in differences[:3])
                changed = f'; the model settings changed since it was written: {shown}'
        except Exception:  # an unparsable saved config only loses the hint
            pass
    raise ValueError(f"{usage}: {checkpoint} does not fit this config's model: {mismatch}{changed}. {remedy}")
