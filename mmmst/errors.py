"""What mmmst refuses, in one vocabulary: every refusal is an :class:`MSTError` whose message is the one line a tool
prints, and :func:`exit_on_refusal` is the one way a tool turns it into that line.

Each refusal keeps a built-in parent where callers rely on it (``CorruptCheckpointError`` is a ``ValueError``,
``UnreadableImageError`` an ``OSError``, ...). A new refusal subclasses :class:`MSTError` and no tool changes.
"""

import functools
import sys
from contextlib import contextmanager


class MSTError(Exception):
    """A refusal: an input that mmmst will not use, named in the message (one line, the culprit first)."""


class ConfigError(MSTError, ValueError):
    """A config value, a ``--cfg-options`` key, a data path or a checkpoint that the config cannot use; raised
    before the Runner starts."""


def refusal_message(err: BaseException) -> str:
    """The one line of a refusal. A refusal raised in a dataloader worker comes back with the worker's traceback in
    its message (torch re-raises it so): its last line, without the class name, is the refusal's own."""
    said = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
    lines = [line for line in said.strip().splitlines() if line.strip()]
    if len(lines) > 1:
        said = lines[-1].split(f'{type(err).__name__}: ', 1)[-1]
    return said


@contextmanager
def exit_on_refusal():
    """``with exit_on_refusal(): ...`` ends the process with ``error: <message>`` (status 1) on an :class:`MSTError`;
    any other exception keeps its traceback (a bug, not a refusal)."""
    try:
        yield
    except MSTError as err:
        sys.exit(f'error: {refusal_message(err)}')


def config_errors(func):
    """Decorate a config check: a ``KeyError``, ``ValueError``, ``TypeError`` or ``FileNotFoundError`` raised while
    reading or building from the config (the constructors name the bad value) becomes a :class:`ConfigError` with
    the same message."""

    @functools.wraps(func)
    def checked(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MSTError:
            raise
        except (KeyError, ValueError, TypeError, FileNotFoundError) as err:
            said = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
            raise ConfigError(said) from err

    return checked
