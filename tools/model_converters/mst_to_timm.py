"""Write the teacher (or student) backbone of an MST checkpoint as a timm model's state dict (ViT or Swin).

    python tools/model_converters/mst_to_timm.py work_dirs/mst/epoch_100.pth mst_vit-s16_timm.pth
    python tools/model_converters/mst_to_timm.py in.pth out.pth --student

Then, in plain PyTorch with timm (DeiT-S/16 pretraining: ``vit_small_patch16_224``; another shape: the arguments
this tool prints):

    model = timm.create_model('vit_small_patch16_224', num_classes=0)
    model.load_state_dict(torch.load('mst_vit-s16_timm.pth'))
    features = model(images)  # (B, 384): the CLS token after the final norm, what MST's k-NN evaluates

Swin-T: ``timm.create_model('swin_tiny_patch4_window7_224', num_classes=0, always_partition=True)``; its features
are the average of the last stage's normalised map. ``always_partition=True`` keeps timm shifting windows in the
last stage (7 x 7 at 224 px) as MST's Swin does; the patch-merging weights are reordered to timm's channel order.

The backbone's shape comes from the config saved in the checkpoint (``--config`` gives it for a checkpoint without
one).
"""

import argparse
import sys

TIMM_VITS = {  # timm model names of MSTViT shapes: (embed dim, depth, heads, patch, image size)
    (384, 12, 6, 16, 224): 'vit_small_patch16_224',
    (768, 12, 12, 16, 224): 'vit_base_patch16_224',
}
TIMM_SWINS = {  # ... and of MSTSwinTransformer shapes: (embed dim, depths, patch, window, image size)
    (96, (2, 2, 6, 2), 4, 7, 224): 'swin_tiny_patch4_window7_224',
    (96, (2, 2, 18, 2), 4, 7, 224): 'swin_small_patch4_window7_224',
    (128, (2, 2, 18, 2), 4, 7, 224): 'swin_base_patch4_window7_224',
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='MST pretraining checkpoint')
    parser.add_argument('dst', help='output: a timm VisionTransformer state dict')
    parser.add_argument('--student', action='store_true', help='take the student backbone instead of the teacher')
    parser.add_argument('--config', help="the checkpoint's pretraining config, when the checkpoint has none saved")
    parser.add_argument(
        '--force', action='store_true', help='replace an existing output that is not what this tool writes'
    )
    args = parser.parse_args(argv)
    from mmmst.files import unreadable_file

    if args.config and unreadable_file(args.config):
        sys.exit(f'error: config {args.config!r} {unreadable_file(args.config)}')
    from mmengine.config import Config

    import mmmst  # noqa: F401  (weights-only loading, the backbones)
    from mmmst.apis.export import read_backbone
    from mmmst.apis.timm_format import TimmFormatError, write_timm
    from mmmst.errors import exit_on_refusal

    with exit_on_refusal():
        checkpoint, backbone = read_backbone(
            args.src, args.dst, 'student' if args.student else 'teacher', kind='timm', force=args.force
        )
    saved = checkpoint.get('meta', {}).get('cfg')
    if args.config:
        cfg = Config.fromfile(args.config)
    elif saved:
        cfg = Config.fromstring(saved, file_format='.py')
    else:
        sys.exit(f'error: {args.src} holds no config; give the pretraining config with --config')
    backbone_cfg = cfg.model.backbone.to_dict()
    swin = 'Swin' in backbone_cfg['type']
    with exit_on_refusal():
        if args.config and saved:
            saved_backbone = Config.fromstring(saved, file_format='.py').model.backbone.to_dict()
            differ = sorted(
                k for k in set(saved_backbone) | set(backbone_cfg) if saved_backbone.get(k) != backbone_cfg.get(k)
            )
            if differ:
                pairs = ', '.join(f'{k}: {backbone_cfg.get(k)!r} vs {saved_backbone.get(k)!r}' for k in differ[:3])
                raise TimmFormatError(
                    f'--config {args.config} gives another backbone than the one saved in {args.src} ({pairs}); '
                    f'leave --config out to use the saved one'
                )
        state = write_timm(backbone, backbone_cfg, args.dst, what=args.src)
    print(f'{len(state)} tensors written to {args.dst}; load them into')
    print(f'    {timm_model(backbone_cfg, swin)}')


def timm_model(backbone_cfg, swin: bool) -> str:
    """The timm call that builds a model of this backbone's shape: a named model when there is one."""
    from mmmst.apis.timm_format import timm_swin_kwargs, timm_vit_kwargs

    kwargs = timm_swin_kwargs(backbone_cfg) if swin else timm_vit_kwargs(backbone_cfg)
    if swin:
        shape = (kwargs['embed_dim'], kwargs['depths'], kwargs['patch_size'], kwargs['window_size'], kwargs['img_size'])
        name = TIMM_SWINS.get(shape) if kwargs['in_chans'] == 3 else None
        extra = ', always_partition=True' if kwargs['always_partition'] else ''
    else:
        shape = (kwargs['embed_dim'], kwargs['depth'], kwargs['num_heads'], kwargs['patch_size'], kwargs['img_size'])
        name = TIMM_VITS.get(shape) if kwargs['in_chans'] == 3 and kwargs['mlp_ratio'] == 4 else None
        extra = ''
    if name:
        return f"timm.create_model('{name}', num_classes=0{extra})"
    arguments = ', '.join(f'{k}={v!r}' for k, v in kwargs.items())
    return f'timm.models.{"SwinTransformer" if swin else "VisionTransformer"}({arguments})'


if __name__ == '__main__':
    main()
