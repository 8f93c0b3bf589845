# A folder of unlabeled images: any depth of sub-folders, any of the extensions below, no labels, no annotation
# file. `data_root` is the one value to set (`--cfg-options train_dataloader.dataset.data_root=<folder>`).
# DINO's multi-crop views as on ImageNet (the split pipeline: crops in the workers, colours on the device).
# An unreadable file stops the run naming it; `...pipeline.0.skip_unreadable=True` skips it with a warning instead.
dataset_type = 'CustomDataset'
data_root = 'data/my_images/'
extensions = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')
data_preprocessor = dict(
    type='MultiCropDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

train_pipeline = [
    dict(type='LoadImageWithPath', skip_unreadable=False),
    dict(
        type='MultiCropViews',
        global_crop_size=224,
        local_crop_size=96,
        num_local_views=8,
        photometric=False,
        backend='cv2',
    ),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='ResumableSampler', shuffle=True),  # DefaultSampler that can start inside an epoch
    collate_fn=dict(type='default_collate'),
    drop_last=True,
    dataset=dict(
        type=dataset_type, data_root=data_root, with_label=False, extensions=extensions, pipeline=train_pipeline
    ),
)
