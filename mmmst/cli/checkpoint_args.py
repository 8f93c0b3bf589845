"""The checkpoint arguments of the evaluation tools: a checkpoint, or ``--random-init`` (the untrained baseline)."""

from typing import Optional


def add_checkpoint_arguments(parser) -> None:
    """``checkpoint`` (optional positional), ``--random-init`` and ``--seed`` on an argparse parser."""
    parser.add_argument('checkpoint', nargs='?', help='an MST checkpoint (omit with --random-init)')
    parser.add_argument('--random-init', action='store_true', help='the network as initialised (--seed)')
    parser.add_argument('--seed', type=int, default=0, help='torch seed of --random-init')


def checkpoint_from_arguments(parser, args) -> Optional[str]:
    """The checkpoint to load (None: ``--random-init``); exactly one of the two must be given."""
    if (args.checkpoint is None) == (not args.random_init):
        parser.error('give a checkpoint or --random-init, not both')
    return args.checkpoint
