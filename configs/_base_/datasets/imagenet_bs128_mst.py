# ImageNet-1k (ImageNet folder tree) with DINO's multi-crop views: 2 x 224 px global + 8 x 96 px local.
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

train_pipeline = [
    dict(type='LoadImageWithPath'),  # an unreadable file is named; skip_unreadable=True skips it with a warning
    # DINO recipe (docs/design.md): crop scales, flip, colour jitter, grayscale, blur, solarize per view
    dict(
        type='MultiCropViews',
        global_crop_size=224,
        local_crop_size=96,
        num_local_views=8,
        global_crop_scale=(0.4, 1.0),
        local_crop_scale=(0.05, 0.4),
    ),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    drop_last=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
