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

# ViT fine-tuning recipe of mmseg's MAE / BEiT UperNet configs: AdamW 1e-4, wd 0.05, layer-wise lr decay 0.65
# (block i of 12 gets lr x 0.65 ** (13 - (i + 1)), the embeddings 0.65 ** 13, neck and heads the full lr), no
# decay on 1-D parameters (norms, biases), the position embedding and the CLS token.
# `--cfg-options optim_wrapper.paramwise_cfg.layer_decay_rate=1.0` turns the decay off.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='mmpretrain.BackboneLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        flat_decay_mult=0.0,
        custom_keys={'.pos_embed': dict(decay_mult=0.0), '.cls_token': dict(decay_mult=0.0)},
    ),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=80000, by_epoch=False),
]
