"""mmmst.apis.init_model: strict checkpoints, and the seeded untrained network."""

import pytest
import torch
from mmengine.config import Config

from mmmst.apis import CheckpointMismatchError, init_model
from tests.helpers import SMALL_CFG


def test_random_init_is_seeded_and_teacher_starts_as_student():
    first, again, other = (init_model(Config.fromfile(SMALL_CFG), seed=s) for s in (0, 0, 1))
    weight = 'backbone.layers.0.attn.qkv.weight'
    assert torch.equal(first.state_dict()[weight], again.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])
    teacher = first.teacher.module.backbone.state_dict()
    assert all(torch.equal(v, teacher[k]) for k, v in first.backbone.state_dict().items())
    assert not first.training


def test_checkpoint_loads_exactly_or_names_the_mismatch(tmp_path):
    source = init_model(Config.fromfile(SMALL_CFG), seed=3)
    torch.save(dict(state_dict=source.state_dict()), tmp_path / 'mst.pth')
    loaded = init_model(Config.fromfile(SMALL_CFG), str(tmp_path / 'mst.pth'))
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in source.state_dict().items())

    # a checkpoint of a wider network does not load into the 4-layer network: one sentence naming the first keys
    wide = Config.fromfile(SMALL_CFG)
    wide.model.neck.hidden_channels = 256
    torch.save(dict(state_dict=init_model(wide).state_dict()), tmp_path / 'wide.pth')
    with pytest.raises(CheckpointMismatchError, match=r'keys of another shape \(neck\.mlp\.0\.weight \(256, 128\)'):
        init_model(Config.fromfile(SMALL_CFG), str(tmp_path / 'wide.pth'))
