"""Warns, once per symptom, when the collapse monitors say the run is collapsing: before it costs days."""

import math
from typing import Dict, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmst.registry import HOOKS

GUIDE = 'docs/troubleshooting.md'


@HOOKS.register_module()
class CollapseWarningHook(Hook):
    """Reads the collapse monitors MST logs (``teacher_entropy``, ``teacher_feature_std``, ``kl_teacher_student``,
    ``loss``) as means over windows of ``interval`` iterations, and prints one WARNING line when a symptom holds for
    ``patience`` consecutive windows. The run goes on; each symptom is named once.

    Symptoms (DINO §5.3; K = the head's prototypes):

    - **uniform collapse**: teacher entropy >= (1 - ``uniform_margin``) log K: the teacher's output is flat, the
      centring has won over the sharpening;
    - **one-hot collapse**: teacher entropy <= ``one_hot_entropy`` nats and teacher feature std <=
      ``min_feature_std``: every image lands on one prototype with one feature;
    - **nothing left to learn**: KL(teacher || student) <= ``min_kl`` while the loss moved by less than
      ``flat_loss`` (relative) over the window: the student copies a teacher that no longer teaches.

    Windows start after ``begin_iters`` iterations: every run begins near uniform (an untrained teacher, centred).

    Args:
        interval (int): iterations per window. Defaults to 50.
        patience (int): consecutive windows a symptom must hold. Defaults to 3.
        begin_iters (int): iterations before the first window. Defaults to 500.
        uniform_margin (float): Defaults to 0.02 (2 % of log K).
        one_hot_entropy (float): Defaults to 0.05 nats.
        min_feature_std (float): Defaults to 1e-3 (per-dimension std of L2-normalised features).
        min_kl (float): Defaults to 1e-3 nats.
        flat_loss (float): Defaults to 1e-3 (relative change of the window's mean loss).
    """

    priority = 'LOW'

    def __init__(
        self,
        interval: int = 50,
        patience: int = 3,
        begin_iters: int = 500,
        uniform_margin: float = 0.02,
        one_hot_entropy: float = 0.05,
        min_feature_std: float = 1e-3,
        min_kl: float = 1e-3,
        flat_loss: float = 1e-3,
    ):
        for name, value in dict(interval=interval, patience=patience).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'CollapseWarningHook: {name} must be an int >= 1, got {value!r}')
        if not isinstance(begin_iters, int) or begin_iters < 0:
            raise ValueError(f'CollapseWarningHook: begin_iters must be an int >= 0, got {begin_iters!r}')
        if not 0 < uniform_margin < 1:
            raise ValueError(f'CollapseWarningHook: uniform_margin must be in (0, 1), got {uniform_margin!r}')
        self.interval, self.patience, self.begin_iters = interval, patience, begin_iters
        self.uniform_margin, self.one_hot_entropy, self.min_feature_std = (
            uniform_margin,
            one_hot_entropy,
            min_feature_std,
        )
        self.min_kl, self.flat_loss = min_kl, flat_loss
        self._window: Dict[str, list] = {}
        self._streaks: Dict[str, int] = {}
        self._previous_loss: Optional[float] = None
        self.warned = set()

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.log_k = math.log(model.head.out_channels)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        if runner.iter < self.begin_iters or not outputs:
            return
        for key in ('teacher_entropy', 'teacher_feature_std', 'kl_teacher_student', 'loss'):
            if key in outputs:
                value = outputs[key]  # (the loss still requires grad: a plain float() of it warns every iteration)
                self._window.setdefault(key, []).append(float(value.detach() if hasattr(value, 'detach') else value))
        if len(self._window.get('loss', [])) < self.interval:
            return
        means = {key: sum(values) / len(values) for key, values in self._window.items()}
        self._window = {}
        for symptom, present in self.symptoms(means).items():
            self._streaks[symptom] = self._streaks.get(symptom, 0) + 1 if present else 0
            if self._streaks[symptom] >= self.patience and symptom not in self.warned:
                self.warned.add(symptom)
                runner.logger.warning(
                    f'collapse: {symptom} for {self.patience} windows of {self.interval} iterations (iteration '
                    f'{runner.iter + 1}: teacher entropy {means.get("teacher_entropy", float("nan")):.3f} of '
                    f'log K = {self.log_k:.3f}, feature std {means.get("teacher_feature_std", float("nan")):.2e}, '
                    f'KL {means.get("kl_teacher_student", float("nan")):.2e}); the run goes on. What to change: {GUIDE}'
                )
        self._previous_loss = means['loss']

    def symptoms(self, means: Dict[str, float]) -> Dict[str, bool]:
        """Which symptoms one window's means show."""
        entropy = means.get('teacher_entropy')
        std, kl, loss = means.get('teacher_feature_std'), means.get('kl_teacher_student'), means['loss']
        flat = self._previous_loss is not None and abs(loss - self._previous_loss) <= self.flat_loss * abs(
            self._previous_loss
        )
        return {
            'uniform collapse (the teacher output is flat)': entropy is not None
            and entropy >= (1 - self.uniform_margin) * self.log_k,
            'one-hot collapse (every image on one prototype)': entropy is not None
            and std is not None
            and entropy <= self.one_hot_entropy
            and std <= self.min_feature_std,
            'nothing left to learn (KL near 0, loss flat)': kl is not None and kl <= self.min_kl and flat,
        }
