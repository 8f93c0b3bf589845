"""What the command-line tools share, tested like the rest of the library: config and checkpoint checks that turn a
bad command into one clear line before a Runner is built, and the evaluation tools' checkpoint arguments."""

from .checkpoint_args import add_checkpoint_arguments, checkpoint_from_arguments
from .config_checks import (
    CfgOptionsAction,
    cfg_option_warnings,
    check_checkpoint_fits,
    check_data_roots,
    check_hooks_build,
    check_model_builds,
    config_differences,
    load_checked_config,
)

__all__ = [
    'CfgOptionsAction',
    'add_checkpoint_arguments',
    'cfg_option_warnings',
    'check_checkpoint_fits',
    'check_data_roots',
    'check_hooks_build',
    'check_model_builds',
    'checkpoint_from_arguments',
    'config_differences',
    'load_checked_config',
]
