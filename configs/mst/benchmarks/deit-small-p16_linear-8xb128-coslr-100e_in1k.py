# Linear probe of an MST DeiT-S/16 (DINO protocol): frozen backbone, the CLS tokens of the last 4 blocks
# (each through the final norm) concatenated, one linear layer, SGD, 100 epochs.
#   bash tools/dist_train.sh configs/mst/benchmarks/deit-small-p16_linear-8xb128-coslr-100e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/<pretrain>/epoch_100.pth
_base_ = [
    '../../_base_/datasets/imagenet_bs128_linear.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MSTViT',
        arch='deit-small',
        img_size=224,
        patch_size=16,
        out_indices=[8, 9, 10, 11],
        out_type='cls_token',
        norm_out_indices=True,
        frozen_stages=12,
        # the teacher backbone of an MST pretraining checkpoint (or `backbone.` for a converted one)
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='teacher.module.backbone.'),
    ),
    neck=dict(type='ConcatNeck'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=384 * 4,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=dict(type='Normal', std=0.01, layer='Linear'),
    ),
)

# DINO: SGD, lr 0.001 x batch / 256 (its sweep's best for ViT-S is close to 4x that), no weight decay
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.004 * 1024 / 256, momentum=0.9, weight_decay=0.0))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=100, by_epoch=True, begin=0, end=100, eta_min=0.0)]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)
