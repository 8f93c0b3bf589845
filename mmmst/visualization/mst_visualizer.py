"""The figures of mmmst, drawn from tensors and numbers by one mmengine Visualizer.

As mmpretrain's ``UniversalVisualizer.visualize_cls``: every ``visualize_*`` method returns the drawing as an RGB
``(H, W, 3)`` uint8 array, writes it to ``out_file`` when one is given, and otherwise hands it to the
visualizer's backends (``add_image``: a local folder, TensorBoard, ...). Nothing here runs a model or reads a file.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmpretrain.visualization import UniversalVisualizer

from mmmst.registry import VISUALIZERS

Curve = Sequence[Tuple[float, float]]


def _figure_to_rgb(fig) -> np.ndarray:
    """Render a matplotlib figure to an (H, W, 3) uint8 array and close it."""
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb


def _subplots(rows: int, cols: int, figsize: Tuple[float, float]):
    import matplotlib

    matplotlib.use('Agg')  # no display: the figure only becomes an array
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=figsize, squeeze=False)


@VISUALIZERS.register_module()
class MSTVisualizer(UniversalVisualizer):
    """mmpretrain's visualizer plus MST's pictures: attention and masks, training curves, collapse monitors."""

    def _show(self, name: str, drawn: np.ndarray, out_file: Optional[str], step: int) -> np.ndarray:
        if out_file is not None:
            mmcv.imwrite(drawn[..., ::-1], out_file)  # mmcv writes BGR
        else:
            self.add_image(name, drawn, step=step)
        return drawn

    def visualize_attention_and_masks(
        self,
        images: torch.Tensor,
        attention: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        titles: Optional[List[str]] = None,
        name: str = 'attention_and_masks',
        out_file: Optional[str] = None,
        step: int = 0,
    ) -> np.ndarray:
        """One column per image: the image, the teacher's CLS attention, and (``mask``) the student's mask.

        Args:
            images (Tensor): (B, C, H, W) images, any value range (each is stretched to [0, 1] for display).
            attention (Tensor): (B, h, w) CLS-to-patch attention on the patch grid.
            mask (Tensor, optional): (B, h, w) bool, True where the patch gets the [MASK] token (drawn black).
            titles (list[str], optional): one title per image.
        """
        images, attention = images.detach().float().cpu(), attention.detach().float().cpu()
        rows = 3 if mask is not None else 2
        fig, axes = _subplots(rows, len(images), (1.6 * len(images), 1.6 * rows))
        for i, image in enumerate(images):
            shown = image.permute(1, 2, 0)
            shown = (shown - shown.min()) / (shown.max() - shown.min() + 1e-6)
            axes[0, i].imshow(shown.squeeze(-1), cmap='gray')
            axes[1, i].imshow(attention[i], cmap='viridis')
            if mask is not None:
                axes[2, i].imshow(mask[i].cpu(), cmap='gray_r', vmin=0, vmax=1)
            if titles:
                axes[0, i].set_title(titles[i], fontsize=7)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        for row, label in enumerate(['image', 'teacher CLS attention', '[MASK] (black)'][:rows]):
            axes[row, 0].set_ylabel(label, fontsize=7)
        fig.tight_layout()
        return self._show(name, _figure_to_rgb(fig), out_file, step)

    def visualize_neighbours(
        self,
        queries: List[np.ndarray],
        neighbours: List[List[np.ndarray]],
        similarities: List[List[float]],
        titles: Optional[List[str]] = None,
        name: str = 'neighbours',
        out_file: Optional[str] = None,
        step: int = 0,
    ) -> np.ndarray:
        """One row per query image, followed by its nearest neighbours, each titled with its cosine similarity.

        Args:
            queries (list[ndarray]): (H, W, 3) RGB uint8 images.
            neighbours (list[list[ndarray]]): per query, its k neighbours, nearest first.
            similarities (list[list[float]]): per query, the neighbours' cosine similarities.
            titles (list[str], optional): one title per query (its file name, say).
        """
        k = max(len(row) for row in neighbours)
        fig, axes = _subplots(len(queries), k + 1, (1.5 * (k + 1), 1.6 * len(queries)))
        for r, (query, row, sims) in enumerate(zip(queries, neighbours, similarities)):
            axes[r, 0].imshow(query)
            axes[r, 0].set_title(titles[r] if titles else 'query', fontsize=6)
            for c, (image, sim) in enumerate(zip(row, sims), start=1):
                axes[r, c].imshow(image)
                axes[r, c].set_title(f'{sim:.3f}', fontsize=6)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.axis('off') if not ax.images else None
        fig.tight_layout()
        return self._show(name, _figure_to_rgb(fig), out_file, step)

    def visualize_curves(
        self,
        curves: Dict[str, Curve],
        xlabel: str,
        ylabel: str,
        hline: Optional[Tuple[float, str]] = None,
        marker: Optional[str] = None,
        name: str = 'curves',
        out_file: Optional[str] = None,
        step: int = 0,
    ) -> np.ndarray:
        """One line per ``{label: [(x, y), ...]}`` entry, plus an optional dashed ``(y, label)`` reference line."""
        fig, axes = _subplots(1, 1, (6, 3.5))
        ax = axes[0, 0]
        for label, points in curves.items():
            ax.plot(*zip(*points), label=label, marker=marker, linewidth=1.2)
        if hline is not None:
            ax.axhline(hline[0], color='gray', linestyle='--', label=hline[1])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return self._show(name, _figure_to_rgb(fig), out_file, step)

    def visualize_monitors(
        self,
        monitors: Dict[str, Curve],
        num_prototypes: Optional[int] = None,
        name: str = 'monitors',
        out_file: Optional[str] = None,
        step: int = 0,
    ) -> np.ndarray:
        """The collapse monitors (``MST.collapse_monitors``), one panel each, against the iteration.

        ``log K`` is drawn on the ``teacher_entropy`` panel when ``num_prototypes`` is given: the entropy of a
        uniform teacher.
        """
        fig, axes = _subplots(1, len(monitors), (3.2 * len(monitors), 2.8))
        for ax, (key, points) in zip(axes[0], monitors.items()):
            if points:
                ax.plot(*zip(*points), linewidth=1.0)
            if key == 'teacher_entropy' and num_prototypes:
                ax.axhline(math.log(num_prototypes), color='gray', linestyle='--', label=f'log {num_prototypes}')
                ax.legend(fontsize=7)
            ax.set_title(key, fontsize=9)
            ax.set_xlabel('iteration', fontsize=8)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        return self._show(name, _figure_to_rgb(fig), out_file, step)
