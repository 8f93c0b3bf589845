"""The teacher's CLS attention and the mask drawn from it, for the first test images, from an MST checkpoint.

    python tools/analysis_tools/visualize_attention.py <config> <checkpoint> --out attention.png [--num 8]
    python tools/analysis_tools/visualize_attention.py <config> --random-init --out attention_init.png

One column per image: the image, the teacher's last-layer CLS-to-patch attention (ViT backbones), and the
config's mask generator applied to it (black: replaced by [MASK]). Images come from the config's
``knn_query_dataloader`` (``test_dataloader`` when it has none).
"""

import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

from mmmst.apis import add_checkpoint_arguments, checkpoint_from_arguments, init_model
from mmmst.engine.non_finite import NonFiniteError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    add_checkpoint_arguments(parser)
    parser.add_argument('--out', required=True, help='PNG file to write')
    parser.add_argument('--num', type=int, default=8, help='number of images')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    checkpoint = checkpoint_from_arguments(parser, args)
    if args.num < 1:
        parser.error(f'--num must be >= 1, got {args.num}')
    for path in (args.config, checkpoint or args.config):
        if not osp.isfile(path):
            sys.exit(f'error: {path!r} does not exist')

    import mmmst  # noqa: F401
    from mmmst.config_checks import check_data_roots, load_checked_config
    from mmmst.experiments.visualize import first_query_images, plot_attention_and_masks

    try:
        cfg = load_checked_config(args.config, args.cfg_options, loaders=())
        loader = next((name for name in ('knn_query_dataloader', 'test_dataloader') if cfg.get(name)), None)
        if loader is None:
            sys.exit(f'error: {args.config} has neither knn_query_dataloader nor test_dataloader')
        check_data_roots(cfg, loaders=(loader,))
    except (KeyError, FileNotFoundError) as err:
        sys.exit(f'error: {err.args[0]}')
    try:
        model = init_model(cfg, checkpoint, args.seed)
    except NonFiniteError as err:
        sys.exit(f'error: {err}')
    plot_attention_and_masks(model, first_query_images(model, cfg, args.num, loader), args.out)
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
