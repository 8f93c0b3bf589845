from .hooks import *  # noqa: F401,F403
from .safe_checkpoint import UnsafeCheckpointError, load_from_local, register

__all__ = ['UnsafeCheckpointError', 'load_from_local', 'register']
