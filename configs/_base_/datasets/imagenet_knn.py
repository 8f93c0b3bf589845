# ImageNet-1k labelled loaders for k-NN: bank = train, query = val, DINO's test-time resize + centre crop.
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)

test_pipeline = [
    dict(type='LoadImageWithPath'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
knn_bank_dataloader = dict(
    batch_size=128,
    num_workers=10,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet/', split='train', pipeline=test_pipeline),
)
knn_query_dataloader = dict(
    batch_size=128,
    num_workers=10,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet/', split='val', pipeline=test_pipeline),
)
