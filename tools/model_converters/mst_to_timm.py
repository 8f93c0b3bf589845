"""Write the teacher (or student) ViT backbone of an MST checkpoint as a timm model's state dict.

    python tools/model_converters/mst_to_timm.py work_dirs/mst/epoch_100.pth mst_vit-s16_timm.pth
    python tools/model_converters/mst_to_timm.py in.pth out.pth --student

Then, in plain PyTorch with timm (DeiT-S/16 pretraining: ``vit_small_patch16_224``; another shape: the arguments
this tool prints):

    model = timm.create_model('vit_small_patch16_224', num_classes=0)
    model.load_state_dict(torch.load('mst_vit-s16_timm.pth'))
    features = model(images)  # (B, 384): the CLS token after the final norm, what MST's k-NN evaluates

The backbone's shape comes from the config saved in the checkpoint (``--config`` gives it for a checkpoint without
one). Only ViT backbones convert: timm's Swin numbers its stages and merges patches in another layout.
"""

import argparse
import os
import os.path as osp
import sys

import torch

TIMM_NAMES = {  # timm model names of MSTViT shapes: (embed dim, depth, heads, patch, image size)
    (384, 12, 6, 16, 224): 'vit_small_patch16_224',
    (768, 12, 12, 16, 224): 'vit_base_patch16_224',
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='MST pretraining checkpoint')
    parser.add_argument('dst', help='output: a timm VisionTransformer state dict')
    parser.add_argument('--student', action='store_true', help='take the student backbone instead of the teacher')
    parser.add_argument('--config', help="the checkpoint's pretraining config, when the checkpoint has none saved")
    args = parser.parse_args(argv)
    for path in (args.src, args.config or args.src):
        if not osp.isfile(path):
            sys.exit(f'error: {path!r} does not exist')
    if osp.realpath(args.dst) == osp.realpath(args.src):
        sys.exit(f'error: the output {args.dst!r} is the input checkpoint; give another file name')
    from mmengine.config import Config
    from mmengine.runner import CheckpointLoader

    from mmmst.apis.export import mst_backbone_state, timm_vit_kwargs, vit_to_timm
    from mmmst.engine.safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError

    try:
        checkpoint = CheckpointLoader.load_checkpoint(args.src, map_location='cpu', logger='silent')
        backbone = mst_backbone_state(checkpoint, 'student' if args.student else 'teacher', args.src)
    except KeyError as err:
        sys.exit(f'error: {err.args[0]}')
    except (CorruptCheckpointError, UnsafeCheckpointError) as err:
        sys.exit(f'error: {err}')
    try:
        state = vit_to_timm(backbone)
    except KeyError as err:
        sys.exit(f'error: {args.src}: {err.args[0]}')
    saved = checkpoint.get('meta', {}).get('cfg')
    if args.config:
        cfg = Config.fromfile(args.config)
    elif saved:
        cfg = Config.fromstring(saved, file_format='.py')
    else:
        sys.exit(f'error: {args.src} holds no config; give the pretraining config with --config')
    kwargs = timm_vit_kwargs(cfg.model.backbone)
    partial = f'{args.dst}.partial'  # an interrupted write never leaves a half file under the output's name
    torch.save(dict(state), partial)
    os.replace(partial, args.dst)
    shape = (kwargs['embed_dim'], kwargs['depth'], kwargs['num_heads'], kwargs['patch_size'], kwargs['img_size'])
    name = TIMM_NAMES.get(shape) if kwargs['in_chans'] == 3 and kwargs['mlp_ratio'] == 4 else None
    print(f'{len(state)} tensors written to {args.dst}; load them into')
    if name:
        print(f"    timm.create_model('{name}', num_classes=0)")
    else:
        arguments = ', '.join(f'{k}={v!r}' for k, v in kwargs.items())
        print(f'    timm.models.VisionTransformer({arguments})')


if __name__ == '__main__':
    main()
