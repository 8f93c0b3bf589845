"""The batched photometric stage (MultiCropDataPreprocessor): torchvision's ops, DINO's rates and ranges."""

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from mmmst.models import MultiCropDataPreprocessor
from mmmst.models.utils import photometric as P

N = 6
FACTORS = torch.tensor([0.6, 0.8, 1.0, 1.2, 1.4, 0.7])
SHIFTS = torch.tensor([-0.1, -0.05, 0.0, 0.03, 0.1, 0.5])
SIGMAS = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0, 0.3])

# (batched op, torchvision's op on one image, parameters, tolerance). Gray-based ops use PIL's luma
# (0.299, 0.587, 0.114), which DINO's PIL pipeline uses; torchvision's tensor ops use 0.2989: up to 1e-4 apart.
CASES = {
    'brightness': (P.adjust_brightness, TF.adjust_brightness, FACTORS, 1e-6),
    'contrast': (P.adjust_contrast, TF.adjust_contrast, FACTORS, 2e-4),
    'saturation': (P.adjust_saturation, TF.adjust_saturation, FACTORS, 2e-4),
    'hue': (P.adjust_hue, TF.adjust_hue, SHIFTS, 1e-5),
    'blur': (lambda x, s: P.gaussian_blur(x, s, 13), lambda x, s: TF.gaussian_blur(x, [13, 13], [s, s]), SIGMAS, 1e-5),
}


@pytest.mark.parametrize('name', list(CASES))
def test_each_op_equals_torchvision_with_the_same_parameter(name):
    batched, reference, params, tolerance = CASES[name]
    x = torch.rand(N, 3, 20, 24)
    expected = torch.stack([reference(x[i], float(params[i])) for i in range(N)])
    torch.testing.assert_close(batched(x, params), expected, rtol=0, atol=tolerance)


def test_grayscale_and_solarize_equal_torchvision():
    x = torch.rand(N, 3, 20, 24)
    torch.testing.assert_close(P.grayscale(x), TF.rgb_to_grayscale(x, 3), rtol=0, atol=2e-4)
    torch.testing.assert_close(P.solarize(x), TF.solarize(x, 128 / 255), rtol=0, atol=0)  # PIL: >= 128 inverted


def test_jitters_run_in_each_images_drawn_order():
    """The four jitters are applied in a random order per image (torchvision's ColorJitter: randperm(4))."""
    x = torch.rand(16, 3, 8, 8)
    out, drawn = P.color_jitter(x.clone(), torch.ones(16, dtype=torch.bool), (0.4, 0.4, 0.2, 0.1))
    reference = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for i in range(16):
        image = x[i]
        for j in drawn['order'][i].tolist():
            image = reference[j](image, float(drawn['factors'][i, j]))
        torch.testing.assert_close(out[i], image, rtol=0, atol=5e-4)
    assert len({tuple(o) for o in drawn['order'].tolist()}) > 1


def within(rate: float, p: float, n: int) -> bool:
    """An observed rate inside 4 binomial standard deviations of p."""
    return abs(rate - p) <= 4 * (p * (1 - p) / n) ** 0.5 + 1e-9


def test_rates_and_ranges_are_dinos():
    """Over many draws: jitter 0.8, grayscale 0.2, each view's blur and solarize rate, DINO's factor ranges."""
    torch.manual_seed(0)
    n = 3 * 4000  # global 1, global 2, local
    blur_p = torch.tensor([1.0, 0.1, 0.5]).repeat_interleave(4000)
    solarize_p = torch.tensor([0.0, 0.2, 0.0]).repeat_interleave(4000)
    _, drawn = P.dino_photometric(torch.rand(n, 3, 8, 8), blur_prob=blur_p, solarize_prob=solarize_p)
    assert within(drawn['jitter'].float().mean().item(), 0.8, n)
    assert within(drawn['gray'].float().mean().item(), 0.2, n)
    for view, (blur, solar) in enumerate([(1.0, 0.0), (0.1, 0.2), (0.5, 0.0)]):
        part = slice(view * 4000, (view + 1) * 4000)
        assert within(drawn['blur'][part].float().mean().item(), blur, 4000)
        assert within(drawn['solarize'][part].float().mean().item(), solar, 4000)
    factors = drawn['factors']
    for j, (lo, hi) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)]):
        assert lo <= factors[:, j].min() < lo + 0.01 and hi - 0.01 < factors[:, j].max() <= hi
    assert 0.1 <= drawn['sigma'].min() < 0.11 and 1.99 < drawn['sigma'].max() <= 2.0
    first = torch.bincount(drawn['order'][:, 0], minlength=4).float() / n  # each jitter first in 1/4 of images
    assert all(within(r, 0.25, n) for r in first.tolist())


def test_preprocessor_applies_each_views_probabilities_then_normalises():
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    views = [torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8) for _ in range(2)]
    views += [torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8) for _ in range(3)]
    plain = MultiCropDataPreprocessor(mean=mean, std=std, to_rgb=True, color_jitter_prob=0.0, grayscale_prob=0.0,
                                      blur_probs=(0, 0, 0), solarize_probs=(0, 0, 0))  # fmt: skip
    out = plain(dict(inputs=views, data_samples=None), training=True)['inputs']
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    for view, result in zip(views, out):  # nothing drawn: BGR -> RGB and normalisation only
        torch.testing.assert_close(result, (view[:, [2, 1, 0]].float() - m) / s, rtol=0, atol=1e-4)

    blur_first = MultiCropDataPreprocessor(mean=mean, std=std, to_rgb=True, color_jitter_prob=0.0, grayscale_prob=0.0,
                                           blur_probs=(1, 0, 0), solarize_probs=(0, 0, 1))  # fmt: skip
    out = blur_first(dict(inputs=views, data_samples=None), training=True)['inputs']
    expected = [(v[:, [2, 1, 0]].float() - m) / s for v in views]
    assert not torch.allclose(out[0], expected[0], atol=1e-3)  # global 1 blurred
    torch.testing.assert_close(out[1], expected[1], rtol=0, atol=1e-4)  # global 2 untouched
    assert all(not torch.allclose(o, e, atol=1e-3) for o, e in zip(out[2:], expected[2:]))  # locals solarized
    # outside training: normalisation only (k-NN loaders)
    single = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    evaluated = blur_first(dict(inputs=single, data_samples=None), training=False)['inputs']
    torch.testing.assert_close(evaluated, (single[:, [2, 1, 0]].float() - m) / s)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(blur_probs=(1.0, 0.1)), 'blur_probs must be 3 probabilities'),
        (dict(solarize_probs=(0, 1.5, 0)), 'solarize_probs must be 3 probabilities'),
        (dict(color_jitter_prob=2), 'color_jitter_prob must be in'),
        (dict(blur_sigma=(2.0, 0.1)), 'blur_sigma must be'),
    ],
)
def test_bad_preprocessor_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiCropDataPreprocessor(mean=[0.0], std=[1.0], **kwargs)


def test_worker_stage_only_crops_and_flips():
    from mmmst.datasets.transforms import MultiCropViews

    transform = MultiCropViews(global_crop_size=32, local_crop_size=16, num_local_views=3, photometric=False)
    names = {type(t).__name__ for pipeline in transform.pipelines for t in pipeline.transforms}
    assert names == {'RandomResizedCrop', 'RandomFlip'}
    image = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    views = transform(dict(img=image))['img']
    assert [v.shape for v in views] == [(32, 32, 3)] * 2 + [(16, 16, 3)] * 3
    assert all(v.dtype == np.uint8 for v in views)
