from .mst_visualizer import MSTVisualizer
from .run_figures import MONITORS, draw_attention_and_masks, draw_losses, draw_monitors, scalar_curve, visualizer

__all__ = [
    'MONITORS',
    'MSTVisualizer',
    'draw_attention_and_masks',
    'draw_losses',
    'draw_monitors',
    'scalar_curve',
    'visualizer',
]
