from .knn import extract_features, knn_predict, knn_top1

__all__ = ['extract_features', 'knn_predict', 'knn_top1']
