"""The pictures of a run (its losses, its collapse monitors, the teacher's attention and masks), drawn by
:class:`MSTVisualizer` from what the run logged or from the trained model."""

import json
from typing import List, Tuple

from .mst_visualizer import MSTVisualizer

#: the collapse monitors drawn in monitors.png (``MST.collapse_monitors``; mask_ratio is a setting, not a symptom)
MONITORS = ('teacher_entropy', 'kl_teacher_student', 'teacher_feature_std', 'center_norm')


def scalar_curve(scalars_json: str, key: str) -> List[Tuple[int, float]]:
    """(iteration, value) of one scalar logged to mmengine's ``vis_data/scalars.json``; empty when never logged."""
    rows = [json.loads(line) for line in open(scalars_json)]
    return [(r['step'], r[key]) for r in rows if key in r]


def visualizer() -> MSTVisualizer:
    """The visualizer of these figures (one per process, mmengine's ManagerMixin), apart from any Runner's own."""
    return MSTVisualizer.get_instance('mmmst_run_figures')


def draw_attention_and_masks(model, cfg, out_file: str, num: int = 8):
    """The first ``num`` images of the config (``mmmst.apis.image_loader_cfg``), the teacher's CLS attention on
    them and the mask drawn from it."""
    from mmmst.apis import first_images, teacher_attention_and_mask  # apis build on the models, not on figures

    images = first_images(model, cfg, num)
    attention, mask = teacher_attention_and_mask(model, images)
    visualizer().visualize_attention_and_masks(images, attention, mask, out_file=out_file)


def draw_losses(scalars_json: str, out_file: str) -> None:
    """``loss``, ``loss_dino`` and ``loss_restore`` against the iteration, as logged."""
    curves = {key: scalar_curve(scalars_json, key) for key in ('loss', 'loss_dino', 'loss_restore')}
    curves = {key: points for key, points in curves.items() if points}
    visualizer().visualize_curves(curves, 'iteration', 'loss', name='losses', out_file=out_file)


def draw_monitors(scalars_json: str, out_file: str, num_prototypes: int) -> None:
    """The collapse monitors against the iteration, ``log K`` on the entropy panel."""
    monitors = {key: scalar_curve(scalars_json, key) for key in MONITORS}
    visualizer().visualize_monitors(monitors, num_prototypes, out_file=out_file)
