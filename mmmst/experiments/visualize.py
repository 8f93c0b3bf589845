"""Pictures of a pretraining run: loss curves, and what the teacher attends to and the student gets masked."""

import json
from typing import Dict, List, Optional, Sequence, Tuple

import torch


def plot_curves(
    curves: Dict[str, Sequence[Tuple[float, float]]],
    path: str,
    xlabel: str,
    ylabel: str,
    hline: Optional[Tuple[float, str]] = None,
    marker: Optional[str] = None,
) -> None:
    """One line per ``{label: [(x, y), ...]}`` entry, plus an optional dashed ``(y, label)`` reference line."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, points in curves.items():
        ax.plot(*zip(*points), label=label, marker=marker, linewidth=1.2)
    if hline is not None:
        ax.axhline(hline[0], color='gray', linestyle='--', label=hline[1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def scalar_curve(scalars_json: str, key: str) -> List[Tuple[int, float]]:
    """(iteration, value) of one logged scalar from mmengine's ``vis_data/scalars.json``."""
    rows = [json.loads(line) for line in open(scalars_json)]
    return [(r['step'], r[key]) for r in rows if key in r]


def plot_losses(scalars_json: str, path: str) -> None:
    """Loss curves (``loss_dino``, ``loss_restore``, ``loss``) from mmengine's ``vis_data/scalars.json``."""
    curves = {key: scalar_curve(scalars_json, key) for key in ('loss', 'loss_dino', 'loss_restore')}
    plot_curves({key: points for key, points in curves.items() if points}, path, 'iteration', 'loss')


MONITORS = ('teacher_entropy', 'kl_teacher_student', 'teacher_feature_std', 'center_norm')


def plot_monitors(scalars_json: str, path: str, num_prototypes: Optional[int] = None) -> None:
    """The collapse monitors (``MST.collapse_monitors``) against the iteration, one panel each; ``log K`` is drawn
    on the entropy panel when ``num_prototypes`` is given (the entropy of a uniform teacher)."""
    import math

    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(MONITORS), figsize=(3.2 * len(MONITORS), 2.8))
    for ax, key in zip(axes, MONITORS):
        points = scalar_curve(scalars_json, key)
        if points:
            ax.plot(*zip(*points), linewidth=1.0)
        if key == 'teacher_entropy' and num_prototypes:
            ax.axhline(math.log(num_prototypes), color='gray', linestyle='--', label=f'log {num_prototypes}')
            ax.legend(fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel('iteration', fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@torch.no_grad()
def plot_attention_and_masks(model, images: torch.Tensor, path: str, titles: List[str] = None) -> None:
    """One column per image: the image, the teacher's CLS attention, the mask the generator draws from it.

    Args:
        model: a trained ``MST`` (its teacher backbone must be a ViT with a CLS token).
        images (Tensor): (B, C, H, W), already normalised like the training views.
        path (str): PNG file to write.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    backbone = model.teacher.module.backbone
    out = backbone.encode(images, return_cls_attention=True)
    h, w = out.patch_map.shape[-2:]
    attn = out.cls_attention.view(-1, h, w).float().cpu()
    mask = None
    if model.mask_generator is not None:
        generator = torch.Generator(device=images.device).manual_seed(0)  # the same mask on every run
        mask = model.mask_generator(out.cls_attention, generator).view(-1, h, w).cpu()
    images = images.cpu()
    rows = 3 if mask is not None else 2
    fig, axes = plt.subplots(rows, len(images), figsize=(1.6 * len(images), 1.6 * rows), squeeze=False)
    for i, image in enumerate(images):
        shown = image.permute(1, 2, 0).float()
        shown = (shown - shown.min()) / (shown.max() - shown.min() + 1e-6)
        axes[0, i].imshow(shown.squeeze(-1), cmap='gray')
        axes[1, i].imshow(attn[i], cmap='viridis')
        if mask is not None:
            axes[2, i].imshow(mask[i], cmap='gray_r', vmin=0, vmax=1)
        if titles:
            axes[0, i].set_title(titles[i], fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel('image', fontsize=7)
    axes[1, 0].set_ylabel('teacher CLS attention', fontsize=7)
    if mask is not None:
        axes[2, 0].set_ylabel('[MASK] (black)', fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@torch.no_grad()
def first_query_images(model, cfg, num: int = 8, loader: str = 'knn_query_dataloader') -> torch.Tensor:
    """The first ``num`` images of the config's ``loader``, normalised by the model's preprocessor."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        data = next(iter(Runner.build_dataloader(cfg[loader], seed=0)))
    return model.data_preprocessor(data, False)['inputs'][:num]
