from .mst_visualizer import MSTVisualizer

__all__ = ['MSTVisualizer']
