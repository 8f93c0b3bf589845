"""mmpretrain's ``CustomDataset`` over folders that hold symbolic links: a loop or a dangling link is skipped and
named instead of ending the run."""

import os
import os.path as osp
from typing import List, Optional, Tuple

from mmengine.logging import print_log
from mmpretrain.datasets import CustomDataset

from mmmst.registry import DATASETS


def walk_images(root: str, is_image) -> Tuple[List[str], List[str]]:
    """Image files under ``root`` (any depth, links followed once), sorted, relative to ``root``; and one line per
    link skipped: a directory link leading back to a folder already walked (a loop), a link to nothing.

    mmengine's folder listing (under ``CustomDataset``) follows a looping link until the operating system stops it
    (``OSError: Too many levels of symbolic links``), and drops a dangling link without a word.
    """
    files, skipped, seen = [], [], set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        seen.add(osp.realpath(folder))
        for name in list(dirs):
            path = osp.join(folder, name)
            if osp.islink(path) and _leads_back(path, seen):
                skipped.append(
                    f'{path}: a symbolic link back to {osp.realpath(path)}, which is walked already (a loop)'
                )
                dirs.remove(name)
        dirs.sort()
        for name in sorted(names):
            path = osp.join(folder, name)
            if osp.islink(path) and not osp.exists(path):
                skipped.append(f'{path}: a symbolic link to {os.readlink(path)!r}, which does not exist')
            elif not name.startswith('.') and is_image(name):
                files.append(osp.relpath(path, root))
    return sorted(files), skipped


def _leads_back(path: str, seen: set) -> bool:
    """A directory link whose target is a folder walked already or one of the folders above it."""
    target = osp.realpath(path)
    here = osp.realpath(osp.dirname(path))
    return target in seen or here == target or here.startswith(target + os.sep)


@DATASETS.register_module()
class ImageFolderDataset(CustomDataset):
    """``CustomDataset`` (same arguments) whose folder walk survives symbolic-link loops and names dangling links.

    Each skipped link is logged once, as a warning naming it and where it points. The images found are those
    ``CustomDataset`` finds in a folder without links, in the same order. ``tools/train.py`` and
    ``extract_features.py`` use it in place of ``CustomDataset`` for a folder that holds such a link.
    """

    def _find_samples(self):
        if not self.with_label:
            samples, skipped = walk_images(self.img_prefix, self.is_valid_file)
        else:
            classes = sorted(d for d in os.listdir(self.img_prefix) if osp.isdir(osp.join(self.img_prefix, d)))
            self.folder_to_idx = {name: i for i, name in enumerate(classes)}
            samples, skipped = [], []
            for name in classes:
                found, links = walk_images(osp.join(self.img_prefix, name), self.is_valid_file)
                samples += [(osp.join(name, f), self.folder_to_idx[name]) for f in found]
                skipped += links
            if self.CLASSES is None:
                self._metainfo['classes'] = tuple(classes)
        for line in skipped:
            print_log(f'skipped {line}', logger='current', level=30)
        if not samples:
            raise RuntimeError(
                f'Found 0 files in subfolders of: {self.data_prefix}. '
                f'Supported extensions are: {",".join(self.extensions)}'
            )
        return samples


def folder_links_skipped(root: str, extensions) -> Optional[List[str]]:
    """The links :class:`ImageFolderDataset` would skip in ``root`` (empty: none)."""
    suffixes = tuple(e.lower() for e in extensions)
    return walk_images(root, lambda name: name.lower().endswith(suffixes))[1]
