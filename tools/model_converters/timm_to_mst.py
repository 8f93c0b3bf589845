"""Start MST from a public backbone: convert a timm, DINO or DeiT checkpoint into weights an MST config starts from.

    python tools/model_converters/timm_to_mst.py dino_deitsmall16_pretrain.pth dino_vits16_mst.pth \
        --config configs/mst/mst_vit-small-p16_1xb64-amp-coslr-100e_custom.py
    python tools/model_converters/timm_to_mst.py swin_tiny.safetensors swin_t_mst.pth --config <a Swin-T config>

Reads a timm ``VisionTransformer`` / ``SwinTransformer`` state dict (``.pth`` or ``.safetensors``), DINO's released
backbone or full checkpoint (``--student`` for its student), DeiT's and the official Swin release, or an mmpretrain
classifier checkpoint; weights-only, nothing in the file is run. Heads are left behind: MST's projection head and
decoder start fresh. The weights are checked against the config's backbone: a patch size, width or depth that
differs stops here, naming both; the position embedding is resampled to the config's image size.

The output holds ``{'state_dict': {'backbone.<name>': tensor}}``; the config starts from it with one line

    model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='<dst>', prefix='backbone.')))

and MST starts its teacher equal to the student (the [MASK] token is the one weight the log reports missing).
The inverse is ``mst_to_timm.py``.
"""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='public checkpoint: timm (.pth, .safetensors), DINO, DeiT, Swin, mmpretrain')
    parser.add_argument('dst', help='output: backbone weights an MST config starts from')
    parser.add_argument('--config', required=True, help='the MST config that will start from them')
    parser.add_argument('--student', action='store_true', help="DINO's full checkpoint: take the student")
    parser.add_argument(
        '--force', action='store_true', help='replace an existing output that is not what this tool writes'
    )
    args = parser.parse_args(argv)
    from mmmst.files import unreadable_file

    if unreadable_file(args.config):
        sys.exit(f'error: config {args.config!r} {unreadable_file(args.config)}')
    from mmengine.config import Config

    import mmmst  # noqa: F401  (registers the backbones)
    from mmmst.apis.timm_import import write_imported_backbone
    from mmmst.errors import exit_on_refusal

    cfg = Config.fromfile(args.config)
    with exit_on_refusal():
        state, notes = write_imported_backbone(
            args.src,
            args.dst,
            cfg.model.backbone.to_dict(),
            'student' if args.student else 'teacher',
            args.config,
            force=args.force,
        )
    print(f'{len(state)} backbone tensors written to {args.dst} ({"; ".join(notes)}); start MST from them with')
    init_cfg = f"dict(type='Pretrained', checkpoint={args.dst!r}, prefix='backbone.')"
    print(f'    model = dict(backbone=dict(init_cfg={init_cfg}))')


if __name__ == '__main__':
    main()
