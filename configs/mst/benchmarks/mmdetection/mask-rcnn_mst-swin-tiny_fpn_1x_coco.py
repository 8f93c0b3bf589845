# COCO Mask R-CNN + FPN, 1x schedule, Swin-T initialised from an MST checkpoint (paper table 2: 42.7 box /
# 38.8 mask mAP with a 100-epoch pretraining). The checkpoint is given on the command line:
#   bash tools/benchmarks/mmdetection/dist_train.sh <this config> <mst checkpoint> 8
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmmst'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MSTSwinTransformer',
        arch='tiny',
        img_size=224,
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        # the teacher backbone of an MST pretraining checkpoint; `backbone.` for a converted one
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='teacher.module.backbone.'),
    ),
    neck=dict(in_channels=[96, 192, 384, 768]),
)

# Swin's detection recipe (mmdet configs/swin): AdamW 1e-4, wd 0.05, none on norms and position tables
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'relative_position_bias_table': dict(decay_mult=0.0),
                                    'norm': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
