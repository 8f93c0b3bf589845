"""Stop on SIGTERM / SIGUSR1 at an iteration every process agrees on (preemption, a slurm time limit).

A cluster that preempts a job, or reaches its time limit, sends SIGTERM (slurm: ``--signal=USR1@<seconds>`` sends
SIGUSR1 that many seconds earlier) and kills the job a little later. :class:`StopRequest` turns either signal into
a flag; the checkpoint hook asks :meth:`StopRequest.agreed` after every training iteration and, when it says stop,
writes an iteration checkpoint, waits on every process until it is complete (:meth:`StopRequest.wait_for_save`) and
raises :class:`Preempted`. ``tools/train.py`` then exits with :data:`PREEMPTED_EXIT_CODE`, and ``--resume``
continues from that checkpoint.

Signals reach more processes than the training processes: slurm signals every process of a step, torchrun signals
each worker's process group, a terminal its foreground group. A dataloader worker would die of them (torch's worker
loop installs its own SIGTERM handler) and take the run down with it; so while a :class:`StopRequest` is installed,
every process forked from a training process (the dataloader workers) ignores the stop signals, except a SIGTERM
from that training process itself (how it shuts its workers down).
"""

import os
import signal
import threading

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_world_size, is_distributed

#: the exit code of a run stopped by SIGTERM / SIGUSR1 after saving (75, EX_TEMPFAIL in sysexits.h: "try again")
PREEMPTED_EXIT_CODE = 75
#: the signals that stop a run after the current iteration
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
#: the environment variable naming a file where each process writes the exit code 75 once the save is complete: set
#: by the launchers, whose own exit code hides the processes' (torchrun exits 1 when a worker fails; srun with
#: ``--kill-on-bad-exit`` reports 128 + 9 for a task it killed after the first one left)
EXIT_CODE_FILE_ENV = 'MMMST_EXIT_CODE_FILE'

_block_in_children = False


def _stop_signals_in_child() -> None:
    """In a process forked from a training process (a dataloader worker), right after the fork: the stop signals
    are blocked (whatever handler torch's worker loop sets later) and taken by a thread that ends the process only
    on the parent's own SIGTERM, the way the parent shuts its workers down; the stop signals of a cluster, torchrun
    or a terminal, meant for the run, change nothing here."""
    if not _block_in_children:
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    threading.Thread(target=_take_stop_signals, args=(os.getppid(),), daemon=True).start()


def _take_stop_signals(parent: int) -> None:
    while True:
        info = signal.sigwaitinfo(STOP_SIGNALS)
        if info.si_signo == signal.SIGTERM and info.si_pid == parent:
            os._exit(0)  # (what torch's worker handler does on its parent's SIGTERM)


os.register_at_fork(after_in_child=_stop_signals_in_child)


_early_signal = None


def _record_early(signum, frame) -> None:
    global _early_signal
    _early_signal = _early_signal or signal.Signals(signum).name


def catch_stop_signals_early() -> None:
    """Record a stop signal that comes while the run starts (config, model, data): the checkpoint hook's
    :class:`StopRequest` takes it over, and the run stops after its first iteration, as for a signal during training.
    A run that will not save on a signal calls :func:`release_early_stop_signals`."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _record_early)


def release_early_stop_signals() -> None:
    """The default action for the stop signals again, and a signal recorded so far delivered now."""
    global _early_signal
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is _record_early:
            signal.signal(signum, signal.SIG_DFL)
    seen, _early_signal = _early_signal, None
    if seen is not None:
        os.kill(os.getpid(), getattr(signal, seen))


def record_exit_code(code: int = PREEMPTED_EXIT_CODE) -> None:
    """Append ``code`` to the file the launcher named in :data:`EXIT_CODE_FILE_ENV` (nothing without one)."""
    path = os.environ.get(EXIT_CODE_FILE_ENV)
    if path:
        with open(path, 'a') as f:
            f.write(f'{code}\n')


class Preempted(Exception):
    """The run stopped on a signal, after writing an iteration checkpoint (the message names it)."""


class StopRequest:
    """The signals seen by this process, and the agreement of all processes on when to stop.

    The handler only records the signal (a second one during the save changes nothing: the save goes on, and is
    atomic anyway). With several processes a signal may reach some ranks and not others, or reach them in
    different iterations; :meth:`agreed` is a MAX all-reduce of the flag, called by every rank after every
    iteration, so all of them stop after the same one. On NCCL the flag travels over a CPU (gloo) group: reading
    a CUDA all-reduce's result would make every iteration wait for the GPU.
    """

    def __init__(self) -> None:
        self.signal_name = None
        self._previous = {}
        self._group = None

    def install(self) -> None:
        """Handle :data:`STOP_SIGNALS` here (main thread only), and block them in processes forked from now on."""
        global _block_in_children, _early_signal
        _block_in_children = True
        self.signal_name, _early_signal = self.signal_name or _early_signal, None
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        if is_distributed() and get_world_size() > 1:
            # a collective: every rank installs at the same point (before_train)
            backend = torch_dist.get_backend()
            self._group = None if backend == 'gloo' else torch_dist.new_group(backend='gloo')

    def uninstall(self) -> None:
        global _block_in_children
        _block_in_children = False
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is _record_early else handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        self.signal_name = self.signal_name or signal.Signals(signum).name

    def agreed(self) -> bool:
        """Whether any process has seen a stop signal (a collective when there are several processes)."""
        if not (is_distributed() and get_world_size() > 1):
            return self.signal_name is not None
        flag = torch.tensor([self.signal_name is not None], dtype=torch.int32)
        torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MAX, group=self._group)
        return bool(flag.item())

    def wait_for_save(self) -> None:
        """Every process waits here until rank 0 has written the checkpoint and ``last_checkpoint`` (a barrier on
        the CPU group): a launcher that kills the others when the first process leaves (``srun
        --kill-on-bad-exit``, torchrun) then cannot cut the save short."""
        if is_distributed() and get_world_size() > 1:
            torch_dist.barrier(group=self._group)
