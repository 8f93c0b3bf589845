"""Teacher temperature warm-up (DINO): moves ``DINOHead.teacher_temp`` at the start of every epoch."""

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop

from mmmst.registry import HOOKS


@HOOKS.register_module()
class TeacherTempHook(Hook):
    """Calls ``model.head.set_epoch(epoch)`` before each training epoch; the schedule lives in the head.

    Works with and without a DDP wrapper. The schedule is in epochs (DINO's), so an iteration-based loop, which
    never calls ``before_train_epoch`` with a moving epoch, is refused with a message naming it.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        require_epoch_loop(self, runner)

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.head.set_epoch(runner.epoch)


def require_epoch_loop(hook, runner) -> None:
    """Raise a TypeError naming the loop unless the run is epoch-based (the hooks' schedules count epochs)."""
    loop = runner.train_loop
    if not isinstance(loop, EpochBasedTrainLoop):
        raise TypeError(
            f'{type(hook).__name__} follows an epoch schedule, but the train loop is {type(loop).__name__}; '
            "use train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=...)"
        )
