"""k-NN evaluation of a pretrained MST checkpoint (DINO protocol: teacher CLS features, L2-normalised,
20 neighbours, votes weighted exp(sim / 0.07)).

    python tools/analysis_tools/knn_eval.py configs/mst/benchmarks/deit-small-p16_knn-20nn_in1k.py <checkpoint>
    python tools/analysis_tools/knn_eval.py <config> <checkpoint> --feature patch-mean   # a diagnostic
    python tools/analysis_tools/knn_eval.py <config> --random-init --seed 0             # the untrained network

The config holds the model (an MST config) and two labelled loaders: ``knn_bank_dataloader`` (the bank,
ImageNet train) and ``knn_query_dataloader`` (the evaluated images, ImageNet val). A progress bar shows the
feature extraction. ``--feature patch-mean`` uses the mean of the teacher's last-layer patch tokens instead of the
CLS token (ViT backbones; a diagnostic, not the protocol).
"""

import argparse
import json
import os.path as osp
import sys

from mmmst.apis import init_model
from mmmst.cli import CfgOptionsAction, add_checkpoint_arguments, checkpoint_from_arguments
from mmmst.errors import exit_on_refusal


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    add_checkpoint_arguments(parser)
    parser.add_argument('--feature', choices=('cls', 'patch-mean'), default='cls', help='teacher feature to compare')
    parser.add_argument('--k', type=int, default=20)
    parser.add_argument('--temperature', type=float, default=0.07)
    parser.add_argument('--num-classes', type=int, default=None, help="defaults to the dataset's class count")
    parser.add_argument('--out', help='write {"knn_top1": ...} to this json file')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    args = parser.parse_args(argv)
    checkpoint = checkpoint_from_arguments(parser, args)
    # every argument is checked before a feature is computed (the bank of ImageNet takes an hour)
    if args.k < 1:
        parser.error(f'--k must be >= 1, got {args.k}')
    if not args.temperature > 0:
        parser.error(f'--temperature must be > 0, got {args.temperature}')
    if args.num_classes is not None and args.num_classes < 1:
        parser.error(f'--num-classes must be >= 1, got {args.num_classes}')
    for path in (args.config, checkpoint or args.config):
        if not osp.isfile(path):
            sys.exit(f'error: {path!r} does not exist')

    from mmengine.runner import Runner

    from mmmst.cli import load_checked_config
    from mmmst.evaluation import knn_evaluate

    with exit_on_refusal():
        cfg = load_checked_config(
            args.config, args.cfg_options, loaders=('knn_bank_dataloader', 'knn_query_dataloader')
        )
        model = init_model(cfg, checkpoint, args.seed)
    if args.feature == 'cls':
        encode = model.extract_feat
    else:

        def encode(images):  # (B, C, H, W) -> (B, C') mean of the teacher's (B, C', h, w) patch map
            return model.teacher.module.backbone.encode(images).patch_map.mean(dim=(2, 3))

    loaders = [Runner.build_dataloader(cfg[name], seed=0) for name in ('knn_bank_dataloader', 'knn_query_dataloader')]
    bank_size = len(loaders[0].dataset)
    classes = len(loaders[0].dataset.metainfo.get('classes') or [])
    if args.num_classes is not None and classes and args.num_classes < classes:
        sys.exit(f'error: --num-classes {args.num_classes} is below the {classes} classes of the bank dataset')
    k = min(args.k, bank_size)  # what knn_predict uses
    if k < args.k:
        print(f'warning: --k {args.k} is more than the {bank_size} bank images; using k={k}', file=sys.stderr)
    print(f'k-NN: {bank_size} bank images, {len(loaders[1].dataset)} query images')
    top1 = knn_evaluate(encode, model, *loaders, args.num_classes, k, args.temperature)
    print()
    print(f'k-NN top-1 ({args.feature}, k={k}, T={args.temperature}): {top1:.2f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(knn_top1=round(top1, 2)), f)


if __name__ == '__main__':
    main()
