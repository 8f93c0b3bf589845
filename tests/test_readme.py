"""The README is a guide that stays true: short, its layout naming every guide in docs/, its config snippet
building as written."""

import os
import re

import torch

from tests.helpers import ROOT

README = open(os.path.join(ROOT, 'README.md')).read()


def test_the_readme_is_a_short_guide_that_names_every_doc():
    assert len(README.splitlines()) <= 150
    docs_line = next(line for line in README.splitlines() if line.startswith('docs/'))
    listed = set(re.findall(r'\w+', docs_line)) - {'docs'}
    guides = {name[:-3] for name in os.listdir(os.path.join(ROOT, 'docs')) if name.endswith('.md')}
    assert guides <= listed, guides - listed
    evaluation = README[README.index('## Evaluate') : README.index('## Detection')]
    assert '(configs/mst/README.md)' in evaluation


def test_the_downstream_snippet_builds_and_loads_the_converted_backbone_as_written(tmp_path, monkeypatch):
    """The README's config lines for one's own mmdet / mmseg config, in a config file of their own, with the file
    mst_to_backbone.py writes: the backbone builds from mmdet's registry and starts from those weights."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from mmmst.models import MSTViT

    snippet = next(b for b in re.findall(r'```python\n(.*?)```', README, re.S) if 'custom_imports' in b)
    source = MSTViT(arch='deit-small')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}}, tmp_path / 'backbone.pth')
    (tmp_path / 'my_config.py').write_text(snippet)
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile('my_config.py')
    backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()
    assert type(backbone).__name__ == 'MSTViT'
    torch.testing.assert_close(backbone.pos_embed, source.pos_embed, rtol=0, atol=0)
    assert len(backbone(torch.randn(1, 3, 224, 224))) == 4  # out_indices (2, 5, 8, 11): the FPN's four maps
