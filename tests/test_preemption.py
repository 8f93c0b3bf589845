"""Stop at any iteration (SIGKILL, SIGTERM, SIGUSR1) and resume to the same tensors; slurm's requeue mode.

Every run is the 4-layer Fashion-MNIST config on 8 images, batch 2, 3 epochs: 4 iterations an epoch on one
process (2 on two), an iteration checkpoint every 2 iterations. A run stopped in epoch 2 and resumed with
``--resume`` must end with the very state dict of the run that was never stopped.
"""

import os
import os.path as osp
import random
import shutil
import signal
import stat
import subprocess
import time

import pytest
import torch

from tests.helpers import PY, ROOT, SMALL_CFG, copy_run, run, small_train_options

HOOKS = '''
"""Test hooks: SIGKILL after an iteration, a signal during one, a SIGKILL in the middle of a checkpoint write."""
import os
import signal
import time

from mmengine.dist import barrier, get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAtIter(Hook):
    priority = 'LOWEST'  # after the checkpoint hook

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if os.environ.get('KILL_AT_ITER') == str(runner.iter + 1):
            barrier()  # with several processes: rank 0 has written its checkpoint before any process dies
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class SignalAtIter(Hook):
    """Sends SIGNAL (SIGTERM by default) to this process, on rank SIGNAL_RANK only, as iteration SIGNAL_AT_ITER
    begins."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if os.environ.get('SIGNAL_AT_ITER') == str(runner.iter + 1) and os.environ.get('SIGNAL_RANK', '0') == str(
            get_rank()
        ):
            os.kill(os.getpid(), getattr(signal, os.environ.get('SIGNAL', 'SIGTERM')))


@HOOKS.register_module()
class AwaitSignalAtIter(Hook):
    """As iteration AWAIT_SIGNAL_AT_ITER begins, rank 0 writes READY_FILE and waits until the stop signal sent from
    outside has reached it: the run then stops after that very iteration."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if os.environ.get('AWAIT_SIGNAL_AT_ITER') != str(runner.iter + 1) or get_rank() != 0:
            return
        stop = next(hook for hook in runner.hooks if type(hook).__name__ == 'AtomicCheckpointHook')._stop
        open(os.environ['READY_FILE'], 'w').close()
        deadline = time.monotonic() + 120
        while stop.signal_name is None and time.monotonic() < deadline:
            time.sleep(0.05)


@HOOKS.register_module()
class SignalAtStart(Hook):
    """SIGTERM to this process while the run starts (before_run: the model is built, nothing trained)."""

    def before_run(self, runner):
        if os.environ.get('SIGNAL_AT_START'):
            os.kill(os.getpid(), signal.SIGTERM)


@HOOKS.register_module()
class SlowSave(Hook):
    """Rank 0 takes SLOW_SAVE seconds longer to write each checkpoint."""

    def before_save_checkpoint(self, runner, checkpoint):
        time.sleep(float(os.environ.get('SLOW_SAVE', 0)))


class TestDirBackend:
    """mmengine storage backend for 'testdir://<absolute path>': files on the local disk, but not a LocalBackend
    (the stand-in for s3:// or petrel://: written in place through put, no rename)."""

    name = 'testdir'

    @staticmethod
    def _local(path):
        return path[len('testdir://'):]

    def put(self, obj, filepath):
        os.makedirs(os.path.dirname(self._local(filepath)), exist_ok=True)
        with open(self._local(filepath), 'wb') as f:
            f.write(obj)

    def put_text(self, obj, filepath, encoding='utf-8'):
        self.put(obj.encode(encoding), filepath)

    def get(self, filepath):
        with open(self._local(filepath), 'rb') as f:
            return f.read()

    def get_text(self, filepath, encoding='utf-8'):
        return self.get(filepath).decode(encoding)

    def exists(self, filepath):
        return os.path.exists(self._local(filepath))

    def isfile(self, filepath):
        return os.path.isfile(self._local(filepath))

    def isdir(self, filepath):
        return os.path.isdir(self._local(filepath))

    def remove(self, filepath):
        os.remove(self._local(filepath))

    def join_path(self, filepath, *parts):
        return '/'.join([filepath.rstrip('/'), *parts])


from mmengine.fileio import BaseStorageBackend, FileClient, register_backend  # noqa: E402

TestDir = type('TestDir', (TestDirBackend, BaseStorageBackend), {})
register_backend('testdir', TestDir, prefixes='testdir')
FileClient.register_backend('testdir', TestDir, prefixes='testdir')  # (mmengine's hook still asks the old registry)


if os.environ.get('SIGNAL_DURING_KNN'):
    # SIGTERM once the k-NN monitor has encoded its bank, before the queries
    from mmmst.engine.hooks import knn_monitor_hook

    encode = knn_monitor_hook.loader_features

    def encode_then_signal(*args, **kwargs):
        features = encode(*args, **kwargs)
        if not getattr(encode_then_signal, 'sent', False):
            encode_then_signal.sent = True
            os.kill(os.getpid(), signal.SIGTERM)
        return features

    knn_monitor_hook.loader_features = encode_then_signal


if os.environ.get('EXIT_WITHOUT_BARRIER'):
    # the exit as on a GPU backend: no barrier at the end (the gloo path's waits for every process)
    from mmmst.runtime import cpu_dist

    def leave_at_once(exit_code=0, before_exit=None):
        if before_exit is not None:
            before_exit()
        os._exit(exit_code)

    cpu_dist.close_cpu_process_group = leave_at_once


@HOOKS.register_module()
class KillDuringSave(Hook):
    def before_save_checkpoint(self, runner, checkpoint):
        last = runner.message_hub.get_info('last_ckpt')
        if os.environ.get('KILL_AT_SAVE') == os.path.basename(last):
            with open(last + '.partial', 'wb') as f:
                f.write(b'PK\\x03\\x04' + os.urandom(1000))  # the first bytes of a zip, then the kill
            os.kill(os.getpid(), signal.SIGKILL)
'''

#: (processes, dataloader workers, persistent workers)
ONE_NO_WORKERS, ONE_TWO_WORKERS, ONE_TWO_FRESH_WORKERS = (1, 0, False), (1, 2, True), (1, 2, False)
TWO_NO_WORKERS, TWO_TWO_WORKERS = (2, 0, False), (2, 2, True)


def seeded_rng(name):
    """A random generator for a test's random choice, with its seed in the test's output (MMMST_TEST_SEED replays
    a failure)."""
    seed = int(os.environ.get('MMMST_TEST_SEED', random.randrange(2**31)))
    print(f'{name}: MMMST_TEST_SEED={seed}')
    return random.Random(seed), seed


@pytest.fixture(scope='module')
def preemptible(tmp_path_factory):
    """(config path, env): the small config with the test hooks and an iteration checkpoint every 2 iterations."""
    root = tmp_path_factory.mktemp('preemptible')
    (root / 'preempt_hooks.py').write_text(HOOKS)
    config = root / 'preemptible.py'
    config.write_text(
        f'_base_ = {SMALL_CFG!r}\n'
        "custom_imports = dict(imports=['mmmst', 'preempt_hooks'], allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='TeacherTempHook'), dict(type='FreezeLastLayerHook', freeze_epochs=1),\n"
        "                dict(type='KillAtIter'), dict(type='SignalAtIter'), dict(type='KillDuringSave'),\n"
        "                dict(type='AwaitSignalAtIter'), dict(type='SignalAtStart'), dict(type='SlowSave')]\n"
        'default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3, iter_interval=2))\n'
    )
    return str(config), dict(PYTHONPATH=os.pathsep.join([ROOT, str(root)]))


def train_command(preemptible, data_root, work_dir, setup, *extra, env=None, port=None):
    """(command, environment) of tools/train.py (1 process) or tools/dist_train.sh (2) on the preemptible config."""
    config, base_env = preemptible
    processes, workers, persistent = setup
    options = small_train_options(data_root, work_dir, epochs=3)
    options[options.index('train_dataloader.num_workers=0')] = f'train_dataloader.num_workers={workers}'
    options[options.index('train_dataloader.persistent_workers=False')] = (
        f'train_dataloader.persistent_workers={persistent}'
    )
    options += list(extra)
    full_env = dict(base_env, **(env or {}))
    if processes == 1:
        return [PY, 'tools/train.py', config] + options, full_env
    return ['bash', 'tools/dist_train.sh', config, str(processes)] + options, dict(full_env, PORT=port)


def train(preemptible, data_root, work_dir, setup, *extra, env=None, port=None):
    """The finished process of :func:`train_command`."""
    command, env = train_command(preemptible, data_root, work_dir, setup, *extra, env=env, port=port)
    return run(command, extra_env=env, input='')


@pytest.fixture(scope='module')
def straight(preemptible, fashion_mnist, tmp_path_factory):
    """The final state dict of the uninterrupted run of a setup (run once per setup and module)."""
    done = {}

    def final_state(setup, port=None):
        if setup not in done:
            work = tmp_path_factory.mktemp('straight')
            result = train(preemptible, fashion_mnist, work, setup, port=port)
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
            done[setup] = torch.load(work / 'epoch_3.pth', weights_only=False)['state_dict']
        return done[setup]

    return final_state


def assert_same_state(expected, work_dir, context):
    state = torch.load(osp.join(work_dir, 'epoch_3.pth'), weights_only=False)['state_dict']
    assert state.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(state[name], expected[name], rtol=0, atol=0, msg=f'{context}: {name}')


def logs(result) -> str:
    return result.stdout + result.stderr


@pytest.mark.parametrize('setup', [ONE_NO_WORKERS, ONE_TWO_WORKERS], ids=['0-workers', '2-persistent-workers'])
def test_sigkill_in_epoch_two_then_resume_ends_as_the_straight_run(
    preemptible, fashion_mnist, straight, tmp_path, setup
):
    """SIGKILL after a random iteration of epoch 2 (iterations 5-8); --resume takes the last checkpoint (epoch_1.pth
    or iter_6.pth), redoes the 0-2 iterations lost, and the run ends with the uninterrupted run's weights."""
    rng, seed = seeded_rng('kill point')
    kill_at = rng.randint(5, 8)
    work = tmp_path / 'work'
    killed = train(preemptible, fashion_mnist, work, setup, env=dict(KILL_AT_ITER=str(kill_at)))
    assert killed.returncode == -signal.SIGKILL, logs(killed)[-3000:]
    last = open(work / 'last_checkpoint').read()
    # iter_6.pth is the only iteration checkpoint of epoch 2: iteration 8's is epoch_2.pth, written after the epoch
    expected_last = 'epoch_1.pth' if kill_at == 5 else 'iter_6.pth'
    assert last == str(work / expected_last), (kill_at, last, f'MMMST_TEST_SEED={seed}')

    resumed = train(preemptible, fashion_mnist, work, setup, '--resume')
    assert resumed.returncode == 0, logs(resumed)[-3000:]
    if kill_at > 5:
        assert 'continuing epoch 2 after its first 2 batch(es)' in logs(resumed)
    assert_same_state(straight(setup), work, f'killed after iteration {kill_at}')


@pytest.fixture(scope='module')
def stopped_by_sigterm(preemptible, fashion_mnist, tmp_path_factory):
    """(work dir, finished process) of the run sent SIGTERM during iteration 5 (2 persistent workers); the tests
    that continue it resume a copy (``helpers.copy_run``)."""
    work = tmp_path_factory.mktemp('stopped_by_sigterm')
    return work, train(preemptible, fashion_mnist, work, ONE_TWO_WORKERS, env=dict(SIGNAL_AT_ITER='5'))


def test_sigterm_saves_after_the_iteration_exits_75_and_resumes_exactly(
    preemptible, fashion_mnist, straight, stopped_by_sigterm, tmp_path
):
    """SIGTERM during iteration 5 (the first of epoch 2; no checkpoint is due): iter_5.pth is written at the end of
    that iteration, one line names it, the exit code is 75, and the resumed run (whose 2 persistent workers now
    start at the second batch of an epoch) ends as the straight run."""
    work, stopped = stopped_by_sigterm
    assert stopped.returncode == 75, logs(stopped)[-3000:]
    assert open(work / 'last_checkpoint').read() == str(work / 'iter_5.pth')
    assert (
        f'SIGTERM: stopped after iteration 5 (epoch 2, batch 1 of 4) and saved {work / "iter_5.pth"}; continue '
        'with --resume' in logs(stopped)
    )
    assert not (work / 'iter_6.pth').exists()  # it stopped after the signalled iteration, not later
    position = torch.load(work / 'iter_5.pth', weights_only=False)['data_position']
    assert (position['epoch'], position['consumed_batches'], position['batch_size']) == (1, 1, 2)

    copy = copy_run(work, tmp_path / 'work')
    resumed = train(preemptible, fashion_mnist, copy, ONE_TWO_WORKERS, '--resume')
    assert resumed.returncode == 0, logs(resumed)[-3000:]
    assert 'continuing epoch 2 after its first 1 batch(es)' in logs(resumed)
    assert_same_state(straight(ONE_TWO_WORKERS), copy, 'SIGTERM at iteration 5')


@pytest.mark.parametrize(
    'when, setup, stopped_after',
    [
        ('SIGNAL_AT_START', ONE_NO_WORKERS, 1),  # while the run starts: after its first iteration
        ('SIGNAL_AT_ITER=4', ONE_NO_WORKERS, 4),  # the last iteration of epoch 1: before its epoch checkpoint
        ('SIGNAL_AT_ITER=6', ONE_TWO_FRESH_WORKERS, 6),  # fresh (non-persistent) workers, in the middle of epoch 2
    ],
    ids=['at-start', 'last-iteration-of-an-epoch', 'non-persistent-workers'],
)
def test_a_signal_at_any_point_saves_one_checkpoint_and_resumes_exactly(
    preemptible, fashion_mnist, straight, tmp_path, when, setup, stopped_after
):
    """SIGTERM before the first iteration, in the last iteration of an epoch (iter_4.pth instead of epoch_1.pth: the
    resumed run finishes epoch 1 with no batch left, then writes epoch_1.pth), or inside an epoch whose workers are
    started afresh (the resumed epoch's workers start at batch 2): the run stops after that iteration with exit 75,
    and the resumed run ends as the straight run."""
    name, _, value = when.partition('=')
    work = tmp_path / 'work'
    stopped = train(preemptible, fashion_mnist, work, setup, env={name: value or '1'})
    assert stopped.returncode == 75, logs(stopped)[-3000:]
    assert open(work / 'last_checkpoint').read() == str(work / f'iter_{stopped_after}.pth')
    assert f'SIGTERM: stopped after iteration {stopped_after} ' in logs(stopped)
    resumed = train(preemptible, fashion_mnist, work, setup, '--resume')
    assert resumed.returncode == 0, logs(resumed)[-3000:]
    assert_same_state(straight(setup), work, f'SIGTERM ({when})')


def test_a_signal_during_the_knn_monitor_stops_after_the_next_iteration(preemptible, fashion_mnist, tmp_path):
    """SIGTERM while the k-NN monitor encodes its images at the end of epoch 1 (its loaders with 2 workers each):
    the evaluation completes, epoch_1.pth is written, the run stops after iteration 5 and the resumed run ends as
    the straight run with the same monitor."""
    config, env = preemptible
    knn_config = tmp_path / 'knn.py'
    loader = (
        "dict(batch_size=8, num_workers=2, sampler=dict(type='DefaultSampler', shuffle=False), "
        f"collate_fn=dict(type='default_collate'), dataset=dict(type='FashionMNIST', data_root={fashion_mnist!r}, "
        "download=False, indices=16, pipeline=[dict(type='PackInputs')]))"
    )
    knn_config.write_text(
        f'_base_ = {config!r}\n'
        f'custom_hooks = _base_.custom_hooks + [dict(type="KNNMonitorHook", bank_dataloader={loader}, '
        f'query_dataloader={loader}, num_classes=10)]\n'
    )
    preemptible_knn = (str(knn_config), env)
    straight_work, work = tmp_path / 'straight', tmp_path / 'work'
    uninterrupted = train(preemptible_knn, fashion_mnist, straight_work, ONE_NO_WORKERS)
    assert uninterrupted.returncode == 0, logs(uninterrupted)[-3000:]
    stopped = train(preemptible_knn, fashion_mnist, work, ONE_NO_WORKERS, env=dict(SIGNAL_DURING_KNN='1'))
    assert stopped.returncode == 75, logs(stopped)[-3000:]
    assert 'k-NN top-1' in logs(stopped) and 'SIGTERM: stopped after iteration 5 ' in logs(stopped)
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == ['epoch_1.pth', 'iter_2.pth', 'iter_5.pth']
    resumed = train(preemptible_knn, fashion_mnist, work, ONE_NO_WORKERS, '--resume')
    assert resumed.returncode == 0, logs(resumed)[-3000:]
    expected = torch.load(straight_work / 'epoch_3.pth', weights_only=False)['state_dict']
    assert_same_state(expected, work, 'SIGTERM during the k-NN monitor')


def test_kill_during_an_iteration_checkpoint_write_resumes_from_the_previous(
    preemptible, fashion_mnist, straight, tmp_path
):
    """An iteration checkpoint every iteration, SIGKILL halfway through writing iter_6.pth: iter_5.pth stays named
    in last_checkpoint, --resume takes it (and removes the half-written file), and the run ends as the straight
    run, whose checkpoints came every 2 iterations: how often checkpoints are written changes nothing."""
    work = tmp_path / 'work'
    every = ('--cfg-options', 'default_hooks.checkpoint.iter_interval=1')
    killed = train(preemptible, fashion_mnist, work, ONE_NO_WORKERS, *every, env=dict(KILL_AT_SAVE='iter_6.pth'))
    assert killed.returncode == -signal.SIGKILL, logs(killed)[-3000:]
    assert open(work / 'last_checkpoint').read() == str(work / 'iter_5.pth')
    assert (work / 'iter_6.pth.partial').exists() and not (work / 'iter_6.pth').exists()
    assert sorted(n for n in os.listdir(work) if n.startswith('iter_') and n.endswith('.pth')) == [
        'iter_3.pth',
        'iter_5.pth',  # max_keep_iter_ckpts=2 (iter_4 is epoch_1.pth)
    ]

    resumed = train(preemptible, fashion_mnist, work, ONE_NO_WORKERS, *every, '--resume')
    assert resumed.returncode == 0, logs(resumed)[-3000:]
    assert 'left by an interrupted save' in logs(resumed)
    assert 'continuing epoch 2 after its first 1 batch(es)' in logs(resumed)
    assert_same_state(straight(ONE_NO_WORKERS), work, 'killed while writing iter_6.pth')


@pytest.mark.slow
def test_two_processes_sigkill_and_a_signal_on_one_rank(preemptible, fashion_mnist, straight, free_port, tmp_path):
    """tools/dist_train.sh on 2 gloo processes with 2 persistent workers each (2 iterations an epoch), one run
    stopped twice: SIGUSR1 to rank 1 only during iteration 3: both ranks stop after iteration 3 (rank 0 says the
    signal came to another process) and exit 75; the resumed run continues epoch 2, crosses into epoch 3 and is
    SIGKILLed after a random iteration of it (5 or 6), leaving epoch_2.pth (iteration 6's checkpoint is
    epoch_3.pth, written after the epoch); resumed again, the run ends as the straight run. The iteration
    checkpoint resumed on 1 process warns and trains on from a re-seeded order.
    """
    work = tmp_path / 'work'
    signalled = train(
        preemptible,
        fashion_mnist,
        work,
        TWO_TWO_WORKERS,
        env=dict(SIGNAL_AT_ITER='3', SIGNAL_RANK='1', SIGNAL='SIGUSR1'),
        port=free_port(),
    )
    assert signalled.returncode == 75  # (torchrun's own code is 1; each process's is in its summary)
    assert logs(signalled).count('exitcode  : 75') == 2, logs(signalled)[-3000:]
    assert 'a signal on another process: stopped after iteration 3 (epoch 2, batch 1 of 2)' in logs(signalled)
    assert open(work / 'last_checkpoint').read() == str(work / 'iter_3.pth')
    states = torch.load(work / 'iter_3.pth', weights_only=False)['random_states']
    assert len(states) == 2 and not torch.equal(states[0]['torch'], states[1]['torch'])  # one stream per rank
    one_dir = tmp_path / 'one'
    os.makedirs(one_dir)
    shutil.copy(work / 'iter_3.pth', one_dir / 'from_two_processes.pth')

    kill_at = seeded_rng('kill point')[0].randint(5, 6)
    killed = train(
        preemptible, fashion_mnist, work, TWO_TWO_WORKERS, '--resume', env=dict(KILL_AT_ITER=str(kill_at)),
        port=free_port(),
    )  # fmt: skip
    assert killed.returncode != 0
    assert 'continuing epoch 2 after its first 1 batch(es)' in logs(killed)
    assert open(work / 'last_checkpoint').read() == str(work / 'epoch_2.pth'), kill_at
    resumed = train(preemptible, fashion_mnist, work, TWO_TWO_WORKERS, '--resume', port=free_port())
    assert resumed.returncode == 0, logs(resumed)[-3000:]
    assert_same_state(
        straight(TWO_TWO_WORKERS, port=free_port()),
        work,
        f'SIGUSR1 to rank 1 during iteration 3, then SIGKILL after iteration {kill_at}, 2 x 2 workers',
    )

    # the same iteration checkpoint on 1 process: 1 batch of 2 x 2 images = 2 batches of 2 on one process
    one = train(
        preemptible, fashion_mnist, one_dir, ONE_NO_WORKERS, '--resume', str(one_dir / 'from_two_processes.pth')
    )
    assert one.returncode == 0, logs(one)[-3000:]
    assert 'the checkpoint holds the random states of 2 process(es), this run has 1' in logs(one)
    assert (
        'the checkpoint was written by 2 process(es) x batch 2, this run has 1 x 2: epoch 2 continues after 2 '
        'batch(es) with a re-seeded order, not exactly'
    ) in logs(one)


FAKE_SLURM = {
    # sbatch: record the options, then run the script as the job would (job id 42), with --export's variables
    'sbatch': """#!/usr/bin/env bash
echo "sbatch $*" >> "$FAKE_SLURM_LOG"
while [ "${1#-}" != "$1" ]; do shift; done
SLURM_JOB_ID=42 exec bash "$@"
""",
    # srun: one task on this machine
    'srun': """#!/usr/bin/env bash
echo "srun $*" >> "$FAKE_SLURM_LOG"
while [ "${1#-}" != "$1" ]; do shift; done
SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODELIST=localhost exec "$@"
""",
    'scontrol': """#!/usr/bin/env bash
echo "scontrol $*" >> "$FAKE_SLURM_LOG"
[ "$1 $2" = "show hostname" ] && echo 127.0.0.1
exit 0
""",
}


def test_slurm_requeue_mode_saves_on_sigusr1_requeues_and_resumes_by_itself(
    preemptible, fashion_mnist, free_port, tmp_path
):
    """REQUEUE=1 tools/slurm_train.sh with stand-ins for sbatch / srun / scontrol: the job is submitted with
    --requeue --signal=USR1@<seconds>; SIGUSR1 during iteration 3 ends train.py with 75 after iter_3.pth, and the
    job requeues itself; the restarted job (the same batch script again) resumes from iter_3.pth by itself.
    --start-over belongs to the first start: the restarted job (SLURM_RESTART_COUNT=1) resumes instead."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in FAKE_SLURM.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    log = tmp_path / 'slurm.log'
    work = tmp_path / 'work'
    config, env = preemptible
    env = dict(
        env,
        PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
        FAKE_SLURM_LOG=str(log),
        PYTHON=PY,
        MASTER_PORT=free_port(),
        GPUS='1',
        GPUS_PER_NODE='1',
        REQUEUE='1',
        SIGNAL_SECONDS='300',
    )
    command = [
        'bash',
        'tools/slurm_train.sh',
        'part',
        'mst',
        config,
        '--work-dir',
        str(work),
        '--cfg-options',
        f'train_dataloader.dataset.data_root={fashion_mnist}',
        'train_dataloader.dataset.indices=8',
        'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_cfg.max_epochs=2',
        '--start-over',
    ]

    first = run(command, extra_env=dict(env, SIGNAL_AT_ITER='3', SIGNAL='SIGUSR1'))
    assert first.returncode == 75, logs(first)[-3000:]
    calls = log.read_text().splitlines()
    assert calls[0].startswith('sbatch ') and '--requeue' in calls[0] and '--signal=USR1@300' in calls[0]
    assert f'--output={work}/slurm-%j.out' in calls[0]
    assert calls[1].startswith('srun ') and '--resume' not in calls[1]  # the first start: nothing to resume
    assert calls[1].endswith(' --start-over')
    assert calls[-1] == 'scontrol requeue 42'
    assert open(work / 'last_checkpoint').read() == str(work / 'iter_3.pth')

    # slurm starts the requeued job: the same batch script, in the job's environment
    restarted = run(
        command,
        extra_env=dict(
            env, MMMST_IN_BATCH_JOB='1', SLURM_JOB_ID='42', SLURM_RESTART_COUNT='1', MMMST_TOOLS=osp.join(ROOT, 'tools')
        ),
    )
    assert restarted.returncode == 0, logs(restarted)[-3000:]
    last_srun = [line for line in log.read_text().splitlines() if line.startswith('srun ')][-1]
    assert last_srun.endswith(' --resume') and '--start-over' not in last_srun
    assert 'continuing epoch 1 after its first 3 batch(es)' in logs(restarted)
    assert open(work / 'last_checkpoint').read() == str(work / 'epoch_2.pth')


def test_slurm_requeue_mode_needs_a_work_dir(preemptible):
    result = run(['bash', 'tools/slurm_train.sh', 'part', 'mst', preemptible[0]], extra_env=dict(REQUEUE='1'))
    assert result.returncode == 2
    assert 'REQUEUE=1 needs --work-dir <dir>' in result.stderr


def test_resumable_sampler_starts_inside_an_epoch_once(monkeypatch):
    """ResumableSampler yields DefaultSampler's order (same seed, epoch, rank); start_at(n) drops this rank's first
    n indices of the next epoch iterated only; len() stays the whole epoch's."""
    import mmengine.dataset.sampler as mmengine_sampler
    from mmengine.dataset import DefaultSampler

    from mmmst.datasets import ResumableSampler

    monkeypatch.setattr(mmengine_sampler, 'get_dist_info', lambda: (1, 2))  # rank 1 of 2
    reference, sampler = DefaultSampler(range(25), seed=5), ResumableSampler(range(25), seed=5)
    reference.set_epoch(3)
    sampler.set_epoch(3)
    whole = list(reference)
    assert list(sampler) == whole and len(whole) == 13
    sampler.start_at(7)
    assert list(sampler) == whole[7:]
    assert list(sampler) == whole  # once
    assert len(sampler) == 13
    with pytest.raises(ValueError, match='14 is outside 0..13'):
        sampler.start_at(14)


def test_resumed_worker_init_stands_in_for_the_uninterrupted_runs_worker():
    """Batch i of an epoch is made by worker i % W; a resumed epoch starting at batch 4 of W=3 starts its worker 0
    as worker 1 (seeded as 1; it had made no batch yet) and its worker 2 as worker 0, in worker 0's saved states."""
    from mmmst.runtime.random_states import ResumedWorkerInit, random_states

    seeded = []
    random.seed(1234)
    saved = random_states()
    expected = random.random()
    init = ResumedWorkerInit(seeded.append, [saved, None, None], offset=4)
    init(0)
    assert seeded == [1]
    random.seed(99)
    init(2)
    assert seeded == [1, 0] and random.random() == expected


def test_stop_request_records_the_first_signal_and_uninstalls():
    from mmmst.runtime.preemption import StopRequest

    before = signal.getsignal(signal.SIGUSR1)
    stop = StopRequest()
    stop.install()
    try:
        assert not stop.agreed()
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal (during the save, say) changes nothing
        assert stop.agreed() and stop.signal_name == 'SIGUSR1'
    finally:
        stop.uninstall()
    assert signal.getsignal(signal.SIGUSR1) is before


@pytest.mark.parametrize(
    'option, message',
    [
        ('iter_interval=0', 'AtomicCheckpointHook: iter_interval=0; give a positive number of iterations'),
        ('max_keep_iter_ckpts=0', 'AtomicCheckpointHook: max_keep_iter_ckpts=0; keep at least 1'),
        ('iter_intervl=1000', "AtomicCheckpointHook: unknown option 'iter_intervl'; did you mean 'iter_interval'?"),
    ],
)
def test_bad_iteration_checkpoint_options_fail_at_start_naming_them(fashion_mnist, tmp_path, option, message):
    from tests.helpers import last_line, run_main, small_train_options

    result = run_main(
        'tools/train.py', SMALL_CFG, *small_train_options(fashion_mnist, tmp_path), f'default_hooks.checkpoint.{option}'
    )
    assert result.returncode == 1 and last_line(result).startswith(f'error: {message}'), result.stderr[-2000:]


def test_iteration_checkpoints_need_the_resumable_loop(fashion_mnist, tmp_path):
    from tests.helpers import last_line, small_train_options

    result = run(
        [PY, 'tools/train.py', SMALL_CFG]
        + small_train_options(fashion_mnist, tmp_path)
        + ['train_cfg.type=EpochBasedTrainLoop', 'default_hooks.checkpoint.iter_interval=2']
    )
    assert result.returncode == 1
    assert last_line(result) == (
        'error: AtomicCheckpointHook: iter_interval=2 needs a loop that can resume inside an epoch: '
        "train_cfg=dict(type='ResumableEpochBasedTrainLoop', ...), not EpochBasedTrainLoop"
    )
    assert not os.listdir(tmp_path) or not any(n.endswith('.pth') for n in os.listdir(tmp_path))


def test_a_mid_epoch_checkpoint_and_a_sampler_that_cannot_skip_fail_in_one_line(
    preemptible, fashion_mnist, stopped_by_sigterm, tmp_path
):
    """An iteration checkpoint resumed with mmengine's DefaultSampler (it cannot start inside an epoch): one line
    naming the sampler and the fix; the checkpoint is untouched."""
    from tests.helpers import last_line

    work = copy_run(stopped_by_sigterm[0], tmp_path / 'work')  # iter_5.pth: epoch 2 after its first batch
    before = (work / 'iter_5.pth').read_bytes()
    resumed = train(
        preemptible,
        fashion_mnist,
        work,
        ONE_TWO_WORKERS,
        '--resume',
        '--cfg-options',
        'train_dataloader.sampler.type=DefaultSampler',
    )
    assert resumed.returncode == 1
    assert last_line(resumed) == (
        'error: the checkpoint was written in the middle of epoch 2, and train_dataloader.sampler (DefaultSampler) '
        "cannot start there; use sampler=dict(type='ResumableSampler', ...) (DefaultSampler's arguments) or resume "
        'from an epoch checkpoint'
    )
    assert (work / 'iter_5.pth').read_bytes() == before


def test_iteration_checkpoints_are_on_in_the_imagenet_configs_and_off_in_the_demo():
    from mmengine.config import Config

    from tests.helpers import DEMO_CFG

    for name in (
        'mst_deit-small-p16_8xb128-amp-coslr-100e_in1k.py',
        'mst_swin-tiny_8xb128-amp-coslr-300e_in1k.py',
        'ablations/dino_deit-small-p16_8xb128-amp-coslr-100e_in1k.py',
    ):
        cfg = Config.fromfile(osp.join(ROOT, 'configs/mst', name))
        assert cfg.default_hooks.checkpoint.iter_interval == 1000, name
        assert cfg.train_cfg.type == 'ResumableEpochBasedTrainLoop' and cfg.train_dataloader.sampler.type == (
            'ResumableSampler'
        ), name
    demo = Config.fromfile(DEMO_CFG)
    assert demo.default_hooks.checkpoint.get('iter_interval', -1) == -1
    assert demo.train_cfg.type == 'ResumableEpochBasedTrainLoop'  # a SIGTERM still saves and resumes exactly


@pytest.mark.parametrize(
    'nodelist, host',
    [('node07', 'node07'), ('node[03-05,9],gpu1', 'node03'), ('rack1-n[001-004]', 'rack1-n001'), ('a,b', 'a')],
)
def test_the_first_host_of_a_slurm_node_list_is_the_master(nodelist, host):
    """What `scontrol show hostname <list> | head -n1` prints (mmengine's slurm launcher), without a subprocess."""
    from mmmst.runtime.cpu_dist import first_slurm_host

    assert first_slurm_host(nodelist) == host


def torchrun_of(launcher_pid: int) -> int:
    """The pid of the torchrun process that tools/dist_launch.sh started."""
    for child in open(f'/proc/{launcher_pid}/task/{launcher_pid}/children').read().split():
        if 'torch.distributed.run' in open(f'/proc/{child}/cmdline').read():
            return int(child)
    raise AssertionError(f'no torchrun among the children of {launcher_pid}')


def start_as_a_container_does(command, env):
    """The launcher as a shell or a container starts it: a process group (and session) of its own, output captured."""
    return subprocess.Popen(
        command, cwd=ROOT, env=dict(os.environ, PYTHON=PY, OMP_NUM_THREADS='1') | env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def wait_for(path, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not osp.exists(path):
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, f'{path} did not appear in {timeout} s'
        time.sleep(0.1)


def signal_when_ready(process, ready, send) -> str:
    """Once the run has written ``ready`` (``AwaitSignalAtIter``), ``send()`` the signal(s) from outside; the run's
    output. A process group that outlives the wait is killed."""
    try:
        wait_for(ready, process)
        send()
        return process.communicate(timeout=300)[0]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.parametrize(
    'target, signame, setup',
    [
        ('launcher', 'SIGTERM', TWO_NO_WORKERS),  # docker stop, Kubernetes: the container's first process
        ('launcher', 'SIGUSR1', TWO_TWO_WORKERS),
        ('torchrun', 'SIGTERM', TWO_TWO_WORKERS),
        ('torchrun', 'SIGUSR1', TWO_NO_WORKERS),
        ('group', 'SIGTERM', TWO_TWO_WORKERS),  # a terminal's kill -- -PGID; slurm signals every process of a step
        ('group', 'SIGUSR1', TWO_NO_WORKERS),
    ],
    ids=lambda v: v if isinstance(v, str) else f'{v[1]}-workers',
)
def test_a_signal_from_outside_stops_both_ranks_after_its_iteration_exits_75_and_resumes_exactly(
    preemptible, fashion_mnist, straight, free_port, tmp_path, target, signame, setup
):
    """tools/dist_train.sh on 2 gloo processes, started as a shell or a container starts it (a process group of its
    own); the signal sent from outside while iteration 3 runs (epoch 2, batch 1), to the launcher's process, to
    torchrun, or to the whole process group: both ranks stop after iteration 3, iter_3.pth is the one checkpoint
    written, no dataloader worker dies of the signal, the launch exits 75 and leaves no lock; --resume through the
    same launcher, with another seed in the config (the checkpoint's generator states and sampler order must win
    over mmengine's re-seeding), ends as the straight run."""
    work, ready = tmp_path / 'work', tmp_path / 'ready'
    command, env = train_command(
        preemptible, fashion_mnist, work, setup, env=dict(AWAIT_SIGNAL_AT_ITER='3', READY_FILE=str(ready)),
        port=free_port(),
    )  # fmt: skip
    launcher = start_as_a_container_does(command, env)
    signum = getattr(signal, signame)

    def send():
        if target == 'launcher':
            os.kill(launcher.pid, signum)
        elif target == 'torchrun':
            os.kill(torchrun_of(launcher.pid), signum)
        else:
            os.killpg(launcher.pid, signum)

    output = signal_when_ready(launcher, ready, send)
    assert launcher.returncode == 75, output[-4000:]
    assert f'{signame}: stopped after iteration 3 (epoch 2, batch 1 of 2) and saved {work / "iter_3.pth"}' in output
    assert 'DataLoader worker' not in output
    assert open(work / 'last_checkpoint').read() == str(work / 'iter_3.pth')
    left = sorted(os.listdir(work))
    assert [n for n in left if n.endswith(('.pth', '.partial', '.lock'))] == ['epoch_1.pth', 'iter_3.pth'], left

    resumed = train(preemptible, fashion_mnist, work, setup, 'randomness.seed=1', '--resume', port=free_port())
    assert resumed.returncode == 0, logs(resumed)[-3000:]
    assert 'continuing epoch 2 after its first 1 batch(es)' in logs(resumed)
    assert not (work / '.lock').exists()
    assert_same_state(straight(setup, port=free_port()), work, f'{signame} to the {target} during iteration 3')


FAKE_SRUN_TASKS = """#!/usr/bin/env bash
# srun --kill-on-bad-exit=1 with FAKE_SRUN_TASKS tasks on this machine: the first task to exit non-zero gets the
# others SIGKILLed; the exit code is the highest of the tasks' (128 + 9 for a killed one), as srun reports it
echo "srun $*" >> "$FAKE_SLURM_LOG"
while [ "${1#-}" != "$1" ]; do shift; done
tasks=${FAKE_SRUN_TASKS:-1}
pids=()
for ((rank = 0; rank < tasks; rank++)); do
    SLURM_PROCID=$rank SLURM_NTASKS=$tasks SLURM_LOCALID=$rank SLURM_NODELIST=localhost "$@" &
    pids+=($!)
done
highest=0
left=$tasks
while [ "$left" -gt 0 ]; do
    wait -n "${pids[@]}"
    code=$?
    left=$((left - 1))
    [ "$code" -gt "$highest" ] && highest=$code
    if [ "$code" != 0 ]; then
        kill -KILL "${pids[@]}" 2>/dev/null
    fi
done
exit "$highest"
"""


def fake_slurm(tmp_path, **env):
    """A PATH with stand-ins for sbatch, srun (several tasks, --kill-on-bad-exit) and scontrol; the environment."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in dict(FAKE_SLURM, srun=FAKE_SRUN_TASKS).items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return dict(
        env, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', FAKE_SLURM_LOG=str(tmp_path / 'slurm.log'), PYTHON=PY
    )


def test_no_rank_leaves_before_the_save_even_when_srun_kills_the_step_at_the_first_exit(
    preemptible, fashion_mnist, free_port, tmp_path
):
    """The requeued job's branch of tools/slurm_train.sh on 2 tasks under an srun that SIGKILLs the other tasks as
    soon as one exits non-zero (--kill-on-bad-exit), with the processes' exit as on a GPU backend (no barrier at the
    end) and rank 0 writing its checkpoint 3 s slowly: SIGUSR1 to rank 1 during iteration 3. Rank 1 leaves only
    once iter_3.pth and last_checkpoint are complete; srun's own code may be 137 (a task killed after the first
    left), the script still knows it was a saved stop, exits 75 and requeues."""
    work = tmp_path / 'work'
    env = fake_slurm(
        tmp_path, MASTER_PORT=free_port(), REQUEUE='1', MMMST_IN_BATCH_JOB='1', SLURM_JOB_ID='42',
        MMMST_TOOLS=osp.join(ROOT, 'tools'), FAKE_SRUN_TASKS='2', SIGNAL_AT_ITER='3', SIGNAL_RANK='1',
        SIGNAL='SIGUSR1', SLOW_SAVE='3', EXIT_WITHOUT_BARRIER='1', PYTHONPATH=preemptible[1]['PYTHONPATH'],
    )  # fmt: skip
    options = small_train_options(fashion_mnist, work, epochs=3)
    result = run(['bash', 'tools/slurm_train.sh', 'part', 'mst', preemptible[0]] + options, extra_env=env)
    assert result.returncode == 75, logs(result)[-3000:]
    assert open(work / 'last_checkpoint').read() == str(work / 'iter_3.pth')
    assert torch.load(work / 'iter_3.pth', weights_only=False)['meta']['iter'] == 3
    assert not [n for n in os.listdir(work) if n.endswith('.partial') or n.startswith('.mmmst-exit')]
    assert (tmp_path / 'slurm.log').read_text().splitlines()[-1] == 'scontrol requeue 42'


#: srun as it treats SIGTERM / SIGUSR1 sent to itself: passed on to its task (one, on this machine)
FORWARDING_SRUN = """#!/usr/bin/env bash
echo "srun $*" >> "$FAKE_SLURM_LOG"
while [ "${1#-}" != "$1" ]; do shift; done
SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODELIST=localhost "$@" &
task=$!
trap 'kill -TERM $task' TERM
trap 'kill -USR1 $task' USR1
wait $task; code=$?
while kill -0 $task 2>/dev/null; do wait $task; code=$?; done
exit $code
"""


def test_a_term_to_the_slurm_scripts_own_shell_reaches_train_py_which_saves_and_exits_75(
    preemptible, fashion_mnist, free_port, tmp_path
):
    """`kill <pid of slurm_train.sh>` (the batch script's shell alone, as `scancel --batch` or a kill by hand
    signals it) while iteration 3 runs: the script passes SIGTERM on to srun, train.py saves iter_3.pth, and the
    script exits 75 (without passing it on, the run would go on to its end and the signal be lost)."""
    work, ready = tmp_path / 'work', tmp_path / 'ready'
    env = fake_slurm(
        tmp_path, MASTER_PORT=free_port(), PYTHONPATH=preemptible[1]['PYTHONPATH'], AWAIT_SIGNAL_AT_ITER='3',
        READY_FILE=str(ready),
    )  # fmt: skip
    (tmp_path / 'bin' / 'srun').write_text(FORWARDING_SRUN)
    options = small_train_options(fashion_mnist, work, epochs=3)
    script = start_as_a_container_does(['bash', 'tools/slurm_train.sh', 'part', 'mst', preemptible[0]] + options, env)
    output = signal_when_ready(script, ready, lambda: os.kill(script.pid, signal.SIGTERM))
    assert script.returncode == 75, output[-4000:]
    assert 'slurm_train.sh: SIGTERM received; passed on to the job step' in output
    assert open(work / 'last_checkpoint').read() == str(work / 'iter_3.pth')


def test_slurm_requeues_only_on_a_saved_stop(preemptible, fashion_mnist, tmp_path):
    """A job whose train.py fails for another reason (here a misspelt option) exits with that code, not requeued:
    a requeue would fail the same way, forever."""
    env = fake_slurm(
        tmp_path, REQUEUE='1', MMMST_IN_BATCH_JOB='1', SLURM_JOB_ID='42', MMMST_TOOLS=osp.join(ROOT, 'tools'),
        PYTHONPATH=preemptible[1]['PYTHONPATH'],
    )  # fmt: skip
    options = small_train_options(fashion_mnist, tmp_path / 'work') + ['default_hooks.checkpoint.intervl=1']
    result = run(['bash', 'tools/slurm_train.sh', 'part', 'mst', preemptible[0]] + options, extra_env=env)
    assert result.returncode == 1, logs(result)[-3000:]
    assert "unknown option 'intervl'" in logs(result)
    assert not any(line.startswith('scontrol') for line in (tmp_path / 'slurm.log').read_text().splitlines())


def test_requeue_mode_outside_a_job_is_refused():
    """The batch job's branch without SLURM_JOB_ID (run by hand): one line, nothing requeued with an empty id."""
    result = run(
        ['bash', 'tools/slurm_train.sh', 'part', 'mst', 'cfg.py', '--work-dir', 'w'],
        extra_env=dict(REQUEUE='1', MMMST_IN_BATCH_JOB='1', SLURM_JOB_ID=''),
    )
    assert result.returncode == 2
    assert 'error: REQUEUE=1: SLURM_JOB_ID is not set' in result.stderr


def test_a_signal_deletes_none_of_mmengines_own_iteration_checkpoints(preemptible, fashion_mnist, tmp_path):
    """by_epoch=False: mmengine writes iter_<i>.pth every `interval` iterations itself. A signal's iter_5.pth
    (max_keep_iter_ckpts=1) rotates out only the iteration checkpoints this hook wrote: mmengine's stay."""
    work = tmp_path / 'work'
    options = [
        'default_hooks.checkpoint.by_epoch=False',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.iter_interval=-1',
        'default_hooks.checkpoint.max_keep_iter_ckpts=1',
    ]
    stopped = train(preemptible, fashion_mnist, work, ONE_NO_WORKERS, *options, env=dict(SIGNAL_AT_ITER='5'))
    assert stopped.returncode == 75, logs(stopped)[-3000:]
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == ['iter_2.pth', 'iter_4.pth', 'iter_5.pth']


def test_iteration_checkpoints_with_by_epoch_false_are_refused_in_one_line(fashion_mnist, tmp_path):
    from tests.helpers import last_line, run_main

    options = ['default_hooks.checkpoint.by_epoch=False', 'default_hooks.checkpoint.iter_interval=2']
    result = run_main('tools/train.py', SMALL_CFG, *small_train_options(fashion_mnist, tmp_path), *options)
    assert result.returncode == 1
    assert last_line(result) == (
        'error: AtomicCheckpointHook: iter_interval=2 with by_epoch=False: the hook already writes iter_<i>.pth every '
        'interval=5 iterations; set interval instead (and iter_interval=-1)'
    )


def test_a_signal_with_checkpoints_on_another_storage_backend_writes_through_it(preemptible, fashion_mnist, tmp_path):
    """out_dir on a storage backend other than the local disk (here a stand-in for s3://): the signal's checkpoint is
    written in place through the backend (no .partial, no rename on a path that is not a local file), and
    last_checkpoint names it."""
    work, storage = tmp_path / 'work', tmp_path / 'storage'
    out_dir = f'testdir://{storage}'
    stopped = train(
        preemptible, fashion_mnist, work, ONE_NO_WORKERS, f'default_hooks.checkpoint.out_dir={out_dir}',
        env=dict(SIGNAL_AT_ITER='3'),
    )  # fmt: skip
    assert stopped.returncode == 75, logs(stopped)[-3000:]
    assert open(work / 'last_checkpoint').read() == f'{out_dir}/work/iter_3.pth'
    assert sorted(os.listdir(storage / 'work')) == ['iter_2.pth', 'iter_3.pth']
    assert torch.load(storage / 'work' / 'iter_3.pth', weights_only=False)['meta']['iter'] == 3


def test_a_second_signal_during_the_save_changes_nothing(preemptible, fashion_mnist, free_port, tmp_path):
    """SIGTERM to the whole process group twice, 50 ms apart, while rank 0 writes its checkpoint slowly (3 s): a
    signal repeated by a user or a runtime. torchrun (in a group of its own) gets it from the launcher only, which
    passes on the first: torchrun waits for its processes, the launch exits 75 with iter_3.pth complete (torch
    2.14's torchrun in the launcher's group, signalled directly as well, left during its shutdown: exit 1)."""
    work, ready = tmp_path / 'work', tmp_path / 'ready'
    command, env = train_command(
        preemptible, fashion_mnist, work, TWO_NO_WORKERS,
        env=dict(AWAIT_SIGNAL_AT_ITER='3', READY_FILE=str(ready), SLOW_SAVE='3'), port=free_port(),
    )  # fmt: skip
    launcher = start_as_a_container_does(command, env)

    def send_twice():
        os.killpg(launcher.pid, signal.SIGTERM)
        time.sleep(0.05)
        os.killpg(launcher.pid, signal.SIGTERM)

    output = signal_when_ready(launcher, ready, send_twice)
    assert launcher.returncode == 75, output[-4000:]
    assert open(work / 'last_checkpoint').read() == str(work / 'iter_3.pth')
    assert torch.load(work / 'iter_3.pth', weights_only=False)['meta']['iter'] == 3


def test_a_resume_onto_a_changed_training_set_says_so_in_one_line(preemptible, fashion_mnist, tmp_path):
    """The checkpoint of iteration 2 was written over 8 images; the resumed run has 10: the order it restores
    no longer covers the set, and the log says so and what happens."""
    work = tmp_path / 'work'
    first = train(preemptible, fashion_mnist, work, ONE_NO_WORKERS, 'train_cfg.max_epochs=1')
    assert first.returncode == 0, logs(first)[-3000:]
    resumed = train(preemptible, fashion_mnist, work, ONE_NO_WORKERS, 'train_cfg.max_epochs=1',
                    'train_dataloader.dataset.indices=10', '--resume', str(work / 'iter_2.pth'))  # fmt: skip
    assert resumed.returncode == 0, logs(resumed)[-3000:]
    assert (
        'the training set has changed since the checkpoint (8 samples then, 10 now): epoch 1 continues after 2 '
        'batch(es) of an order drawn over the new set'
    ) in logs(resumed)
    same = train(preemptible, fashion_mnist, tmp_path / 'same', ONE_NO_WORKERS, 'train_cfg.max_epochs=1')
    again = train(preemptible, fashion_mnist, tmp_path / 'same', ONE_NO_WORKERS, 'train_cfg.max_epochs=1',
                  '--resume', str(tmp_path / 'same' / 'iter_2.pth'))  # fmt: skip
    assert same.returncode == 0 and again.returncode == 0, logs(again)[-3000:]
    assert 'the training set has changed' not in logs(again)
