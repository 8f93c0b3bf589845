# Cityscapes semantic segmentation, UperNet, 512 x 1024 crops, 80k iterations, DeiT-S/16 from an MST checkpoint
# (paper table 3: 74.7 mIoU, 82.35 mAcc). The checkpoint is given on the command line:
#   bash tools/benchmarks/mmsegmentation/dist_train.sh <this config> <mst checkpoint> 8
_base_ = [
    'mmseg::_base_/models/upernet_vit-b16_ln_mln.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmmst'], allow_failed_imports=False)

crop_size = (512, 1024)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MSTViT',
        arch='deit-small',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        out_type='featmap',
        out_indices=(2, 5, 8, 11),
        norm_out_indices=True,
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='teacher.module.backbone.'),
    ),
    neck=dict(in_channels=[384] * 4, out_channels=384),
    decode_head=dict(in_channels=[384] * 4, num_classes=19),
    auxiliary_head=dict(in_channels=384, num_classes=19),
)

# AdamW as mmseg's transformer recipes; no decay on norms, position embedding and tokens
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'pos_embed': dict(decay_mult=0.0), 'cls_token': dict(decay_mult=0.0),
                                    'mask_token': dict(decay_mult=0.0), 'norm': dict(decay_mult=0.0),
                                    'relative_position_bias_table': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=80000, by_epoch=False),
]
