"""docs/own_data.md, command by command, on a generated folder of "photos": nested sub-folders, mixed formats, one
corrupt file. Only the folder, the epochs and the batch differ from what a user types."""

import os
import re
import shlex

import numpy as np
import pytest
import torch

from tests.helpers import PY, ROOT, run

DOC = os.path.join(ROOT, 'docs/own_data.md')
SMALL_RUN = ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=4']  # the config's 2 workers kept


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """18 images in cats/, dogs/indoor/, dogs/outdoor/ (PNG, JPEG, BMP, several sizes) and a corrupt JPEG."""
    import cv2

    root = tmp_path_factory.mktemp('my_photos')
    rng = np.random.default_rng(0)
    for folder, colour in (('cats', (40, 40, 200)), ('dogs/indoor', (200, 60, 40)), ('dogs/outdoor', (60, 200, 60))):
        os.makedirs(root / folder)
        for i, ext in enumerate(['png', 'jpg', 'bmp', 'JPEG', 'png', 'jpg']):
            image = np.clip(rng.normal(0, 30, (48 + 8 * i, 64, 3)) + colour, 0, 255).astype(np.uint8)
            cv2.circle(image, (32, 24), 10 + i, (255, 255, 255), -1)
            cv2.imwrite(str(root / folder / f'img_{i}.{ext}'), image)
    (root / 'cats' / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not a whole JPEG')
    return root


def doc_commands():
    """The ``bash`` blocks of docs/own_data.md, one command each."""
    return [block.strip() for block in re.findall(r'```bash\n(.*?)```', open(DOC).read(), re.S)]


def test_the_walkthrough_runs_from_the_folder_to_a_timm_model(photos, tmp_path):
    import timm

    train, extract, export, convert, cont = doc_commands()

    def as_run(command):
        command = command.replace('data/my_photos', str(photos)).replace('work_dirs/my_photos', str(tmp_path))
        return [PY if word == 'python' else word for word in shlex.split(command.replace('epoch_20', 'epoch_1'))]

    trained = run(as_run(train) + SMALL_RUN)
    assert trained.returncode == 0, trained.stderr[-3000:]
    out = trained.stdout + trained.stderr
    assert 'LR is set based on batch size of 256 and the current batch size is 4' in out
    assert f'skipped unreadable image {photos / "cats" / "broken.jpg"}' in out
    # the epoch's count, summed over the 2 dataloader workers (each may have drawn the broken file)
    count = re.search(r'epoch 1: (\d+) unreadable images skipped \((\d+) since this run started', out)
    assert count and int(count.group(1)) == int(count.group(2)) == out.count('skipped unreadable image '), out[-2000:]
    assert (tmp_path / 'epoch_1.pth').is_file()

    extracted = run(as_run(extract))
    assert extracted.returncode == 0, extracted.stderr[-3000:]
    saved = np.load(tmp_path / 'features.npz')
    assert saved['features'].shape == (18, 192) and len(saved['paths']) == 18  # the corrupt file skipped, named
    assert f'skipped {photos / "cats" / "broken.jpg"}' in extracted.stderr
    np.testing.assert_allclose(np.linalg.norm(saved['features'], axis=1), 1.0, rtol=1e-5)
    assert sorted(saved['paths'])[0] == os.path.join('cats', 'img_0.png')
    # the features are the teacher's (what MST evaluates), not the student's: the first image encoded here
    teacher, student = first_image_features(as_run(extract), photos, saved['paths'][0])
    np.testing.assert_allclose(saved['features'][0], teacher, atol=1e-5)
    assert np.abs(saved['features'][0] - student).max() > 1e-3  # after an epoch they differ: the check can tell
    assert 'k-NN top-1 by folder name (2 folders' in extracted.stdout  # cats, dogs (dogs/* are one folder)
    broken = tmp_path / 'broken_only'
    broken.mkdir()
    for name in ('a.jpg', 'b.png'):
        (broken / name).write_bytes(b'not an image')
    nothing = run([word if word != str(photos) else str(broken) for word in as_run(extract)])
    assert nothing.returncode == 1
    assert nothing.stderr.strip().splitlines()[-1] == f'error: none of the 2 images in {broken} could be read'
    assert (tmp_path / 'neighbours.png').stat().st_size > 10_000

    exported = run(as_run(export))
    assert exported.returncode == 0, exported.stderr[-3000:]
    arguments = re.search(r'timm\.models\.VisionTransformer\((.*)\)', exported.stdout).group(1)
    model = eval(f'timm.models.VisionTransformer({arguments})', {'timm': timm}).eval()
    model.load_state_dict(torch.load(tmp_path / 'backbone_timm.pth'))
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 192)

    # section 5: that timm model, continued (on the same folder here) with the -continue- recipe
    converted = run(as_run(convert))
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert f"checkpoint='{tmp_path}/start_mst.pth'" in converted.stdout
    continued = run(as_run(cont) + SMALL_RUN)
    assert continued.returncode == 0, continued.stderr[-3000:]
    start = torch.load(tmp_path / 'start_mst.pth')['state_dict']
    after = torch.load(tmp_path / 'continued' / 'epoch_1.pth', weights_only=False)['state_dict']
    imported = start['backbone.layers.0.attn.qkv.weight']
    # the backbone frozen in the first epoch (head first): the student exactly the imported weights, the teacher
    # too up to the rounding of its average of two equal tensors
    torch.testing.assert_close(after['backbone.layers.0.attn.qkv.weight'], imported, rtol=0, atol=0)
    torch.testing.assert_close(after['teacher.module.backbone.layers.0.attn.qkv.weight'], imported, rtol=0, atol=1e-6)
    assert not torch.equal(
        after['neck.mlp.0.weight'],
        torch.load(tmp_path / 'epoch_1.pth', weights_only=False)['state_dict']['neck.mlp.0.weight'],
    )  # the head is fresh and learning


def first_image_features(extract_command, folder, relative_path):
    """(teacher, student) L2-normalised CLS features of one image of ``folder``, through the config's pipeline, for
    the config and checkpoint of the extraction command."""
    import torch.nn.functional as F
    from mmengine.dataset import Compose, default_collate

    from mmmst.apis import image_loader_cfg, init_model
    from mmmst.cli import load_checked_config

    config, checkpoint = extract_command[2:4]
    cfg = load_checked_config(config, None, loaders=())
    model = init_model(cfg, checkpoint)
    pipeline = Compose(image_loader_cfg(cfg).dataset.pipeline)
    data = model.data_preprocessor(default_collate([pipeline(dict(img_path=str(folder / relative_path)))]), False)
    with torch.no_grad():
        teacher, student = model.teacher.module.backbone(data['inputs']), model.backbone(data['inputs'])
    last = [out[-1] if isinstance(out, (tuple, list)) else out for out in (teacher, student)]
    return [F.normalize(out.float().flatten(1), dim=1)[0].numpy() for out in last]


def test_a_folder_without_images_fails_at_start_naming_it(tmp_path):
    (tmp_path / 'photos' / 'notes').mkdir(parents=True)
    (tmp_path / 'photos' / 'notes' / 'readme.txt').write_text('no pictures here')
    train = doc_commands()[0].replace('data/my_photos', str(tmp_path / 'photos'))
    result = run([PY if w == 'python' else w for w in shlex.split(train.replace('work_dirs/my_photos', str(tmp_path)))])
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: train_dataloader: no image in '{tmp_path / 'photos'}") and '.webp' in last, last


def test_images_are_shrunk_with_antialiasing_for_features(tmp_path):
    """The pipeline that extract_features.py (and the pictures) use on a folder config shrinks a photo of fine
    texture (1-pixel stripes, 500 px) to the 64 px view as an average: a near-uniform grey, not the aliasing
    pattern that OpenCV's bilinear resize draws from it."""
    import cv2
    from mmengine.config import Config
    from mmengine.dataset import Compose

    from mmmst.apis import image_loader_cfg

    stripes = np.zeros((500, 500, 3), np.uint8)
    stripes[:, ::2] = 255
    cv2.imwrite(str(tmp_path / 'grass.png'), stripes)
    cfg = Config.fromfile(os.path.join(ROOT, 'configs/mst/mst_vit-4l192-p8_1xb32-coslr-20e_custom-64px.py'))
    pipeline = Compose(image_loader_cfg(cfg).dataset.pipeline)
    shrunk = pipeline(dict(img_path=str(tmp_path / 'grass.png')))['inputs'].float()
    aliased = cv2.resize(stripes, (64, 64), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    assert shrunk.shape[-2:] == (64, 64)
    assert abs(shrunk.mean().item() - 127.5) < 2 and shrunk.std().item() < 2  # the average of the stripes
    assert aliased.std() > 50  # what the unfiltered resize makes of them
