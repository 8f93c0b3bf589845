"""One training run per work dir: an OS lock on ``<work_dir>/.lock``, held by rank 0 for as long as it lives.

The lock is ``flock(LOCK_EX)`` on the open file, so the kernel drops it whatever way the process ends: a normal exit,
``os._exit``, SIGKILL, the OOM killer. Nothing can leave a stale lock behind on a local file system; the file only
says who holds it (``<pid> <host> <slurm job id or ->``), for the message a second run gets. A lock held on another
node of a shared file system whose owner is the same slurm job (a requeued job restarted elsewhere, while the file
server still keeps the lost node's lock) is taken over: slurm runs one instance of a job at a time.

On a file system without locks (Lustre mounted without ``flock``, some FUSE mounts) the file still names the owner,
and a lock whose owner is alive on this host, or belongs to another job on another host, is refused.
"""

import atexit
import errno
import fcntl
import os
import os.path as osp
import socket

from mmmst.errors import MSTError


class WorkDirLockedError(MSTError, RuntimeError):
    """Another run, alive here or elsewhere, holds the work dir."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _job() -> str:
    return os.environ.get('SLURM_JOB_ID') or '-'


class WorkDirLock:
    """The held lock of a work dir; :meth:`release` (or the end of the process) gives it up."""

    def __init__(self, path: str, fd: int, locked: bool) -> None:
        self.path, self._fd, self.locked, self._pid = path, fd, locked, os.getpid()
        atexit.register(self.release)  # a normal exit; any other end drops the OS lock anyway

    def release(self) -> None:
        """Remove the file, then drop the lock (a run waiting for the file then finds none, or an unlocked one)."""
        if self._fd is None or os.getpid() != self._pid:  # (a forked child's exit releases nothing)
            return
        try:
            if _same_file(self._fd, self.path):
                os.remove(self.path)
        except OSError:
            pass
        os.close(self._fd)  # closing the last descriptor drops the flock
        self._fd = None


def _same_file(fd: int, path: str) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _owner(fd: int):
    """(pid, host, job) written in the lock file, or None when it is empty or garbled."""
    os.lseek(fd, 0, os.SEEK_SET)
    fields = os.read(fd, 512).decode(errors='replace').split()
    if len(fields) < 2 or not fields[0].isdigit():
        return None
    return int(fields[0]), fields[1], fields[2] if len(fields) > 2 else '-'


def lock_work_dir(work_dir: str) -> WorkDirLock:
    """Take ``work_dir``'s lock for this process (until :meth:`WorkDirLock.release` or the process ends).

    Raises:
        WorkDirLockedError: a live run holds it (the message names the work dir, the owner's pid, host and slurm
            job, and the lock file).
    """
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, '.lock')
    host, job = socket.gethostname(), _job()
    for _ in range(5):  # another try when the file was replaced between our open and our lock
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        locked = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(fd)
            os.close(fd)
            if owner is not None and job != '-' and owner[2] == job:
                # our own slurm job, requeued onto another node; the file server still holds the lost node's lock
                print(
                    f'warning: taking over {path} from an earlier start of slurm job {job} (pid {owner[0]} on '
                    f'{owner[1]})'
                )
                _remove(path)
                continue
            raise _in_use(work_dir, path, owner) from None
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                os.close(fd)
                raise
            locked = False  # no locks on this file system: the file's content decides
            owner = _owner(fd)
            if owner is not None and owner[0] != os.getpid() and _holds(owner, host, job):
                os.close(fd)
                raise _in_use(work_dir, path, owner) from None
        if locked and not _same_file(fd, path):  # the previous owner removed the file as we opened it
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f'{os.getpid()} {host} {job}\n'.encode())
        return WorkDirLock(path, fd, locked)
    raise WorkDirLockedError(f'work dir {work_dir}: could not take the lock {path}')


def _holds(owner, host: str, job: str) -> bool:
    """Without OS locks: whether the run named in the file may still hold the work dir."""
    pid, owner_host, owner_job = owner
    if owner_job != '-' and owner_job == job:
        return False  # an earlier start of this very slurm job
    return _alive(pid) if owner_host == host else True


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _in_use(work_dir: str, path: str, owner) -> WorkDirLockedError:
    who = (
        'unknown'
        if owner is None
        else f'pid {owner[0]} on {owner[1]}' + (f', slurm job {owner[2]}' if owner[2] != '-' else '')
    )
    return WorkDirLockedError(
        f'work dir {work_dir} is in use by another run ({who}); give another --work-dir, or wait for that run to end'
    )
