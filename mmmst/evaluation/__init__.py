from .knn import dataloader_batches, extract_features, knn_evaluate, knn_predict, knn_top1, loader_features

__all__ = ['dataloader_batches', 'extract_features', 'knn_evaluate', 'knn_predict', 'knn_top1', 'loader_features']
