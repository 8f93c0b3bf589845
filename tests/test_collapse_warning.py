"""CollapseWarningHook: one WARNING line when a collapse symptom holds for ``patience`` windows; the run goes on."""

import json
import math
import os.path as osp
from types import SimpleNamespace

import pytest

from mmmst.engine.hooks import CollapseWarningHook
from tests.helpers import PY, SMALL_CFG, run, small_train_options

EVERY_ITERATION = ['custom_hooks.2.interval=1', 'custom_hooks.2.patience=2', 'custom_hooks.2.begin_iters=0']


def collapse_lines(result):
    return [line for line in (result.stdout + result.stderr).splitlines() if 'collapse:' in line]


def test_a_forced_uniform_collapse_warns_once_and_the_run_goes_on(fashion_mnist, tmp_path):
    """A teacher temperature of 100 flattens the teacher's output from the first iteration."""
    flat = ['model.head.teacher_temp=100.0', 'model.head.warmup_teacher_temp=100.0']
    result = run(
        [PY, 'tools/train.py', SMALL_CFG] + small_train_options(fashion_mnist, tmp_path) + EVERY_ITERATION + flat
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = collapse_lines(result)
    assert len(lines) == 1 and 'uniform collapse' in lines[0] and 'docs/troubleshooting.md' in lines[0], lines
    assert f'log K = {math.log(64):.3f}' in lines[0] and 'WARNING' in lines[0]
    assert (tmp_path / 'epoch_1.pth').is_file()  # not stopped


def test_the_default_recipe_does_not_warn(fashion_mnist, tmp_path):
    result = run([PY, 'tools/train.py', SMALL_CFG] + small_train_options(fashion_mnist, tmp_path) + EVERY_ITERATION)
    assert result.returncode == 0, result.stderr[-3000:]
    assert collapse_lines(result) == []


class FakeRunner(SimpleNamespace):
    def __init__(self):
        warnings = []
        super().__init__(iter=0, warnings=warnings, logger=SimpleNamespace(warning=warnings.append))


def feed(hook, runner, windows):
    """One iteration per window (interval 1), each with the given monitors."""
    for monitors in windows:
        hook.after_train_iter(runner, runner.iter, outputs=monitors)
        runner.iter += 1


@pytest.mark.parametrize(
    'healthy, collapsed, symptom',
    [
        (dict(teacher_entropy=1.0, teacher_feature_std=0.05), dict(teacher_entropy=0.01, teacher_feature_std=1e-4),
         'one-hot collapse'),
        (dict(teacher_entropy=2.0), dict(teacher_entropy=0.99 * math.log(64)), 'uniform collapse'),
    ],
)  # fmt: skip
def test_each_symptom_needs_patience_windows_in_a_row(healthy, collapsed, symptom):
    hook = CollapseWarningHook(interval=1, patience=3, begin_iters=0)
    hook.log_k = math.log(64)
    runner = FakeRunner()
    loss = dict(loss=1.0, kl_teacher_student=0.5)
    feed(hook, runner, [{**collapsed, **loss}] * 2 + [{**healthy, **loss}] + [{**collapsed, **loss}] * 2)
    assert runner.warnings == []  # two, a healthy window, two: never three in a row
    feed(hook, runner, [{**collapsed, **loss}] * 3)
    assert len(runner.warnings) == 1 and symptom in runner.warnings[0]


def test_a_flat_loss_with_no_kl_is_named_and_a_moving_loss_is_not():
    hook = CollapseWarningHook(interval=1, patience=2, begin_iters=0)
    hook.log_k = math.log(64)
    runner = FakeRunner()
    feed(hook, runner, [dict(loss=3.0 - 0.1 * i, kl_teacher_student=1e-4, teacher_entropy=2.0) for i in range(5)])
    assert runner.warnings == []  # KL near 0, but the loss still falls
    feed(hook, runner, [dict(loss=2.5, kl_teacher_student=1e-4, teacher_entropy=2.0)] * 3)
    assert len(runner.warnings) == 1 and 'nothing left to learn' in runner.warnings[0]


def test_nothing_is_read_before_begin_iters():
    hook = CollapseWarningHook(interval=1, patience=1, begin_iters=10)
    hook.log_k = math.log(64)
    runner = FakeRunner()
    feed(hook, runner, [dict(loss=1.0, teacher_entropy=math.log(64))] * 10)
    assert runner.warnings == []
    feed(hook, runner, [dict(loss=1.0, teacher_entropy=math.log(64))])
    assert len(runner.warnings) == 1


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(interval=0), 'interval must be an int >= 1, got 0'),
        (dict(uniform_margin=1.5), 'uniform_margin must be in (0, 1), got 1.5'),
        (dict(patience=0), 'patience must be an int >= 1, got 0'),
        (dict(patience=2.5), 'patience must be an int >= 1, got 2.5'),
        (dict(begin_iters=-1), 'begin_iters must be an int >= 0, got -1'),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
        CollapseWarningHook(**kwargs)


def replay(hook, rows):
    """Feeds a logged trace to the hook: each row's monitors for every iteration since the previous row."""
    runner, previous = FakeRunner(), 0
    for row in rows:
        monitors = {key: row[key] for key in ('teacher_entropy', 'teacher_feature_std', 'kl_teacher_student', 'loss')}
        for _ in range(row['iter'] - previous):
            hook.after_train_iter(runner, runner.iter, outputs=monitors)
            runner.iter += 1
        previous = row['iter']
    return runner


def test_a_healthy_ten_epoch_run_of_the_demo_recipe_does_not_warn():
    """The monitors a real 10-epoch run logged (tests/data/demo_recipe_monitors.json; its k-NN ended 6.63 points
    above the untrained network), replayed through the hook with the configs' thresholds: no warning. The same
    trace with the teacher's entropy at 99 % of log K from iteration 600 on warns: the replay can fail."""
    trace = json.load(open(osp.join(osp.dirname(__file__), 'data', 'demo_recipe_monitors.json')))
    hook = CollapseWarningHook()
    hook.log_k = math.log(64)
    runner = replay(hook, trace['rows'])
    assert runner.iter == trace['rows'][-1]['iter'] > 1500 and runner.warnings == []

    flattened = [dict(row, teacher_entropy=0.99 * math.log(64)) if row['iter'] >= 600 else row for row in trace['rows']]
    hook = CollapseWarningHook()
    hook.log_k = math.log(64)
    runner = replay(hook, flattened)
    assert len(runner.warnings) == 1 and 'uniform collapse' in runner.warnings[0]


@pytest.mark.parametrize(
    'monitors',
    [
        dict(teacher_entropy=0.01, teacher_feature_std=0.05),  # a sharp teacher whose features still spread
        dict(teacher_entropy=1.0, teacher_feature_std=1e-4),  # features close together, the teacher not one-hot
    ],
    ids=['sharp-but-spread', 'close-but-not-one-hot'],
)
def test_one_hot_collapse_needs_both_a_one_hot_teacher_and_no_feature_spread(monitors):
    """Either sign alone is a healthy state of some runs (DINO's teacher is sharp by design): no warning."""
    hook = CollapseWarningHook(interval=1, patience=3, begin_iters=0)
    hook.log_k = math.log(64)
    runner = FakeRunner()
    feed(hook, runner, [dict(monitors, loss=1.0, kl_teacher_student=0.5)] * 10)
    assert runner.warnings == []


def test_reading_a_loss_that_requires_grad_warns_nothing():
    """The loss in the iteration's outputs still requires grad; reading it must not put a torch UserWarning on the
    terminal every iteration (the demo's terminal shows mmmst's lines only)."""
    import warnings

    import torch

    hook = CollapseWarningHook(interval=1, patience=3, begin_iters=0)
    hook.log_k = math.log(64)
    loss = (torch.ones(1, requires_grad=True) * 2).sum()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        feed(hook, FakeRunner(), [dict(loss=loss, teacher_entropy=torch.tensor(1.0), kl_teacher_student=0.5)] * 2)
    assert [str(w.message) for w in seen] == []
