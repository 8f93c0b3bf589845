"""mmengine checkpoints load under torch's weights-only unpickling, and nothing unsafe does."""

import os
import pickle
import uuid
import zipfile

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner
from torch import nn

from mmmst.runtime.safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError, _history_buffer_getattr


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - 1) ** 2).mean())
        return out


class ToyDataset(torch.utils.data.Dataset):
    metainfo = dict(classes=('a',))

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2,), float(idx)))


def make_runner(work_dir, **kwargs):
    cfg = dict(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'toy_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=4, num_workers=0
        ),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1], gamma=0.1, by_epoch=True),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        default_scope='mmengine',
    )
    cfg.update(kwargs)
    return Runner(**cfg)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A Runner trained for 2 epochs; its last checkpoint and final state."""
    work_dir = tmp_path_factory.mktemp('train')
    runner = make_runner(work_dir)
    runner.train()
    return dict(
        ckpt=os.path.join(work_dir, 'epoch_2.pth'),
        weight=runner.model.linear.weight.detach().clone(),
        optim=runner.optim_wrapper.state_dict(),
        lr=runner.optim_wrapper.get_lr()['lr'][0],
        scheduler=runner.param_schedulers[0].state_dict(),
    )


def pickled_bytes(path):
    with zipfile.ZipFile(path) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith('data.pkl')))


def test_checkpoint_holds_no_getattr_and_loads_weights_only(trained):
    # written by mmmst's HistoryBuffer writer: no getattr in the pickle, and weights-only torch.load accepts it
    assert b'getattr' not in pickled_bytes(trained['ckpt'])
    assert b'HistoryBuffer' in pickled_bytes(trained['ckpt'])
    ckpt = torch.load(trained['ckpt'], weights_only=True)
    assert ckpt['meta']['epoch'] == 2
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)


def test_resume_restores_epoch_optimizer_and_scheduler(tmp_path, trained):
    runner = make_runner(tmp_path, resume=True, load_from=trained['ckpt'], train_cfg=dict(by_epoch=True, max_epochs=3))
    runner.load_or_resume()
    assert runner.epoch == 2
    assert torch.equal(runner.model.linear.weight, trained['weight'])
    restored = runner.optim_wrapper.state_dict()['state'][0]['momentum_buffer']
    assert torch.equal(restored, trained['optim']['state'][0]['momentum_buffer'])
    # MultiStepLR at milestone 1 has decayed the lr once: 0.01 -> 0.001, restored, not rebuilt
    assert runner.optim_wrapper.get_lr()['lr'][0] == pytest.approx(trained['lr'])
    assert trained['lr'] == pytest.approx(0.001)
    assert runner.param_schedulers[0].state_dict() == trained['scheduler']
    assert trained['scheduler']['last_step'] > 0
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) > 0  # the message hub came back
    runner.train()  # and training goes on for the third epoch
    assert runner.epoch == 3


def test_load_from_loads_weights_only(tmp_path, trained):
    runner = make_runner(tmp_path, load_from=trained['ckpt'])
    runner.load_or_resume()
    assert runner.epoch == 0
    assert torch.equal(runner.model.linear.weight, trained['weight'])


def test_checkpoint_written_by_plain_mmengine_still_loads(tmp_path, trained):
    """A checkpoint whose HistoryBuffers carry their statistics methods (via getattr) still loads."""
    ckpt = torch.load(trained['ckpt'], weights_only=True)
    for buffer in ckpt['message_hub']['log_scalars'].values():
        buffer.__dict__['statistics_methods'] = dict(HistoryBuffer._statistics_methods)

    path = tmp_path / 'plain.pth'
    # pickle the buffers the way mmengine 0.10.7 does, including getattr(HistoryBuffer, 'mean')
    HistoryBuffer.__getstate__, saved = (lambda self: self.__dict__), HistoryBuffer.__getstate__
    try:
        torch.save(ckpt, path)
    finally:
        HistoryBuffer.__getstate__ = saved
    assert b'getattr' in pickled_bytes(path)
    loaded = CheckpointLoader.load_checkpoint(str(path))
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == pytest.approx(
        ckpt['message_hub']['log_scalars']['train/loss'].mean()
    )


class _RunsCode:
    def __reduce__(self):
        return (os.system, ('touch pwned_by_checkpoint',))


def test_checkpoint_with_arbitrary_callable_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _RunsCode()}, path)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth') as err:
        CheckpointLoader.load_checkpoint(str(path))
    assert 'system' in str(err.value)
    assert not (tmp_path / 'pwned_by_checkpoint').exists()


def test_getattr_admits_only_history_buffer_statistics():
    assert _history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='__class__'):
        _history_buffer_getattr(HistoryBuffer, '__class__')
    with pytest.raises(pickle.UnpicklingError):
        _history_buffer_getattr(os, 'system')


def test_getattr_gadget_in_a_checkpoint_is_refused(tmp_path):
    class Gadget:
        # HistoryBuffer itself is admitted; reaching past it through getattr must not be
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__subclasses__'))

    path = tmp_path / 'gadget.pth'
    torch.save({'x': Gadget()}, path)
    with pytest.raises(UnsafeCheckpointError, match='gadget.pth'):
        CheckpointLoader.load_checkpoint(str(path))


def _truncated(path):
    data = open(path, 'rb').read()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    'content, message',
    [
        (lambda good: b'', r'the checkpoint file is empty \(0 bytes\)'),
        (lambda good: b'epoch 3, loss 0.5\n', r'not a readable PyTorch checkpoint: truncated'),
        (_truncated, r'not a readable PyTorch checkpoint: truncated \(an interrupted save\?\)'),
    ],
    ids=['empty', 'text', 'truncated'],
)
def test_broken_checkpoint_files_are_named_with_what_is_wrong(tmp_path, content, message):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.zeros(64, 64)}}, good)
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(content(good))
    with pytest.raises(CorruptCheckpointError, match=f'bad.pth: {message}') as err:
        CheckpointLoader.load_checkpoint(str(bad))
    assert 'weights_only=False' not in str(err.value)  # no advice to unpickle unsafely


def test_every_random_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    """python ``random`` (its pending Gaussian included), numpy and torch continue exactly where they were saved,
    after a save and a weights-only load (what a resume reads)."""
    import random

    import numpy as np

    from mmmst.runtime.random_states import gather_random_states, set_random_states

    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    random.gauss(0, 1)  # leaves the second Gaussian of the pair pending in python's state
    states = gather_random_states()
    assert len(states) == 1  # one process: a list of one, indexed by rank

    def draws():
        return (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), torch.rand(3).tolist())

    expected = draws()
    torch.save(dict(random_states=states), tmp_path / 'states.pth')
    random.seed(99), np.random.seed(99), torch.manual_seed(99)  # somewhere else entirely
    assert draws() != expected
    set_random_states(torch.load(tmp_path / 'states.pth', weights_only=True)['random_states'][0])
    assert draws() == expected
