# Cityscapes, UperNet, 512 x 1024 crops, 80k iterations, Swin-T from an MST checkpoint.
_base_ = './upernet_mst-deit-small-p16_8xb2-80k_cityscapes-512x1024.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MSTSwinTransformer',
        arch='tiny',
        img_size=224,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='teacher.module.backbone.'),
    ),
    neck=None,  # Swin is already multi-scale
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384, in_index=2),
)

# mmseg's Swin UperNet recipe: AdamW 6e-5, wd 0.01, no decay on norms and the relative position tables
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0), 'relative_position_bias_table': dict(decay_mult=0.0),
                                    'absolute_pos_embed': dict(decay_mult=0.0)}),
)
