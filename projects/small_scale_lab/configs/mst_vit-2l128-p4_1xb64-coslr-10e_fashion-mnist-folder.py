# The demo's recipe (configs/mst/mst_vit-2l128-p4_1xb64-coslr-10e_fashion-mnist.py), read from a folder of PNG
# images instead of the idx files: pretraining from the unlabeled folder path (CustomDataset, with_label=False, as
# the _custom configs), k-NN with labels from the class folder names. The folder comes from
#   python tools/dataset_converters/fashion_mnist_to_folder.py data/fashion_mnist data/fashion_mnist_png
_base_ = ['../../../configs/mst/mst_vit-2l128-p4_1xb64-coslr-10e_fashion-mnist.py']

folder = 'data/fashion_mnist_png/'
gray = dict(type='LoadImageWithPath', color_type='grayscale')
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=folder + 'train',
        with_label=False,
        pipeline=[
            gray,
            dict(type='MultiCropViews', global_crop_size=28, local_crop_size=12, num_local_views=2, photometric=False),
            dict(type='PackInputs'),
        ],
    )
)
knn_bank_dataloader = dict(
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root=folder + 'train', pipeline=[gray, dict(type='PackInputs')]
    )
)
knn_query_dataloader = dict(
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root=folder + 'test', pipeline=[gray, dict(type='PackInputs')]
    )
)
