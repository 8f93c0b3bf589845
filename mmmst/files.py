"""What a path given to a command is, in the words of a refusal.

Every command reads its inputs and writes its outputs under one rule (docs/design.md, "What a command may delete
or overwrite"): it deletes or overwrites only files it wrote itself, and a refusal says what is actually wrong
with the path (a directory is a directory, an empty file is empty), not a generic "does not exist".
"""

import os
import os.path as osp


def unreadable_file(path: str) -> str:
    """Why ``path`` cannot be read as an input file, as the end of a sentence that starts with the path:
    ``'does not exist'``, ``'is a directory, not a file'``, ``'is empty (0 bytes)'``, ``'cannot be read
    (permission denied)'``, ``'is not a regular file'``; ``''`` for a readable file with content.

    >>> f"error: config {path!r} {unreadable_file(path)}"  # only when the answer is not ''
    """
    if osp.isdir(path):
        return 'is a directory, not a file'
    if osp.islink(path) and not osp.exists(path):
        return f'is a symbolic link to {os.readlink(path)!r}, which does not exist'
    if not osp.exists(path):
        return 'does not exist'
    if not osp.isfile(path):
        return 'is not a regular file'
    if not os.access(path, os.R_OK):
        return 'cannot be read (permission denied)'
    if osp.getsize(path) == 0:
        return 'is empty (0 bytes)'
    return ''
