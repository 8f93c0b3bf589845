"""The random number generators' states of every process, for a resume that continues the same run."""

import random

import numpy as np
import torch
from mmengine.dist import all_gather_object


def gather_random_states() -> list:
    """Every process's python, numpy and torch (CPU and CUDA) generator states, indexed by rank.

    A collective: call it on every process at the same point (the checkpoint is then written by rank 0).
    """
    states = dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state()
    return all_gather_object(states)


def set_random_states(states: dict) -> None:
    """Restore one process's states (an element of :func:`gather_random_states`)."""
    version, internal, gauss = states['python']  # weights-only loading gives back lists for tuples
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states['cuda'])
