"""Shared fixtures. Tests import nothing from each other; everything runs on the CPU."""

import pytest
import torch

import mmmst  # noqa: F401  (registers the components and the safe checkpoint loader)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def max_iters():
    """Sets the message hub's ``max_iters``, which CosineEMA reads, as a Runner would."""
    from mmengine.logging import MessageHub

    def set_max_iters(value):
        MessageHub.get_current_instance().update_info('max_iters', value)

    return set_max_iters
