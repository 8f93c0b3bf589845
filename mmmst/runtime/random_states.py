"""The random number generators' states of every process and every dataloader worker, for a resume that continues
the same run."""

import random

import numpy as np
import torch
from mmengine.dist import all_gather_object
from torch.utils.data import get_worker_info

#: the key under which a dataloader worker's states travel with its batch (see :class:`CollateWithWorkerStates`)
WORKER_STATES_KEY = '_worker_random_states'


def random_states() -> dict:
    """This process's python, numpy and torch (CPU and CUDA) generator states."""
    states = dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state()
    return states


def gather_random_states(dataloader_workers=None) -> list:
    """Every process's :func:`random_states`, indexed by rank.

    ``dataloader_workers``: this process's dataloader workers' states (a list indexed by worker, see
    ``ResumableEpochBasedTrainLoop``), stored under ``'dataloader_workers'`` when given.
    A collective: call it on every process at the same point (the checkpoint is then written by rank 0).
    """
    states = random_states()
    if dataloader_workers is not None:
        states['dataloader_workers'] = dataloader_workers
    return all_gather_object(states)


def set_random_states(states: dict) -> None:
    """Restore one process's states (an element of :func:`gather_random_states`)."""
    version, internal, gauss = states['python']  # weights-only loading gives back lists for tuples
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states['cuda'])


class CollateWithWorkerStates:
    """A ``collate_fn`` that adds, to each batch a dataloader worker makes, the worker's states after making it.

    The crops, flips and photometric draws of a batch come from the random generators of the worker that made it,
    whose states advance with every batch. The main process keeps, per worker, the states that came with the last
    batch it trained on; a checkpoint holds them, and a resume starts each worker in those states, so the batches
    after the resume are drawn as in the uninterrupted run (prefetched but unused batches are simply made again).
    The states travel under :data:`WORKER_STATES_KEY` (about 8 kB a batch); the training loop takes them out of
    the batch before the model sees it. In the main process (``num_workers=0``) nothing is added.
    """

    def __init__(self, collate_fn) -> None:
        self.collate_fn = collate_fn

    def __call__(self, samples):
        batch = self.collate_fn(samples)
        if get_worker_info() is not None and isinstance(batch, dict):
            batch[WORKER_STATES_KEY] = random_states()
        return batch


class ResumedWorkerInit:
    """A ``worker_init_fn`` that starts the workers of a resumed epoch as the uninterrupted run's workers were.

    In an epoch, batch ``i`` is made by worker ``i % W`` (torch's in-order dispatch). A resumed epoch starts its
    dispatch at worker 0 with batch ``offset``, so its worker ``j`` stands in for the uninterrupted run's worker
    ``w = (offset + j) % W``: it is seeded as ``w`` (``worker_init_fn(w)``, mmengine's seeding) and, where ``w``
    had already made batches (``states[w]`` is not None), continues from ``w``'s saved states.
    """

    def __init__(self, worker_init_fn, states: list, offset: int) -> None:
        self.worker_init_fn, self.states, self.offset = worker_init_fn, states, offset

    def __call__(self, worker_id: int) -> None:
        w = (self.offset + worker_id) % len(self.states)
        if self.worker_init_fn is not None:
            self.worker_init_fn(w)
        if self.states[w] is not None:
            set_random_states(self.states[w])
