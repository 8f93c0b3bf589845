"""Extract the teacher (or student) backbone of an MST pretraining checkpoint.

    python tools/model_converters/mst_to_backbone.py work_dirs/mst/epoch_100.pth mst_deit-s_backbone.pth
    python tools/model_converters/mst_to_backbone.py in.pth out.pth --student

The output holds ``{'state_dict': {'backbone.<name>': tensor}}``, which plain mmpretrain / mmdet / mmseg models
load with ``init_cfg=dict(type='Pretrained', checkpoint='out.pth', prefix='backbone.')``. The [MASK] token is
dropped: downstream backbones do not have it.
"""

import argparse
import os.path as osp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='MST pretraining checkpoint')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument('--student', action='store_true', help='take the student backbone instead of the teacher')
    parser.add_argument(
        '--force', action='store_true', help='replace an existing output that is not what this tool writes'
    )
    args = parser.parse_args(argv)
    import mmmst  # noqa: F401  (weights-only loading of mmengine checkpoints)
    from mmmst.apis.export import read_backbone, save_atomically
    from mmmst.errors import exit_on_refusal

    with exit_on_refusal():
        _, backbone = read_backbone(args.src, args.dst, 'student' if args.student else 'teacher', force=args.force)
        state_dict = {'backbone.' + key: value for key, value in backbone.items()}
        save_atomically(dict(state_dict=state_dict, meta=dict(source=osp.abspath(args.src))), args.dst)
    print(f'{len(state_dict)} backbone tensors written to {args.dst}')


if __name__ == '__main__':
    main()
