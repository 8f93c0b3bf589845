# k-NN evaluation of an MST Swin-T checkpoint (the teacher's pooled final stage).
_base_ = [
    '../../_base_/models/mst_swin-tiny.py',
    '../../_base_/datasets/imagenet_knn.py',
    '../../_base_/default_runtime.py',
]
