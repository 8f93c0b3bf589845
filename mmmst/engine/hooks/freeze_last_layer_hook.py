"""DINO's last-layer freeze: no update of the prototypes during the first epoch(s)."""

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmst.registry import HOOKS

from .teacher_temp_hook import require_epoch_loop


@HOOKS.register_module()
class FreezeLastLayerHook(Hook):
    """Drops the gradient of the student neck's ``last_layer`` while ``epoch < freeze_epochs``.

    As DINO's ``cancel_gradients_last_layer``: the gradients are set to None after clipping and right before
    the optimizer step (a ``torch.optim`` step pre-hook), so AdamW leaves those parameters untouched, weight
    decay included. Works with and without a DDP wrapper, with and without AMP. Epoch-based loops only (an
    iteration-based loop is refused with a message naming it).

    Args:
        freeze_epochs (int): epochs without last-layer updates. Defaults to 1 (DINO).
        module_name (str): name of the frozen module inside the model. Defaults to ``'neck.last_layer'``.
    """

    priority = 'NORMAL'

    def __init__(self, freeze_epochs: int = 1, module_name: str = 'neck.last_layer'):
        if not isinstance(freeze_epochs, int) or freeze_epochs < 0:
            raise ValueError(f'FreezeLastLayerHook: freeze_epochs must be an int >= 0, got {freeze_epochs!r}')
        self.freeze_epochs = freeze_epochs
        self.module_name = module_name
        self._handle = None

    def before_train(self, runner) -> None:
        require_epoch_loop(self, runner)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        try:
            frozen = list(model.get_submodule(self.module_name).parameters())
        except AttributeError:
            raise ValueError(f'FreezeLastLayerHook: the model has no module {self.module_name!r}') from None
        frozen_ids = {id(p) for p in frozen}

        def drop_last_layer_grads(optimizer, args, kwargs):
            if runner.epoch >= self.freeze_epochs:
                return
            for group in optimizer.param_groups:
                for p in group['params']:
                    if id(p) in frozen_ids:
                        p.grad = None

        self._handle = runner.optim_wrapper.optimizer.register_step_pre_hook(drop_last_layer_grads)

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
