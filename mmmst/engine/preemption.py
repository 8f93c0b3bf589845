"""Stop on SIGTERM / SIGUSR1 at an iteration every process agrees on (preemption, a slurm time limit).

A cluster that preempts a job, or reaches its time limit, sends SIGTERM (slurm: ``--signal=USR1@<seconds>`` sends
SIGUSR1 that many seconds earlier) and kills the job a little later. :class:`StopRequest` turns either signal into
a flag; the checkpoint hook asks :meth:`StopRequest.agreed` after every training iteration and, when it says stop,
writes an iteration checkpoint and raises :class:`Preempted`. ``tools/train.py`` then exits with
:data:`PREEMPTED_EXIT_CODE`, and ``--resume`` continues from that checkpoint.
"""

import signal

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_world_size, is_distributed

#: the exit code of a run stopped by SIGTERM / SIGUSR1 after saving (75, EX_TEMPFAIL in sysexits.h: "try again")
PREEMPTED_EXIT_CODE = 75
#: the signals that stop a run after the current iteration
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


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
        """Handle :data:`STOP_SIGNALS` (main thread only; dataloader workers forked later inherit the handler)."""
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        if is_distributed() and get_world_size() > 1:
            # a collective: every rank installs at the same point (before_train)
            backend = torch_dist.get_backend()
            self._group = None if backend == 'gloo' else torch_dist.new_group(backend='gloo')

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
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
