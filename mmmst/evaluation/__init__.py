from .knn import (
    dataloader_batches,
    extract_features,
    image_features,
    knn_evaluate,
    knn_predict,
    knn_top1,
    knn_top1_leave_one_out,
    loader_features,
    nearest_neighbours,
)

__all__ = [
    'dataloader_batches',
    'extract_features',
    'image_features',
    'knn_evaluate',
    'knn_predict',
    'knn_top1',
    'knn_top1_leave_one_out',
    'loader_features',
    'nearest_neighbours',
]
