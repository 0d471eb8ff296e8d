"""SpecAugment (the original's draws and fill), time warp and background noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arinext.audio.augment import BackgroundNoise, SpecAugment, mask_axis, time_warp

from .test_data_fakes import write_audio


@pytest.mark.parametrize("axis, max_width", [(-1, 27), (-2, 25)])
def test_mask_statistics_match_the_original_draws(axis, max_width):
    g = torch.Generator().manual_seed(0)
    spec = torch.randn(200, 128)
    counts, widths = [], []
    for _ in range(1500):
        _, bands = mask_axis(spec, max_width, 2, axis, g)
        counts.append(len(bands))
        widths += [e - s for s, e in bands]
        for s, e in bands:
            assert 0 <= s <= e < spec.shape[axis]
    assert max(counts) <= 2 and max(widths) <= max_width - 2  # end drawn again in [start, start + f)
    # f ~ U{0..F-1} (f = 0 stops), width | f ~ U{0..f-1}: E[masks] = q + q^2 with q = (F-1)/F, E[width] = (F-2)/4
    q = (max_width - 1) / max_width
    assert np.mean(counts) == pytest.approx(q + q * q, abs=0.04)
    assert np.mean(widths) == pytest.approx((max_width - 2) / 4, abs=0.4)


def test_masks_are_filled_with_the_spectrogram_mean():
    g = torch.Generator().manual_seed(3)
    spec = torch.randn(100, 64) + 5.0
    out, bands = mask_axis(spec, 27, 1, -1, g)
    while not bands or bands[0][1] == bands[0][0]:
        out, bands = mask_axis(spec, 27, 1, -1, g)
    s, e = bands[0]
    assert torch.allclose(out[:, s:e], spec.mean().expand(100, e - s))
    assert torch.equal(out[:, :s], spec[:, :s]) and torch.equal(out[:, e:], spec[:, e:])


def test_time_warp_is_piecewise_linear_with_fixed_ends():
    ramp = torch.arange(100.0)[:, None].repeat(1, 4)  # value = frame index
    for seed in range(30):
        out = time_warp(ramp, 5, torch.Generator().manual_seed(seed))
        assert out[0, 0] == 0 and out[-1, 0] == pytest.approx(99)
        assert torch.all(out[1:, 0] >= out[:-1, 0])  # monotone
        assert torch.max(torch.abs(out[:, 0] - ramp[:, 0])) <= 5 + 1e-4  # displacement within W
        assert torch.equal(out[:, 0], out[:, 3])  # frequency-independent
    assert torch.equal(time_warp(ramp[:8], 5), ramp[:8])  # too short to warp


def test_spec_augment_training_only_and_seeded():
    x = torch.randn(3, 1, 128, 64)
    a, b = SpecAugment(seed=1), SpecAugment(seed=1)
    ya = a(x)
    assert torch.equal(ya, b(x)) and not torch.equal(ya, x) and ya.shape == x.shape
    assert not torch.equal(ya[0], ya[1])  # maps are augmented independently
    assert torch.equal(a.eval()(x), x)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(SpecAugment()(x, generator=g1), SpecAugment(seed=5)(x, generator=g2))
    with pytest.raises(ValueError):
        SpecAugment(freq_mask=-1)


def test_background_noise_snr(tmp_path):
    write_audio(tmp_path / "noise" / "hum.wav", seconds=1.0, sr=8000, freq=50)
    bg = BackgroundNoise(tmp_path / "noise", sample_rate=16000, snr_db=(10.0, 10.0), p=1.0)
    assert bg.noises[0].numel() == 16000  # resampled to the clip rate
    clean = torch.from_numpy(np.sin(np.linspace(0, 900, 24000)).astype(np.float32))  # longer than the noise
    noisy = bg(clean)
    snr = 10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean())
    assert float(snr) == pytest.approx(10.0, abs=0.05)
    assert torch.equal(bg.eval()(clean), clean)
    assert torch.equal(BackgroundNoise([np.ones(10)], 16000, p=1.0)(torch.zeros(5)), torch.zeros(5))  # silent input
    with pytest.raises(ValueError, match="no usable"):
        BackgroundNoise([np.zeros(10)], 16000)


def test_spec_augment_draws_applied_as_a_batch_equal_forward():
    # draw() in a loader worker, apply() on a batch on the training device: the maps forward() gives
    x = torch.randn(6, 1, 64, 40)
    sa = SpecAugment(freq_mask=15, time_mask=20)
    expected = sa(x, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    draws = torch.stack([sa.draw(64, 40, g) for _ in range(6)])
    assert draws.shape == (6, sa.num_params) and draws.dtype == torch.int64
    got = sa.apply(x, draws)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(got != x, expected != x)  # the same cells masked and warped
    with pytest.raises(ValueError, match="6 maps but 5 rows"):
        sa.apply(x, draws[:5])
