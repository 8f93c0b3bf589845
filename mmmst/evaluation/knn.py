"""Weighted k-NN classification on frozen features (DINO's evaluation protocol).

The one k-NN path of mmmst: :func:`loader_features` (an encoder over a labelled dataloader, through the model's
data preprocessor) and :func:`knn_top1` (the weighted vote), joined by :func:`knn_evaluate`. ``KNNMonitorHook``,
``tools/analysis_tools/knn_eval.py`` and the demo all use them.
"""

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
    if not temperature > 0:
        raise ValueError(f'knn_predict: temperature must be > 0, got {temperature}')
    if bank_feats.shape[0] != bank_labels.shape[0]:
        raise ValueError(f'knn_predict: {bank_feats.shape[0]} bank features but {bank_labels.shape[0]} labels')
    k = min(k, bank_feats.shape[0])
    bank = F.normalize(bank_feats.float(), dim=1)
    labels = bank_labels.long()
    preds = []
    for start in range(0, query_feats.shape[0], chunk_size):
        query = F.normalize(query_feats[start : start + chunk_size].float(), dim=1)
        sim, idx = (query @ bank.t()).topk(k, dim=1)  # (q, k) cosine similarities of the neighbours
        preds.append(weighted_vote(sim, labels[idx], num_classes, temperature))
    return torch.cat(preds)


def weighted_vote(sim: torch.Tensor, neighbour_labels: torch.Tensor, num_classes: int, temperature: float):
    """DINO's vote: neighbour ``j`` (similarity ``sim_j``) adds ``exp(sim_j / temperature)`` to its label.

    Args:
        sim (Tensor): (Q, k) similarities of each query's neighbours.
        neighbour_labels (Tensor): (Q, k) their labels.

    Returns:
        Tensor: (Q,) the label with the most weight.
    """
    votes = torch.zeros(sim.shape[0], num_classes, device=sim.device)
    votes.scatter_add_(1, neighbour_labels, (sim / temperature).exp())
    return votes.argmax(dim=1)


@torch.no_grad()
def nearest_neighbours(feats: torch.Tensor, k: int, chunk_size: int = 1024):
    """Each sample's ``k`` most cosine-similar *other* samples of the same set (itself excluded).

    Args:
        feats (Tensor): (N, C) features (normalised here).

    Returns:
        tuple: (N, k') similarities and (N, k') indices, nearest first, k' = min(k, N - 1).
    """
    feats = F.normalize(feats.float(), dim=1)
    k = min(k, feats.shape[0] - 1)
    sims, idxs = [], []
    for start in range(0, feats.shape[0], chunk_size):
        sim = feats[start : start + chunk_size] @ feats.t()
        rows = torch.arange(sim.shape[0])
        sim[rows, rows + start] = -float('inf')  # not one's own neighbour
        top = sim.topk(k, dim=1)
        sims.append(top.values)
        idxs.append(top.indices)
    return torch.cat(sims), torch.cat(idxs)


def knn_top1_leave_one_out(feats, labels, num_classes, k=20, temperature=0.07) -> float:
    """k-NN top-1 (percent) of one labelled set against itself, each sample voted on by the others (DINO's
    weighted vote); for a folder with no separate bank."""
    sim, idx = nearest_neighbours(feats, k)
    labels = labels.long()
    return (weighted_vote(sim, labels[idx], num_classes, temperature) == labels).float().mean().item() * 100


def knn_top1(bank_feats, bank_labels, query_feats, query_labels, num_classes, k=20, temperature=0.07) -> float:
    """k-NN top-1 accuracy in percent (see :func:`knn_predict`)."""
    preds = knn_predict(bank_feats, bank_labels, query_feats, num_classes, k, temperature)
    return (preds == query_labels.long().to(preds.device)).float().mean().item() * 100


@torch.no_grad()
def image_features(out) -> torch.Tensor:
    """(B, C) features of one image batch from what a backbone returns: its last output, and a feature map
    (Swin's (B, C, h, w)) averaged over its positions, as Swin classifiers pool."""
    out = out[-1] if isinstance(out, (tuple, list)) else out
    return out.mean(dim=(2, 3)) if out.dim() == 4 else out.flatten(1)


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
        feats.append(image_features(encode(images)).float().cpu())
        labels.append(targets.cpu())
        if bar is not None:
            bar.update()
    return torch.cat(feats), torch.cat(labels)


def dataloader_batches(model, dataloader) -> Iterable[Tuple[torch.Tensor, torch.Tensor]]:
    """(preprocessed images, labels) batches of a labelled dataloader, through ``model.data_preprocessor``."""
    for data in dataloader:
        data = model.data_preprocessor(data, False)
        labels = torch.cat([sample.gt_label for sample in data['data_samples']])
        yield data['inputs'], labels


def loader_features(encode, model, dataloader, progress: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """(N, C) features and (N,) labels of every sample of a labelled dataloader (``encode`` after the
    preprocessor of ``model``)."""
    return extract_features(encode, dataloader_batches(model, dataloader), len(dataloader), progress)


@torch.no_grad()
def knn_evaluate(
    encode: Callable[[torch.Tensor], torch.Tensor],
    model,
    bank_loader,
    query_loader,
    num_classes: Optional[int] = None,
    k: int = 20,
    temperature: float = 0.07,
    progress: bool = True,
) -> float:
    """k-NN top-1 (percent) of ``encode``'s features: bank = ``bank_loader``, queries = ``query_loader``.

    ``num_classes`` defaults to the bank dataset's ``classes`` metainfo, else the largest label + 1.
    """
    bank, bank_labels = loader_features(encode, model, bank_loader, progress)
    query, query_labels = loader_features(encode, model, query_loader, progress)
    num_classes = num_classes or len(bank_loader.dataset.metainfo.get('classes') or []) or int(bank_labels.max()) + 1
    if int(bank_labels.max()) >= num_classes:
        raise ValueError(f'knn_evaluate: the bank has label {int(bank_labels.max())}, but num_classes is {num_classes}')
    return knn_top1(bank, bank_labels, query, query_labels, num_classes, k, temperature)
