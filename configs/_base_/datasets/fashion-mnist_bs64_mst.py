# Fashion-MNIST (28 px, gray) with multi-crop views sized for a CPU: 2 global 28 px + 2 local 12 px.
# The idx files are un-gzipped into data_root by tools/demo.py (from Debian's dataset-fashion-mnist).
dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist/'
data_preprocessor = dict(type='SelfSupDataPreprocessor', mean=[72.94], std=[90.02])  # train-set statistics

train_pipeline = [
    dict(
        type='MultiCropViews',
        global_crop_size=28,
        local_crop_size=12,
        num_local_views=2,
        global_crop_scale=(0.4, 1.0),
        local_crop_scale=(0.05, 0.4),
        color_jitter_prob=0.0,  # gray images: no colour jitter, no grayscale
        grayscale_prob=0.0,
    ),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    drop_last=True,
    # a 10k-image subset: several epochs fit a CPU budget, and DINO-style training needs epochs
    dataset=dict(type=dataset_type, data_root=data_root, download=False, indices=10000, pipeline=train_pipeline),
)

# labelled loaders for k-NN (bank: training images, query: test images)
knn_bank_dataloader = dict(
    batch_size=256,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, download=False, pipeline=test_pipeline),
)
knn_query_dataloader = dict(
    batch_size=256,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, download=False, split='test', test_mode=True,
                 pipeline=test_pipeline),
)
