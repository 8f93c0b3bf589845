# ImageNet-1k (ImageNet folder tree) with DINO's multi-crop views: 2 x 224 px global + 8 x 96 px local.
# The split pipeline: dataloader workers decode, crop and flip (uint8); the colour jitter, grayscale, blur,
# solarize and normalisation run on whole batches on the model's device (MultiCropDataPreprocessor).
# DINO's PIL pipeline, everything in the workers: `_base_` imagenet_bs128_mst-pil.py instead of this file.
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'
data_preprocessor = dict(
    type='MultiCropDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
    # DINO recipe (docs/design.md): per view (global 1, global 2, locals)
    color_jitter_prob=0.8,
    grayscale_prob=0.2,
    blur_probs=(1.0, 0.1, 0.5),
    solarize_probs=(0.0, 0.2, 0.0),
)

train_pipeline = [
    dict(type='LoadImageWithPath'),  # an unreadable file is named; skip_unreadable=True skips it with a warning
    # DINO recipe: bicubic random resized crops (global 0.4-1, local 0.05-0.4 of the area), flip 0.5. Resized
    # by OpenCV (no antialiasing; DINO: PIL, backend='pillow'), the deliberate deviation that buys the worker speed
    dict(
        type='MultiCropViews',
        global_crop_size=224,
        local_crop_size=96,
        num_local_views=8,
        global_crop_scale=(0.4, 1.0),
        local_crop_scale=(0.05, 0.4),
        photometric=False,
        backend='cv2',
    ),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='ResumableSampler', shuffle=True),  # DefaultSampler that can start inside an epoch
    collate_fn=dict(type='default_collate'),
    drop_last=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
