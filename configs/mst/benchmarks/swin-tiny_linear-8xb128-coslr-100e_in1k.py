# Linear probe of an MST Swin-T: frozen backbone, globally pooled final stage, one linear layer.
_base_ = './deit-small-p16_linear-8xb128-coslr-100e_in1k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='MSTSwinTransformer',
        arch='tiny',
        img_size=224,
        out_indices=(3,),
        frozen_stages=3,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='teacher.module.backbone.'),
    ),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(in_channels=768),
)
