# ImageNet-1k multi-crop with DINO's PIL pipeline: every augmentation per image in the dataloader workers
# (7x the worker time per image of the split pipeline's worker stage on 2 CPU cores; docs/benchmarks.md).
_base_ = './imagenet_bs128_mst.py'

data_preprocessor = dict(_delete_=True, type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageWithPath'),
    dict(type='MultiCropViews', global_crop_size=224, local_crop_size=96, num_local_views=8,
         global_crop_scale=(0.4, 1.0), local_crop_scale=(0.05, 0.4), photometric=True),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
