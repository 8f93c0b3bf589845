"""The former name of :mod:`mmmst.cli` (the command-line tools' config and checkpoint checks); kept so that scripts
written before the rename still import."""

import importlib
import sys

from mmmst.cli import *  # noqa: F401,F403
from mmmst.cli import __all__  # noqa: F401

for _name in ('checkpoint_args', 'config_checks'):
    sys.modules[f'{__name__}.{_name}'] = importlib.import_module(f'mmmst.cli.{_name}')
