"""The work dir: one run at a time (an OS lock that no exit path leaves behind, a live run refused, a requeued job
let in), no run overwriting another's checkpoints unasked, checkpoints that reach the disk before their name."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from mmmst.runtime.work_dir_lock import WorkDirLockedError, lock_work_dir
from tests.helpers import PY, ROOT, SMALL_CFG, copy_run, last_line, run, run_main, small_train_options

#: a stand-in for a run holding a work dir: flock on <path>, the owner line written, then it sleeps
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, sys.argv[2].encode())
print('held', flush=True)
time.sleep(120)
"""


#: the lock module alone, by path, in a new interpreter (a second process: a flock is per open file, so this one's
#: own locks would not stop it)
LOCK_MODULE = os.path.join(ROOT, 'mmmst/runtime/work_dir_lock.py')
IMPORT_LOCK = (
    'import importlib.util, os, signal, sys\n'
    f'spec = importlib.util.spec_from_file_location("work_dir_lock", {LOCK_MODULE!r})\n'
    'module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n'
    'lock_work_dir, WorkDirLockedError = module.lock_work_dir, module.WorkDirLockedError'
)


def hold(path, owner_line):
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(path), owner_line], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'held'
    return holder


@pytest.fixture
def holders():
    started = []
    yield started
    for holder in started:
        holder.kill()
        holder.wait()


def test_a_live_run_is_refused_naming_its_pid_host_and_job(tmp_path, holders, monkeypatch):
    monkeypatch.setenv('SLURM_JOB_ID', '42')
    holders.append(hold(tmp_path / '.lock', f'{os.getpid() + 1} othernode 41\n'))
    with pytest.raises(WorkDirLockedError) as refused:
        lock_work_dir(str(tmp_path))
    assert str(refused.value) == (
        f'work dir {tmp_path} is in use by another run (pid {os.getpid() + 1} on othernode, slurm job 41); give '
        'another --work-dir, or wait for that run to end'
    )


def test_the_kernel_releases_the_lock_of_a_killed_run_on_any_host(tmp_path, holders, monkeypatch):
    """SIGKILL (a lost node, the OOM killer) leaves the file naming another host and a pid that may be reused (a new
    container): nobody holds its lock any more, so the next run takes it, whatever the file says."""
    monkeypatch.delenv('SLURM_JOB_ID', raising=False)
    holder = hold(tmp_path / '.lock', '1 othernode 7\n')
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock = lock_work_dir(str(tmp_path))
    assert lock.locked
    assert (tmp_path / '.lock').read_text() == f'{os.getpid()} {socket.gethostname()} -\n'
    lock.release()
    assert not (tmp_path / '.lock').exists()


def test_a_requeued_slurm_job_takes_over_its_own_lock_from_another_node(tmp_path, holders, monkeypatch, capsys):
    """A shared file system's server may keep a lost node's lock for a while: the same slurm job (requeued, one
    instance at a time) takes the work dir over; another job is refused."""
    holders.append(hold(tmp_path / '.lock', '11827 othernode 42\n'))
    monkeypatch.setenv('SLURM_JOB_ID', '43')
    with pytest.raises(WorkDirLockedError, match='pid 11827 on othernode, slurm job 42'):
        lock_work_dir(str(tmp_path))
    monkeypatch.setenv('SLURM_JOB_ID', '42')
    lock = lock_work_dir(str(tmp_path))
    assert 'taking over' in capsys.readouterr().out
    assert (tmp_path / '.lock').read_text() == f'{os.getpid()} {socket.gethostname()} 42\n'
    # the takeover holds a lock of its own: a third run is refused
    with pytest.raises(WorkDirLockedError):
        subprocess_lock(tmp_path)
    lock.release()


def subprocess_lock(work_dir):
    """Take the lock from another process, outside any slurm job (a flock held by this one would be shared)."""
    code = (
        f'{IMPORT_LOCK}\ntry:\n    lock_work_dir(sys.argv[1])\nexcept WorkDirLockedError as e:\n    sys.exit(str(e))\n'
    )
    env = {k: v for k, v in os.environ.items() if k != 'SLURM_JOB_ID'}
    done = subprocess.run([sys.executable, '-c', code, str(work_dir)], capture_output=True, text=True, env=env)
    if done.returncode:
        raise WorkDirLockedError(done.stderr.strip())


def test_train_refuses_a_work_dir_in_use_and_takes_it_once_its_run_is_killed(fashion_mnist, tmp_path, holders):
    """The command: a live run (a process holding the lock) refused in one line, nothing written; once that run is
    SIGKILLed the next run trains, and leaves no lock file at its end."""
    work = tmp_path / 'work'
    work.mkdir()
    holder = hold(work / '.lock', f'12345 {socket.gethostname()} -\n')
    holders.append(holder)
    busy = run([PY, 'tools/train.py', SMALL_CFG] + small_train_options(fashion_mnist, work))
    assert busy.returncode == 1
    assert last_line(busy) == (
        f'error: work dir {work} is in use by another run (pid 12345 on {socket.gethostname()}); give another '
        '--work-dir, or wait for that run to end'
    )
    assert not any(n.endswith('.pth') for n in os.listdir(work))
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    ok = run([PY, 'tools/train.py', SMALL_CFG] + small_train_options(fashion_mnist, work))
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert (work / 'epoch_1.pth').is_file() and not (work / '.lock').exists()


def test_no_exit_path_leaves_the_work_dir_locked(tmp_path):
    """os._exit (the end of every gloo run) and SIGKILL skip every clean-up: the next run still gets the lock."""
    for ending in ('os._exit(0)', 'os.kill(os.getpid(), signal.SIGKILL)'):
        code = f'{IMPORT_LOCK}\nlock_work_dir(sys.argv[1]); {ending}\n'
        subprocess.run([sys.executable, '-c', code, str(tmp_path)], check=ending.startswith('os._exit'))
        subprocess_lock(tmp_path)  # raises if the lock were still held


def test_a_fresh_run_over_another_runs_checkpoints_is_refused_or_started_over(fashion_mnist, one_epoch_run, tmp_path):
    """tools/train.py without --resume where a run left its checkpoints (say a second run with another seed): one
    line naming them and the three ways on, nothing touched; --start-over deletes the checkpoints (naming them) and
    keeps the logs and a user's file beside them."""
    work = copy_run(one_epoch_run, tmp_path / 'work')
    before = (work / 'epoch_1.pth').read_bytes()
    logs_before = sorted(p for p in os.listdir(work) if os.path.isdir(work / p))
    options = small_train_options(fashion_mnist, work) + ['randomness.seed=7']
    refused = run_main('tools/train.py', SMALL_CFG, *options)
    assert refused.returncode == 1
    assert last_line(refused) == (
        f'error: work dir {work} holds the checkpoints of an earlier run (epoch_1.pth, last_checkpoint); continue it '
        'with --resume, give another --work-dir, or pass --start-over to delete them and train from the start'
    )
    assert (work / 'epoch_1.pth').read_bytes() == before
    (work / 'best_friend.pth').write_bytes(before)  # a user's copy, under a name mmengine's save_best never gives
    again = run([PY, 'tools/train.py', SMALL_CFG, '--start-over'] + options)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"--start-over: deleted the earlier run's epoch_1.pth, last_checkpoint in {work}\n" in again.stdout
    assert (work / 'best_friend.pth').read_bytes() == before
    assert (work / 'epoch_1.pth').read_bytes() != before
    assert set(logs_before) < {p for p in os.listdir(work) if os.path.isdir(work / p)}  # logs kept, one more


def test_resume_finds_checkpoints_written_to_the_checkpoint_hooks_out_dir(fashion_mnist, tmp_path):
    """default_hooks.checkpoint.out_dir puts the checkpoints in <out_dir>/<work dir's name>; last_checkpoint in the
    work dir names them there, and --resume follows it (it is not a copied work dir)."""
    work, out_dir = tmp_path / 'work', tmp_path / 'storage'
    options = small_train_options(fashion_mnist, work) + [f'default_hooks.checkpoint.out_dir={out_dir}']
    first = run([PY, 'tools/train.py', SMALL_CFG] + options)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (work / 'last_checkpoint').read_text() == str(out_dir / 'work' / 'epoch_1.pth')
    second = run([PY, 'tools/train.py', SMALL_CFG, '--resume'] + options + ['train_cfg.max_epochs=2'])
    assert second.returncode == 0, second.stderr[-3000:]
    assert (out_dir / 'work' / 'epoch_2.pth').is_file()


@pytest.mark.parametrize(
    'env, first',
    [
        ({}, True),
        ({'RANK': '1'}, False),  # torchrun
        ({'SLURM_PROCID': '0'}, True),
        ({'OMPI_COMM_WORLD_RANK': '1'}, False),  # --launcher mpi with Open MPI: RANK is not set yet
        ({'PMI_RANK': '2'}, False),  # MPICH, Intel MPI
    ],
)
def test_only_the_first_process_takes_the_lock_under_every_launcher(monkeypatch, env, first):
    import importlib.util

    spec = importlib.util.spec_from_file_location('train_tool', os.path.join(ROOT, 'tools/train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tool.is_first_process() is first


def test_a_checkpoint_is_on_the_disk_before_its_name_and_before_anything_is_deleted(tmp_path, monkeypatch):
    """A power cut loses what is only in the page cache: the file's data is synced before the rename, and the
    folder (the new name) after it, before the caller goes on to rotate out an older checkpoint."""
    from mmmst.runtime.hooks import atomic_checkpoint_hook as hook

    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        os,
        'fsync',
        lambda fd: calls.append(('fsync', os.path.basename(os.readlink(f'/proc/self/fd/{fd}')))) or real_fsync(fd),
    )
    monkeypatch.setattr(
        os, 'replace', lambda a, b: calls.append(('replace', os.path.basename(b))) or real_replace(a, b)
    )
    (tmp_path / 'iter_5.pth.partial').write_bytes(b'checkpoint')
    hook._durable_replace(str(tmp_path / 'iter_5.pth.partial'), str(tmp_path / 'iter_5.pth'))
    assert calls == [('fsync', 'iter_5.pth.partial'), ('replace', 'iter_5.pth'), ('fsync', tmp_path.name)]
    assert (tmp_path / 'iter_5.pth').read_bytes() == b'checkpoint'


def test_without_os_locks_the_file_names_who_holds_the_work_dir(tmp_path, monkeypatch):
    """A file system without locks (Lustre without the flock option: flock fails with ENOLCK): the file's owner
    decides. A live process on this host, or a run of another job on another host, holds it; a gone process, or an
    earlier start of this very slurm job, does not."""
    import errno
    import fcntl

    from mmmst.runtime import work_dir_lock

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, 'No locks available')

    monkeypatch.setattr(work_dir_lock.fcntl, 'flock', no_locks)
    assert work_dir_lock.fcntl is fcntl
    monkeypatch.setenv('SLURM_JOB_ID', '42')
    host, lock_file = socket.gethostname(), tmp_path / '.lock'
    sleeper = subprocess.Popen(['sleep', '60'])
    gone = subprocess.Popen(['true'])
    gone.wait()  # a pid that no process here has
    try:
        for owner, held in [
            (f'{sleeper.pid} {host} -', True),  # alive here
            (f'{gone.pid} othernode 41', True),  # another job elsewhere: its pid says nothing here, so held
            (f'{gone.pid} othernode 42', False),  # this job's earlier start
        ]:
            lock_file.write_text(owner + '\n')
            if held:
                with pytest.raises(WorkDirLockedError, match='is in use by another run'):
                    lock_work_dir(str(tmp_path))
            else:
                lock = lock_work_dir(str(tmp_path))
                assert not lock.locked and lock_file.read_text() == f'{os.getpid()} {host} 42\n'
                lock.release()
    finally:
        sleeper.kill()
        sleeper.wait()
    lock_file.write_text(f'{sleeper.pid} {host} -\n')  # the process is gone
    lock_work_dir(str(tmp_path)).release()
