"""Weighted k-NN classification on frozen features (DINO's evaluation protocol)."""

from typing import Callable, Iterable, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.utils import ProgressBar


@torch.no_grad()
def knn_predict(
    bank_feats: torch.Tensor,
    bank_labels: torch.Tensor,
    query_feats: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Predicted class of each query (DINO's weighted k-NN).

    Features are L2-normalised; each query takes its ``k`` most cosine-similar bank features, and neighbour
    ``j`` votes for its label with weight ``exp(sim_j / temperature)``.

    Args:
        bank_feats (Tensor): (M, C) features of the labelled bank (training set).
        bank_labels (Tensor): (M,) int labels of the bank.
        query_feats (Tensor): (Q, C) features to classify.
        num_classes (int): number of classes.
        k (int): neighbours. Defaults to 20.
        temperature (float): vote temperature. Defaults to 0.07.
        chunk_size (int): queries per matrix product (bounds memory at chunk_size x M).

    Returns:
        Tensor: (Q,) predicted labels.
    """
    if k < 1:
        raise ValueError(f'knn_predict: k must be >= 1, got {k}')
    if bank_feats.shape[0] != bank_labels.shape[0]:
        raise ValueError(f'knn_predict: {bank_feats.shape[0]} bank features but {bank_labels.shape[0]} labels')
    k = min(k, bank_feats.shape[0])
    bank = F.normalize(bank_feats.float(), dim=1)
    labels = bank_labels.long()
    preds = []
    for start in range(0, query_feats.shape[0], chunk_size):
        query = F.normalize(query_feats[start : start + chunk_size].float(), dim=1)
        sim, idx = (query @ bank.t()).topk(k, dim=1)  # (q, k) cosine similarities of the neighbours
        votes = torch.zeros(query.shape[0], num_classes, device=query.device)
        votes.scatter_add_(1, labels[idx], (sim / temperature).exp())
        preds.append(votes.argmax(dim=1))
    return torch.cat(preds)


def knn_top1(bank_feats, bank_labels, query_feats, query_labels, num_classes, k=20, temperature=0.07) -> float:
    """k-NN top-1 accuracy in percent (see :func:`knn_predict`)."""
    preds = knn_predict(bank_feats, bank_labels, query_feats, num_classes, k, temperature)
    return (preds == query_labels.long().to(preds.device)).float().mean().item() * 100


@torch.no_grad()
def extract_features(
    encode: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
    num_batches: Optional[int] = None,
    progress: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run ``encode`` over (images, labels) batches with a progress bar; returns (features, labels)."""
    bar = ProgressBar(num_batches) if progress and num_batches else None
    feats, labels = [], []
    for images, targets in batches:
        out = encode(images)
        out = out[-1] if isinstance(out, (tuple, list)) else out
        if out.dim() == 4:  # feature map (Swin): global average pool
            out = out.mean(dim=(2, 3))
        feats.append(out.float().cpu())
        labels.append(targets.cpu())
        if bar is not None:
            bar.update()
    return torch.cat(feats), torch.cat(labels)
