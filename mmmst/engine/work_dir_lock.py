"""One training run per work dir: a lock file naming its owner, so that a second run cannot overwrite the first's
checkpoints.

The lock is ``<work_dir>/.lock`` holding ``<pid> <host>``, created atomically (``O_CREAT | O_EXCL``) by the process
of rank 0 and removed when it exits. A lock whose process is gone (a killed run on this host) is stale and taken
over with a warning; a lock from another host cannot be checked, so it is refused with the file to remove.
"""

import atexit
import os
import os.path as osp
import socket


class WorkDirLockedError(RuntimeError):
    """Another run, alive or on another host, holds the work dir."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def lock_work_dir(work_dir: str) -> str:
    """Take ``work_dir``'s lock for this process until it exits; returns the lock file's path.

    Raises:
        WorkDirLockedError: a live run on this host, or a run on another host, holds it (the message names the
            work dir, the owner's pid and host, and the lock file).
    """
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, '.lock')
    host = socket.gethostname()
    for _ in range(2):  # the second try after removing a stale lock
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner_pid, owner_host = open(path).read().split()
                owner_pid = int(owner_pid)
            except (OSError, ValueError):  # unreadable or half written: nobody can own it
                owner_pid, owner_host = -1, host
            if owner_host == host and (owner_pid < 0 or not _alive(owner_pid)):
                print(f'warning: removing the stale lock {path} of a run that is gone (pid {owner_pid})')
                os.remove(path)
                continue
            raise WorkDirLockedError(
                f'work dir {work_dir} is in use by another run (pid {owner_pid} on {owner_host}); give another '
                f'--work-dir, or remove {path} if that run is gone'
            ) from None
        with os.fdopen(fd, 'w') as f:
            f.write(f'{os.getpid()} {host}\n')
        atexit.register(_unlock, path, os.getpid())
        return path
    raise WorkDirLockedError(f'work dir {work_dir}: could not take the lock {path}')


def _unlock(path: str, pid: int) -> None:
    if os.getpid() != pid:  # a forked child (dataloader worker) exiting
        return
    try:
        if open(path).read().split()[0] == str(pid):
            os.remove(path)
    except (OSError, IndexError):
        pass
