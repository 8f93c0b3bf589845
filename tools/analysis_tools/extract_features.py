"""Teacher features of every image in a folder, and a picture of each query's nearest neighbours: judging a
pretraining without labels.

    python tools/analysis_tools/extract_features.py <pretraining config> <checkpoint> <folder> --out features.npz
    python tools/analysis_tools/extract_features.py <config> <checkpoint> <folder> --out features.npz \\
        --neighbours neighbours.png --num-queries 8 --k 5

``features.npz`` holds ``features`` (N, C) float32, the teacher's CLS features L2-normalised (what MST's k-NN
compares), and ``paths`` (N,), each image's path relative to the folder. Images are read recursively with the
config's extensions, resized (shorter side) and centre-cropped to the config's global view size. The picture has
one row per query image (spread evenly over the folder), followed by its ``k`` nearest neighbours in the folder
and their cosine similarities. Where every image sits in a class sub-folder (two or more), the k-NN top-1 by
folder name is printed too (20 neighbours, T = 0.07, each image voted on by all the others).
"""

import argparse
import copy
import os
import os.path as osp
import sys

import numpy as np

from mmmst.apis import image_loader_cfg, init_model
from mmmst.cli import CfgOptionsAction, load_checked_config
from mmmst.cli.config_checks import CUSTOM_EXTENSIONS, check_folder_has_images
from mmmst.errors import ConfigError, exit_on_refusal


def folder_labels(paths):
    """Class indices from each path's first folder, or None unless every image is in one of >= 2 sub-folders."""
    folders = [p.split(os.sep)[0] if os.sep in p else None for p in paths]
    names = sorted(set(folders))
    if None in names or len(names) < 2:
        return None, names
    return np.array([names.index(f) for f in folders]), names


#: what ``--neighbours`` can be written as (OpenCV's encoders)
PICTURE_SUFFIXES = ('.png', '.jpg', '.jpeg')


def check_outputs(folder: str, out: str, neighbours) -> None:
    """Refuse, before any work, outputs that would overwrite an input or be written under another name: anything
    inside the folder read, a directory, ``--out`` not ending in ``.npz`` (numpy would append it), a picture in a
    format without an encoder, both outputs on one file; make their folders, and try writing there.

    Raises:
        ConfigError: naming the option and the path.
    """
    outputs = [('--out', out, ('.npz',))] + ([('--neighbours', neighbours, PICTURE_SUFFIXES)] if neighbours else [])
    inside = osp.realpath(folder) + os.sep
    for option, path, suffixes in outputs:
        if osp.isdir(path):
            raise ConfigError(f'{option} {path!r} is a directory; give a file name ending in {suffixes[0]}')
        if not path.lower().endswith(suffixes):
            raise ConfigError(f'{option} {path!r} must end in {" or ".join(suffixes)}')
        if osp.realpath(path).startswith(inside):
            raise ConfigError(f'{option} {path!r} is inside the folder read ({folder}); write it elsewhere')
    if neighbours and osp.realpath(neighbours) == osp.realpath(out):
        raise ConfigError(f'--out and --neighbours are the same file {out!r}')
    for option, path, _ in outputs:
        try:
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
            with open(f'{path}.partial', 'wb'):
                pass
            os.remove(f'{path}.partial')
        except OSError as err:
            raise ConfigError(f'{option} {path!r} cannot be written: {err.strerror}') from None


def files_pipeline(backbone_cfg) -> list:
    """Image files read as the backbone expects them (channels, size), for a config whose k-NN pipeline starts from
    images already in memory (Fashion-MNIST's idx files): gray or colour, PIL-bicubic shorter side, centre crop."""
    size = backbone_cfg.get('img_size', 224)
    gray = backbone_cfg.get('in_channels', 3) == 1
    return [
        dict(type='LoadImageWithPath', color_type='grayscale' if gray else 'color'),
        dict(type='ResizeEdge', scale=size, edge='short', backend='pillow', interpolation='bicubic'),
        dict(type='CenterCrop', crop_size=size),
        dict(type='PackInputs'),
    ]


def encode_folder(model, dataset_cfg, folder, batch_size):
    """(N, C) L2-normalised teacher CLS features of every readable image, and their paths relative to ``folder``.

    An unreadable file is skipped with a warning naming it, so that features and paths stay aligned."""
    import torch
    from mmengine.dataset import Compose, default_collate
    from mmengine.registry import DATASETS
    from mmengine.utils import ProgressBar

    from mmmst.datasets.transforms.loading import UnreadableImageError
    from mmmst.evaluation import image_features

    dataset = DATASETS.build(dataset_cfg)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    pipeline = Compose(dataset_cfg.pipeline)
    print(f'{len(infos)} images in {folder}')
    features, paths, batch, skipped = [], [], [], []
    bar = ProgressBar(len(infos))

    def flush():
        data = model.data_preprocessor(default_collate(batch), False)
        with torch.no_grad():
            features.append(image_features(model.extract_feat(data['inputs'])).float().cpu())  # Swin: pooled
        batch.clear()

    for info in infos:
        try:
            packed = pipeline(dict(img_path=info['img_path']))
        except UnreadableImageError as err:
            packed = str(err)
        if isinstance(packed, dict):
            batch.append(packed)
            paths.append(osp.relpath(info['img_path'], folder))
        else:  # the loader's own skip_unreadable returns None, having logged why
            skipped.append(packed or f'{info["img_path"]}: cannot read this image')
        bar.update()
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    print()
    for message in skipped:
        print(f'warning: skipped {message}', file=sys.stderr)
    if not paths:
        sys.exit(f'error: none of the {len(infos)} images in {folder} could be read')
    return torch.nn.functional.normalize(torch.cat(features), dim=1), paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the pretraining config of the checkpoint')
    parser.add_argument('checkpoint')
    parser.add_argument('folder', help='a folder of images (any depth of sub-folders)')
    parser.add_argument('--out', required=True, help='the .npz file to write')
    parser.add_argument('--neighbours', help='also draw the nearest neighbours to this PNG file')
    parser.add_argument('--num-queries', type=int, default=8, help='query images in the picture')
    parser.add_argument('--k', type=int, default=5, help='neighbours per query in the picture')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    args = parser.parse_args(argv)
    for name in ('num_queries', 'k', 'batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            sys.exit(f'error: {path!r} does not exist')
    if not osp.isdir(args.folder):
        sys.exit(f'error: {args.folder!r} is not a folder')
    with exit_on_refusal():
        check_outputs(args.folder, args.out, args.neighbours)

    import torch

    from mmmst.evaluation import knn_top1_leave_one_out, nearest_neighbours

    with exit_on_refusal():
        cfg = load_checked_config(args.config, args.cfg_options, loaders=())
        loader_cfg = copy.deepcopy(image_loader_cfg(cfg))
        dataset = loader_cfg.dataset
        dataset.update(type='ImageFolderDataset', data_root=args.folder, with_label=False, data_prefix='', ann_file='')
        for key in ('split', 'indices', 'download'):  # the idx data set's options (the demo's config)
            dataset.pop(key, None)
        if not any(t['type'].startswith('LoadImage') for t in dataset.pipeline):
            dataset.pipeline = files_pipeline(cfg.model.backbone)  # a config of in-memory images (idx files)
        check_folder_has_images('folder', args.folder, dataset.get('extensions') or CUSTOM_EXTENSIONS)
        model = init_model(cfg, args.checkpoint)
    features, paths = encode_folder(model, loader_cfg.dataset, args.folder, args.batch_size)
    partial = f'{args.out}.partial'
    with open(partial, 'wb') as f:  # a file object: numpy writes exactly this name, no ".npz" appended
        np.savez(f, features=features.numpy().astype(np.float32), paths=np.array(paths))
    os.replace(partial, args.out)
    print(f'written: {args.out} ({features.shape[0]} x {features.shape[1]} teacher CLS features, L2-normalised)')

    labels, names = folder_labels(paths)
    if labels is not None:
        top1 = knn_top1_leave_one_out(features, torch.from_numpy(labels), len(names))
        print(f'k-NN top-1 by folder name ({len(names)} folders, 20 neighbours, leave-one-out): {top1:.2f}')
    if args.neighbours:
        import mmcv

        from mmmst.visualization import visualizer

        sims, idxs = nearest_neighbours(features, args.k)
        queries = np.linspace(0, len(paths) - 1, min(args.num_queries, len(paths))).round().astype(int)
        size = next(t['crop_size'] for t in loader_cfg.dataset.pipeline if t['type'] == 'CenterCrop')

        def image(i):
            loaded = mmcv.imread(osp.join(args.folder, paths[i]), channel_order='rgb')
            return mmcv.imresize(loaded, (size, size))

        visualizer().visualize_neighbours(
            [image(q) for q in queries],
            [[image(j) for j in idxs[q].tolist()] for q in queries],
            [sims[q].tolist() for q in queries],
            titles=[paths[q] for q in queries],
            out_file=args.neighbours,
        )
        print(f'written: {args.neighbours}')


if __name__ == '__main__':
    main()
