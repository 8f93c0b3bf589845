"""Teacher temperature warm-up (DINO): moves ``MSTHead.teacher_temp`` at the start of every epoch."""

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmst.registry import HOOKS


@HOOKS.register_module()
class TeacherTempHook(Hook):
    """Calls ``model.head.set_epoch(epoch)`` before each training epoch; the schedule lives in the head.

    Works with and without a DDP wrapper.
    """

    priority = 'NORMAL'

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.head.set_epoch(runner.epoch)
