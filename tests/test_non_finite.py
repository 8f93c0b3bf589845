"""A diverging run stops before it spoils anything: no step on a NaN loss, no NaN checkpoint, no NaN evaluation."""

import os.path as osp

import pytest
import torch

from mmmst.runtime.non_finite import NonFiniteError, check_finite_losses, first_non_finite
from tests.helpers import PY, SMALL_CFG, copy_run, run, small_train_options


def test_non_finite_loss_term_is_named_with_iteration_and_last_checkpoint():
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance('non_finite_test')
    hub.update_info('iter', 41)
    hub.update_info('last_ckpt', 'work_dirs/x/epoch_3.pth')
    check_finite_losses(dict(loss=torch.tensor(1.0), loss_dino=torch.tensor(1.0)))  # finite: nothing happens
    with pytest.raises(NonFiniteError) as err:
        check_finite_losses(
            dict(loss=torch.tensor(float('nan')), loss_dino=torch.tensor(1.0), loss_restore=torch.tensor(float('inf')))
        )
    message = str(err.value)
    assert 'loss_restore = inf' in message and 'loss_dino' not in message
    assert 'iteration 42' in message and 'work_dirs/x/epoch_3.pth' in message


def test_first_non_finite_names_the_tensor():
    state = {'a': torch.zeros(2), 'step': torch.tensor(3), 'b': torch.tensor([1.0, float('nan')])}
    assert first_non_finite(state) == 'b'
    assert first_non_finite({'a': torch.zeros(2)}) is None


def test_nan_run_stops_before_the_step_and_writes_no_checkpoint(fashion_mnist, tmp_path):  # noqa: F811
    """std 0 makes every input Inf: the first loss is NaN. The run exits with one line; nothing is written."""
    options = small_train_options(fashion_mnist, tmp_path) + ['data_preprocessor.std=[0]']
    result = run([PY, 'tools/train.py', SMALL_CFG] + options)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith('error: loss_dino = nan') and 'iteration 1' in last_line, last_line
    assert 'stopped before the optimizer step and the teacher update' in last_line
    assert not osp.exists(tmp_path / 'epoch_1.pth')


def test_diverged_weights_are_never_saved_and_the_last_good_checkpoint_stays(fashion_mnist, one_epoch_run, tmp_path):
    """Epoch 1 trains and saves; then the weights go NaN without a NaN loss: the epoch-2 checkpoint is refused."""
    copy_run(one_epoch_run, tmp_path)
    good = torch.load(tmp_path / 'epoch_1.pth', weights_only=False)['state_dict']
    assert first_non_finite(good) is None

    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(SMALL_CFG)  # the same run as small_train_options, in-process to add the spoiling hook
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.dataset.data_root = fashion_mnist
    cfg.train_dataloader.dataset.indices = 8
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.max_epochs = 2
    cfg.resume = True
    runner = Runner.from_cfg(cfg)

    from mmengine.hooks import Hook

    class Spoil(Hook):  # the weights go NaN after the last step of epoch 2, the loss never was
        def after_train_epoch(self, runner):
            runner.model.teacher.module.backbone.pos_embed.data.fill_(float('nan'))

    runner.register_hook(Spoil(), priority='HIGHEST')
    with pytest.raises(NonFiniteError, match='teacher.module.backbone.pos_embed holds NaN or Inf'):
        runner.train()
    assert not osp.exists(tmp_path / 'epoch_2.pth')
    assert open(tmp_path / 'last_checkpoint').read().strip().endswith('epoch_1.pth')
    torch.testing.assert_close(torch.load(tmp_path / 'epoch_1.pth', weights_only=False)['state_dict'], good)


def test_evaluation_refuses_a_non_finite_checkpoint(fashion_mnist, one_epoch_run, tmp_path):
    checkpoint = torch.load(one_epoch_run / 'epoch_1.pth', weights_only=False)
    checkpoint['state_dict']['head.center'].fill_(float('inf'))
    torch.save(checkpoint, tmp_path / 'bad.pth')
    knn = run(
        [PY, 'tools/analysis_tools/knn_eval.py', SMALL_CFG, str(tmp_path / 'bad.pth'), '--cfg-options',
         f'knn_bank_dataloader.dataset.data_root={fashion_mnist}',
         f'knn_query_dataloader.dataset.data_root={fashion_mnist}']
    )  # fmt: skip
    assert knn.returncode != 0
    assert (
        knn.stderr.strip().splitlines()[-1] == f'error: {tmp_path / "bad.pth"}: head.center holds NaN or Inf; '
        'evaluate an earlier checkpoint'
    )
    resume = run([PY, 'tools/train.py', SMALL_CFG, '--resume', str(tmp_path / 'bad.pth')]
                 + small_train_options(fashion_mnist, tmp_path / 'r'))  # fmt: skip
    assert resume.returncode != 0
    assert resume.stderr.strip().splitlines()[-1] == (
        'error: the loaded checkpoint holds NaN or Inf in head.center; resume from an earlier one'
    )
