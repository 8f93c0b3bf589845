# Fashion-MNIST (28 px, gray) with multi-crop views sized for a CPU: 2 global 28 px + 2 local 12 px.
# The idx files are un-gzipped into data_root by tools/dataset_converters/prepare_fashion_mnist.py (from Debian's
# dataset-fashion-mnist; `make demo` runs it first).
dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist/'
# The split pipeline, as on ImageNet: the worker crops and flips, the blur and solarize run on whole batches in
# the main process (measured on 2 cores: 0.585 s per iteration against 0.602 s with everything in the worker,
# medians of 5 interleaved rounds; docs/benchmarks.md).
data_preprocessor = dict(
    type='MultiCropDataPreprocessor',
    mean=[72.94],  # train-set statistics
    std=[90.02],
    color_jitter_prob=0.0,  # gray images: no colour jitter, no grayscale
    grayscale_prob=0.0,
)

train_pipeline = [
    dict(
        type='MultiCropViews',
        global_crop_size=28,
        local_crop_size=12,
        num_local_views=2,
        global_crop_scale=(0.4, 1.0),
        local_crop_scale=(0.05, 0.4),
        photometric=False,
    ),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='ResumableSampler', shuffle=True),  # DefaultSampler that can start inside an epoch
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
