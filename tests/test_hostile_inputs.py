"""What a new user's mistakes and messy folders do to the own-images and export commands: one line naming the bad
value, or it works; no input overwritten, the printed path the one written, no model that does not fit its
weights."""

import glob
import os
import os.path as osp

import numpy as np
import pytest
import torch

from tests.helpers import DEMO_CFG, PY, ROOT, SMALL_CFG, last_line, run, run_main

EXTRACT = 'tools/analysis_tools/extract_features.py'


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory):
    """An (untrained) checkpoint of the demo's config, with its config saved as training saves it."""
    from mmengine.config import Config

    from mmmst.apis import init_model

    cfg = Config.fromfile(DEMO_CFG)
    path = tmp_path_factory.mktemp('demo_ckpt') / 'demo.pth'
    torch.save(dict(state_dict=init_model(cfg).state_dict(), meta=dict(cfg=cfg.pretty_text)), path)
    return str(path)


@pytest.fixture()
def photos(tmp_path):
    """Two class folders of 3 small photos each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder in ('a', 'b'):
        os.makedirs(tmp_path / 'photos' / folder)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (36, 40, 3), dtype=np.uint8)).save(
                tmp_path / 'photos' / folder / f'{i}.png'
            )
    return tmp_path / 'photos'


@pytest.mark.parametrize(
    'outputs, message',
    [
        (['--out', '{tmp}/f.npz', '--neighbours', '{photos}/a/0.png'],
         "--neighbours '{photos}/a/0.png' is inside the folder read ({photos}); write it elsewhere"),
        (['--out', '{photos}/f.npz'], "--out '{photos}/f.npz' is inside the folder read ({photos})"),
        (['--out', '{tmp}/same.png'], "--out '{tmp}/same.png' must end in .npz"),
        (['--out', '{tmp}'], "--out '{tmp}' is a directory; give a file name ending in .npz"),
        (['--out', '{tmp}/f.npz', '--neighbours', '{tmp}/n.gif'], "--neighbours '{tmp}/n.gif' must end in .png or"),
        (['--out', '{tmp}/f.npz', '--neighbours', '{tmp}/f.npz'], "--neighbours '{tmp}/f.npz' must end in .png or"),
        (['--out', '{photos}/a/0.png/f.npz'], "--out '{photos}/a/0.png/f.npz' is inside the folder read"),
    ],
)  # fmt: skip
def test_extract_features_refuses_outputs_that_would_overwrite_or_mis_say_before_any_work(
    outputs, message, photos, demo_checkpoint, tmp_path
):
    before = {p: p.read_bytes() for p in photos.rglob('*.png')}
    args = [a.format(tmp=tmp_path, photos=photos) for a in outputs]
    result = run_main(EXTRACT, DEMO_CFG, demo_checkpoint, photos, *args)
    assert result.returncode == 1 and last_line(result).startswith(
        'error: ' + message.format(tmp=tmp_path, photos=photos)
    )
    assert {p: p.read_bytes() for p in photos.rglob('*.png')} == before  # no photo touched
    assert sorted(tmp_path.glob('*.npz')) == [] and not list(tmp_path.glob('*.partial'))


def test_extract_features_works_with_the_demos_config_through_links_and_huge_files_writing_what_it_says(
    photos, demo_checkpoint, tmp_path
):
    """The demo's own config (idx data set: ``download``, no loading step), a symbolic-link loop and a dangling
    link (named, skipped), a PNG of 30000 x 30000 pixels (skipped at its header, named with its size), the
    output in a folder that does not exist yet (made), written exactly where the line says."""
    os.symlink(photos / 'a', photos / 'a' / 'loop')
    os.symlink(tmp_path / 'nothing.png', photos / 'b' / 'dangling.png')
    write_huge_png(photos / 'b' / 'scan.png', 30000, 30000)
    out = tmp_path / 'new' / 'features.npz'
    result = run([PY, EXTRACT, DEMO_CFG, demo_checkpoint, str(photos), '--out', str(out), '--neighbours',
                  str(tmp_path / 'n.png')])  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'written: {out} (6 x 128 teacher CLS features' in result.stdout and out.is_file()
    assert f'written: {tmp_path / "n.png"}' in result.stdout and (tmp_path / 'n.png').is_file()
    said = result.stdout + result.stderr
    assert f'skipped {photos}/a/loop: a symbolic link back to {photos}/a' in said
    assert f"skipped {photos}/b/dangling.png: a symbolic link to '{tmp_path}/nothing.png', which does not exist" in said
    assert (
        f'{photos}/b/scan.png: cannot read this image (ValueError: 30000 x 30000 = 900 M pixels, above the limit'
        in said
    )
    saved = np.load(out)
    assert len(saved['paths']) == 6 and 'b/scan.png' not in saved['paths']


def write_huge_png(path, width, height):
    """A gray PNG of ``width`` x ``height`` zero pixels, written row by row (under 1 MB on disk)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    rows = b''.join(compressor.compress(b'\0' + bytes(width)) for _ in range(height)) + compressor.flush()
    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', rows) + chunk(b'IEND', b''))


def test_a_huge_jpeg_is_decoded_shrunk_within_the_pixel_limit(tmp_path):
    from PIL import Image

    from mmmst.datasets.transforms import LoadImageWithPath

    Image.new('RGB', (400, 300), (10, 20, 200)).save(tmp_path / 'big.jpg', quality=90)
    loader = LoadImageWithPath(max_pixels=40_000)  # 120,000 pixels: 1/2 gives 30,000
    img = loader(dict(img_path=str(tmp_path / 'big.jpg')))['img']
    assert img.shape == (150, 200, 3) and abs(int(img[75, 100, 0]) - 200) < 8  # BGR, as mmcv gives it
    with pytest.raises(OSError, match=r'big.jpg: .*400 x 300 = 0 M pixels, above the limit'):
        LoadImageWithPath(max_pixels=1_000)(dict(img_path=str(tmp_path / 'big.jpg')))  # 1/8 is still too large
    assert LoadImageWithPath(max_pixels=1_000, skip_unreadable=True)(dict(img_path=str(tmp_path / 'big.jpg'))) is None


def test_a_photo_folder_with_a_link_loop_still_lists_every_image_once(photos, tmp_path):
    from mmpretrain.datasets import CustomDataset

    from mmmst.datasets import ImageFolderDataset

    plain = CustomDataset(data_root=str(photos), with_label=False, pipeline=[])
    paths = [plain.get_data_info(i)['img_path'] for i in range(len(plain))]
    os.symlink(photos, photos / 'b' / 'up')  # a link to the folder above: a loop
    ours = ImageFolderDataset(data_root=str(photos), with_label=False, pipeline=[])
    assert [ours.get_data_info(i)['img_path'] for i in range(len(ours))] == paths
    labelled = ImageFolderDataset(data_root=str(photos), pipeline=[])
    assert [labelled.get_data_info(i)['gt_label'] for i in range(len(labelled))] == [0, 0, 0, 1, 1, 1]


def test_train_py_switches_a_folder_with_a_loop_to_the_dataset_that_names_it(photos, capsys):
    from mmmst.cli import load_checked_config

    os.symlink(photos, photos / 'a' / 'up')
    cfg = load_checked_config(
        'configs/mst/mst_vit-4l192-p8_1xb32-coslr-20e_custom-64px.py',
        {'train_dataloader.dataset.data_root': str(photos), 'train_dataloader.num_workers': 0},
    )
    assert cfg.train_dataloader.dataset.type == 'ImageFolderDataset'
    assert cfg.train_dataloader.persistent_workers is False  # num_workers=0 works
    err = capsys.readouterr()
    assert f'warning: train_dataloader: skipping {photos}/a/up: a symbolic link back to {photos}' in err.err
    assert 'note: train_dataloader.persistent_workers set to False' in err.out


@pytest.mark.parametrize(
    'option, message',
    [
        ('default_hooks.chekpoint.interval=1', 'default_hooks.chekpoint is not a hook (no "type"; it holds '
                                               "{'interval': 1}); did you mean default_hooks.checkpoint?"),
        ('model.backbone.patch_size=0', 'MSTViT: patch_size must be a positive integer, got 0'),
        ('model.backbone.img_size=abc', "MSTViT: img_size must be a positive integer or a pair of them, got 'abc'"),
    ],
)  # fmt: skip
def test_train_py_names_the_bad_key_in_one_line(option, message, fashion_mnist, tmp_path):
    result = run_main('tools/train.py', SMALL_CFG, '--work-dir', tmp_path / 'w', '--cfg-options', option,
                      f'train_dataloader.dataset.data_root={fashion_mnist}')  # fmt: skip
    assert result.returncode == 1 and last_line(result) == f'error: {message}'
    assert 'None' not in result.stderr.splitlines()


def test_a_documented_hook_argument_is_no_typo():
    from mmengine.config import Config

    from mmmst.cli.config_checks import cfg_option_warnings

    cfg = Config.fromfile(SMALL_CFG)
    assert cfg_option_warnings(cfg, {'default_hooks.checkpoint.max_keep_iter_ckpts': 2}) == []
    assert cfg_option_warnings(cfg, {'default_hooks.checkpoint.max_keep_ckpt': 2}) == [
        "--cfg-options 'default_hooks.checkpoint.max_keep_ckpt' adds a new key; did you mean "
        "'default_hooks.checkpoint.max_keep_ckpts'?"
    ]


def test_the_converters_check_the_config_and_the_output_before_writing(one_epoch_run, tmp_path):
    checkpoint = one_epoch_run / 'epoch_1.pth'  # the 4-layer config, saved in it
    result = run_main('tools/model_converters/mst_to_timm.py', checkpoint, tmp_path / 'o.pth', '--config', DEMO_CFG)
    assert last_line(result).startswith(f'error: --config {DEMO_CFG} gives another backbone than the one saved in')
    assert not (tmp_path / 'o.pth').exists()
    for tool in ('mst_to_timm.py', 'mst_to_backbone.py'):
        refused = run_main(f'tools/model_converters/{tool}', checkpoint, tmp_path)
        assert last_line(refused) == f"error: the output '{tmp_path}' is a directory; give a file name, e.g. " + (
            f'{tmp_path}/backbone.pth'
        )
        assert not list(tmp_path.glob('*.partial'))
        made = run_main(f'tools/model_converters/{tool}', checkpoint, tmp_path / 'new' / tool)
        assert made.returncode == 0 and (tmp_path / 'new' / tool).is_file(), made.stderr


CUSTOM_CFG = 'configs/mst/mst_vit-4l192-p8_1xb32-coslr-20e_custom-64px.py'


def test_a_photo_folder_with_a_loop_a_dangling_link_and_a_broken_file_trains_and_extracts(photos, tmp_path):
    """tools/train.py on the folder config, as docs/own_data.md gives it (skip_unreadable=True, here with
    num_workers=0), then extract_features.py with the same option: both go through, naming each link and file."""
    os.symlink(photos, photos / 'a' / 'up')
    os.symlink(tmp_path / 'gone.jpg', photos / 'b' / 'gone.jpg')
    (photos / 'b' / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not a whole JPEG')
    options = ['train_dataloader.dataset.pipeline.0.skip_unreadable=True']
    trained = run([PY, 'tools/train.py', CUSTOM_CFG, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                   f'train_dataloader.dataset.data_root={photos}', 'train_dataloader.num_workers=0',
                   'train_dataloader.batch_size=2', 'train_cfg.max_epochs=1', *options])  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    said = trained.stdout + trained.stderr
    assert f'warning: train_dataloader: skipping {photos}/a/up: a symbolic link back to {photos}' in said
    assert f'skipping {photos}/b/gone.jpg: a symbolic link to' in said
    assert 'note: train_dataloader.persistent_workers set to False' in said
    extracted = run([PY, EXTRACT, CUSTOM_CFG, str(tmp_path / 'w' / 'epoch_1.pth'), str(photos), '--out',
                     str(tmp_path / 'f.npz'), '--cfg-options', *options])  # fmt: skip
    assert extracted.returncode == 0, extracted.stderr[-3000:]
    assert f'written: {tmp_path / "f.npz"} (6 x 192' in extracted.stdout
    assert f'{photos}/b/broken.jpg' in extracted.stdout + extracted.stderr


SHIPPED_PRETRAINING = sorted(
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'configs/mst/**/*.py'), recursive=True)
    if 'linear' not in p and 'benchmarks' not in p
)


@pytest.mark.parametrize('config', SHIPPED_PRETRAINING, ids=lambda p: osp.basename(p)[:-3])
def test_extract_features_works_with_every_shipped_pretraining_config(config, photos, tmp_path):
    """Every pretraining config of the repo (ImageNet, ablations, Fashion-MNIST, folders): a ViT's CLS token, and a
    Swin's last map averaged (768 numbers per image for Swin-T, as its k-NN evaluates it), never a flattened map."""
    from mmengine.config import Config

    from mmmst.apis import init_model

    cfg = Config.fromfile(config)
    backbone = cfg.model.backbone
    arch = backbone.get('arch', 'tiny' if 'Swin' in backbone.type else 'deit-small')
    width = {'deit-small': 384, 'tiny': 768}.get(arch) if isinstance(arch, str) else arch['embed_dims']

    checkpoint = tmp_path / 'untrained.pth'
    backbone.init_cfg = None  # a -continue- config's starting weights: only the checkpoint is read here
    torch.save(dict(state_dict=init_model(cfg).state_dict(), meta={}), checkpoint)
    result = run_main(EXTRACT, config, checkpoint, photos, '--out', tmp_path / 'f.npz')
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.load(tmp_path / 'f.npz')['features'].shape == (6, width)
