from .mst import MST
from .teacher_ema import TeacherEMA

__all__ = ['MST', 'TeacherEMA']
