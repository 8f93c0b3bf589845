"""The teacher's CLS attention and the mask drawn from it, for the first test images, from an MST checkpoint.

    python tools/analysis_tools/visualize_attention.py <config> <checkpoint> --out attention.png [--num 8]
    python tools/analysis_tools/visualize_attention.py <config> --random-init --out attention_init.png

One column per image: the image, the teacher's last-layer CLS-to-patch attention (ViT backbones), and the
config's mask generator applied to it (black: replaced by [MASK]). Give the config the checkpoint was trained
with: images come from its ``knn_query_dataloader`` or ``test_dataloader``, or, in a pretraining config that has
neither, from its training images (resized and centre-cropped to the global view size).
"""

import argparse
import os.path as osp
import sys

from mmmst.apis import init_model
from mmmst.cli import CfgOptionsAction, add_checkpoint_arguments, checkpoint_from_arguments
from mmmst.errors import exit_on_refusal


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    add_checkpoint_arguments(parser)
    parser.add_argument('--out', required=True, help='PNG file to write')
    parser.add_argument('--num', type=int, default=8, help='number of images')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    args = parser.parse_args(argv)
    checkpoint = checkpoint_from_arguments(parser, args)
    if args.num < 1:
        parser.error(f'--num must be >= 1, got {args.num}')
    for path in (args.config, checkpoint or args.config):
        if not osp.isfile(path):
            sys.exit(f'error: {path!r} does not exist')

    from mmmst.cli import check_data_roots, load_checked_config
    from mmmst.visualization import draw_attention_and_masks

    with exit_on_refusal():
        cfg = load_checked_config(args.config, args.cfg_options, loaders=())
        loader = next(
            name
            for name in ('knn_query_dataloader', 'test_dataloader', 'train_dataloader', None)
            if name is None or cfg.get(name)
        )
        if loader is None:
            sys.exit(f'error: {args.config} has no knn_query_dataloader, test_dataloader or train_dataloader')
        check_data_roots(cfg, loaders=(loader,))
        model = init_model(cfg, checkpoint, args.seed)
    draw_attention_and_masks(model, cfg, args.out, args.num)
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
