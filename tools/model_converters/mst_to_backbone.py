"""Extract the teacher (or student) backbone of an MST pretraining checkpoint.

    python tools/model_converters/mst_to_backbone.py work_dirs/mst/epoch_100.pth mst_deit-s_backbone.pth
    python tools/model_converters/mst_to_backbone.py in.pth out.pth --student

The output holds ``{'state_dict': {'backbone.<name>': tensor}}``, which plain mmpretrain / mmdet / mmseg models
load with ``init_cfg=dict(type='Pretrained', checkpoint='out.pth', prefix='backbone.')``. The [MASK] token is
dropped: downstream backbones do not have it.
"""

import argparse
import os
import os.path as osp
import sys

import torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='MST pretraining checkpoint')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument('--student', action='store_true', help='take the student backbone instead of the teacher')
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        sys.exit(f'error: checkpoint {args.src!r} does not exist')
    if osp.realpath(args.dst) == osp.realpath(args.src):
        sys.exit(f'error: the output {args.dst!r} is the input checkpoint; give another file name')
    from mmengine.runner import CheckpointLoader

    import mmmst  # noqa: F401  (weights-only loading of mmengine checkpoints)
    from mmmst.apis.export import mst_backbone_state
    from mmmst.engine.safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError

    try:
        checkpoint = CheckpointLoader.load_checkpoint(args.src, map_location='cpu', logger='silent')
        backbone = mst_backbone_state(checkpoint, 'student' if args.student else 'teacher', args.src)
        state_dict = {'backbone.' + key: value for key, value in backbone.items()}
    except KeyError as err:
        sys.exit(f'error: {err.args[0]}')
    except (CorruptCheckpointError, UnsafeCheckpointError) as err:
        sys.exit(f'error: {err}')
    # written next to the output, then renamed: an interrupted write never leaves a half file under its name
    partial = f'{args.dst}.partial'
    torch.save(dict(state_dict=state_dict, meta=dict(source=osp.abspath(args.src))), partial)
    os.replace(partial, args.dst)
    print(f'{len(state_dict)} backbone tensors written to {args.dst}')


if __name__ == '__main__':
    main()
