"""Waveform augmentation: each effect's statistic, determinism under the seed, shapes, dtypes, no NaN,
and the recipe key that builds the chain."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("scipy.signal", reason="the augment extra: pip install 'arinext[augment]'")
from scipy.signal import welch  # noqa: E402

from arinext.audio import waveaug as W  # noqa: E402
from arinext.audio.augment import BackgroundNoise  # noqa: E402

SR = 16000
CLIP = Path(__file__).resolve().parents[1] / "src/arinext/assets/keywords10/down/03abcb9e_nohash_0.flac"
NAMES = ["speed", "pitch", "reverb", "eq", "bandlimit", "clipping", "mp3", "gain", "shift"]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def speech() -> torch.Tensor:
    x, sr = sf.read(CLIP, dtype="float32")
    assert sr == SR
    return torch.from_numpy(x)


def noise(n: int = SR, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(n).astype(np.float32) * 0.1)


def sine(freq: float, n: int = SR) -> torch.Tensor:
    return (torch.sin(2 * torch.pi * freq * torch.arange(n) / SR) * 0.5).float()


def peak_freq(x: torch.Tensor) -> float:
    spec = np.abs(np.fft.rfft(x.numpy() * np.hanning(x.numel())))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)  # parabolic interpolation of the peak bin
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / x.numel()


def band_db(x: torch.Tensor, lo: float, hi: float) -> float:
    f, p = welch(x.numpy().astype(np.float64), fs=SR, nperseg=4096)
    sel = (f >= lo) & (f <= hi)
    return float(10 * np.log10(p[sel].mean() + 1e-30))


@pytest.fixture(scope="module")
def bank() -> W.IRBank:
    pytest.importorskip("pyroomacoustics")
    return W.IRBank.simulate(4, SR, seed=0, rt60=(0.2, 0.4), method="hybrid", n_rays=1000)


def make(name: str, bank: W.IRBank) -> W.WaveformTransform:
    pytest.importorskip({"pitch": "python_stretch", "mp3": "fast_mp3_augment"}.get(name, "scipy"))
    return {
        "speed": lambda: W.SpeedPerturb(SR, p=1.0),
        "pitch": lambda: W.PitchShift(SR, p=1.0),
        "reverb": lambda: W.RoomReverb(bank, wet=(0.5, 1.0), p=1.0),
        "eq": lambda: W.RandomEQ(SR, p=1.0),
        "bandlimit": lambda: W.BandLimit.telephone(SR, p=1.0),
        "clipping": lambda: W.Clipping((0.01, 0.2), p=1.0),
        "mp3": lambda: W.Mp3Codec(SR, p=1.0),
        "gain": lambda: W.Gain(p=1.0),
        "shift": lambda: W.TimeShift(SR, p=1.0),
    }[name]()


# ------------------------------------------------------------------------------------------- every one


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_shape_dtype_finite(name: str, bank: W.IRBank) -> None:
    t = make(name, bank)
    x = speech()
    a, b = t(x, gen(1)), t(x, gen(1))
    assert a.shape == x.shape and a.dtype == torch.float32
    assert torch.equal(a, b), "the same generator seed must give the same output"
    assert not torch.equal(a, t(x, gen(2))), "another seed must give another output"
    assert not torch.equal(a, x), "p=1 must change the clip"
    assert torch.isfinite(a).all()
    for edge in (torch.zeros(SR), x[:800], x * 50.0, x.double(), torch.zeros(0)):  # silence, short, loud, float64, empty
        y = t(edge, gen(3))
        assert y.shape == edge.shape and y.dtype == edge.dtype and torch.isfinite(y).all(), name


@pytest.mark.parametrize("name", NAMES)
def test_p_zero_is_identity_and_the_stream_does_not_depend_on_p(name: str, bank: W.IRBank) -> None:
    t = make(name, bank)
    t.p = 0.0
    x = speech()
    g = gen(5)
    assert t(x, g) is x
    t.p = 1.0
    g2 = gen(5)
    t(x, g2)
    assert torch.rand(1, generator=g).item() == torch.rand(1, generator=g2).item()


def test_p_is_the_fraction_of_clips_changed() -> None:
    t = W.Gain((6.0, 6.0), p=0.3)
    x = speech()
    changed = sum(not torch.equal(t(x, gen(k)), x) for k in range(400))
    assert 0.3 * 400 - 30 <= changed <= 0.3 * 400 + 30  # binomial(400, 0.3): sd 9.2


# ------------------------------------------------------------------------------------------- effects


def test_speed_scales_frequencies_and_keeps_the_length() -> None:
    for factor in (0.9, 1.1):
        y = W.SpeedPerturb(SR, (factor, factor), p=1.0)(sine(1000.0), gen())
        assert y.numel() == SR
        assert peak_freq(y) == pytest.approx(1000.0 * factor, rel=0.003)
    x = torch.zeros(SR)
    x[7900:8100] = sine(500.0, 200)
    y = W.SpeedPerturb(SR, (1.1, 1.1), p=1.0)(x, gen())
    centre = float((torch.arange(SR) * y.abs()).sum() / y.abs().sum())
    assert centre == pytest.approx(8000, abs=20), "the word stays centred"
    burst = float((y.abs() > 0.05).sum())
    assert burst == pytest.approx(200 / 1.1, rel=0.1), "and gets shorter by the factor"


def test_pitch_shift_moves_pitch_not_duration() -> None:
    pytest.importorskip("python_stretch")
    y = W.PitchShift(SR, (3.0, 3.0), p=1.0)(sine(440.0), gen())
    assert peak_freq(y[2000:-2000]) == pytest.approx(440.0 * 2 ** (3 / 12), rel=0.01)
    x = torch.zeros(SR)
    x[6000:10000] = sine(300.0, 4000)
    y = W.PitchShift(SR, (-3.0, -3.0), p=1.0)(x, gen())
    centroid = float((torch.arange(SR) * y.pow(2)).sum() / y.pow(2).sum())
    assert centroid == pytest.approx(8000, abs=160)


def test_random_eq_follows_its_drawn_curve() -> None:
    t = W.RandomEQ(SR, gain_db=(-10, 10), p=1.0)
    x = noise(8 * SR)
    y = t(x, gen(11))
    assert t.last_curve is not None
    freqs, gains = t.last_curve
    assert np.ptp(gains) > 5, "a draw spread over the range"
    for f, g in zip(freqs, gains):
        measured = band_db(y, f * 0.97, f * 1.03) - band_db(x, f * 0.97, f * 1.03)
        assert measured == pytest.approx(g, abs=2.0), (f, g, measured)


def test_telephone_band_removes_energy_outside_300_3400_hz_without_delay() -> None:
    x = noise(4 * SR)
    y = W.BandLimit.telephone(SR, p=1.0)(x, gen())
    loss = {band: band_db(x, *band) - band_db(y, *band) for band in ((20, 150), (600, 2500), (4500, 7900))}
    assert loss[(20, 150)] > 20 and loss[(4500, 7900)] > 20
    assert abs(loss[(600, 2500)]) < 1.0
    x = speech()
    y = W.BandLimit.telephone(SR, p=1.0)(x, gen())
    lag = np.argmax(np.correlate(y.numpy(), x.numpy(), "full")) - (SR - 1)
    assert lag == 0


def test_clipping_clips_the_drawn_fraction() -> None:
    t = W.Clipping((0.05, 0.05), p=1.0)
    x = noise()
    y = t(x, gen())
    assert t.last_threshold is not None
    assert float(y.abs().max()) == pytest.approx(t.last_threshold)
    assert float((y.abs() >= t.last_threshold - 1e-7).float().mean()) == pytest.approx(0.05, abs=0.005)


def test_mp3_low_bitrate_removes_the_high_band_and_stays_aligned() -> None:
    pytest.importorskip("fast_mp3_augment")
    x = noise(2 * SR)
    y = W.Mp3Codec(SR, bitrates=[8], p=1.0)(x, gen())
    assert band_db(x, 5000, 7900) - band_db(y, 5000, 7900) > 20
    s = speech()
    y = W.Mp3Codec(SR, bitrates=[64], p=1.0)(s, gen())
    c = np.correlate(y.numpy(), s.numpy(), "full")
    assert abs(int(np.argmax(c)) - (SR - 1)) <= 2
    assert np.corrcoef(y.numpy(), s.numpy())[0, 1] > 0.9
    loud = s / s.abs().max() * 3.0  # beyond full scale: coded scaled, not clipped
    y = W.Mp3Codec(SR, bitrates=[64], p=1.0)(loud, gen())
    assert float(y.abs().max()) > 2.0


def test_gain_and_shift() -> None:
    x = speech()
    assert torch.allclose(W.Gain((6.0, 6.0), p=1.0)(x, gen()), x * 10 ** (6 / 20))
    t = W.TimeShift(SR, 0.1, p=1.0)
    y = t(x, gen(4))
    s = t.last_shift
    assert s != 0 and abs(s) <= 1600
    if s > 0:
        assert torch.equal(y[s:], x[:-s]) and not y[:s].any()
    else:
        assert torch.equal(y[:s], x[-s:]) and not y[s:].any()
    shifts = []
    for k in range(200):
        t(x, gen(k))
        shifts.append(t.last_shift)
    assert abs(np.mean(shifts)) < 200 and max(shifts) > 1200 and min(shifts) < -1200  # uniform in [-1600, 1600]


def test_reverb_adds_a_tail_without_delay_and_keeps_the_level(bank: W.IRBank) -> None:
    x = torch.zeros(SR)
    x[4000:4400] = noise(400)
    y = W.RoomReverb(bank, p=1.0)(x, gen(2))
    assert y.pow(2).mean().sqrt().item() == pytest.approx(x.pow(2).mean().sqrt().item(), rel=1e-4)
    lag = np.argmax(np.correlate(y.numpy(), x.numpy(), "full")) - (SR - 1)
    assert abs(lag) <= 20
    tail = float(y[4500:6000].pow(2).sum() / y.pow(2).sum())
    assert tail > 0.02, "energy after the burst ended: the reverberation"


def test_ir_bank_reaches_its_rt60_is_a_function_of_its_seed_and_caches(bank: W.IRBank, tmp_path: Path) -> None:
    import pyroomacoustics as pra

    again = W.IRBank.simulate(4, SR, seed=0, rt60=(0.2, 0.4), method="hybrid", n_rays=1000)
    assert all(np.array_equal(a, b) for a, b in zip(bank.irs, again.irs))
    for h, info in zip(bank.irs, bank.info):
        assert h.dtype == np.float32 and np.isfinite(h).all()
        assert int(np.argmax(np.abs(h))) == 16  # aligned: the direct path 16 samples in
        assert pra.experimental.measure_rt60(h, fs=SR, decay_db=30) == pytest.approx(info["rt60"], rel=0.4), info
    args = dict(seed=3, rt60=(0.2, 0.3), method="ism", max_order=6, cache_dir=tmp_path)
    first = W.IRBank.simulate(2, SR, **args)
    assert len(list(tmp_path.glob("irbank-*.npz"))) == 1
    loaded = W.IRBank.simulate(2, SR, **args)
    assert all(np.array_equal(a, b) for a, b in zip(first.irs, loaded.irs)) and loaded.info == first.info
    other = W.IRBank.simulate(2, SR, **{**args, "seed": 4})
    assert not np.array_equal(other.irs[0], first.irs[0]) and len(list(tmp_path.glob("irbank-*.npz"))) == 2


def test_ir_bank_from_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for k in range(2):
        h = np.zeros(48000, dtype=np.float32)
        h[1000 + 100 * k] = 1.0
        h[1200:] += (rng.standard_normal(46800) * np.exp(-np.arange(46800) / 4800) * 0.3).astype(np.float32)
        sf.write(tmp_path / f"ir{k}.wav", h, 48000)
    b = W.IRBank.from_folder(tmp_path, SR)
    assert len(b) == 2 and all(abs(int(np.argmax(np.abs(h))) - 16) <= 1 for h in b.irs)
    with pytest.raises(ValueError, match="no .wav or .flac"):
        W.IRBank.from_folder(tmp_path / "nothing", SR)


def test_seeded_global_random_is_deterministic_and_restores_the_global_state() -> None:
    def jitter(samples: np.ndarray, sample_rate: int) -> np.ndarray:  # draws from both global generators
        return samples * random.uniform(0.5, 1.5) + np.random.randn(*samples.shape).astype(np.float32) * 0.01

    t = W.SeededGlobalRandom(jitter, SR)
    random.seed(123)
    np.random.seed(123)
    before = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    x = speech()
    a, b = t(x, gen(9)), t(x, gen(9))
    assert torch.equal(a, b) and not torch.equal(a, t(x, gen(10)))
    assert (random.random(), np.random.rand()) == before


# ------------------------------------------------------------------------------------------- recipes


def test_recipe_spec_builds_the_chain_in_order(tmp_path: Path) -> None:
    pytest.importorskip("python_stretch")
    noise_mod = BackgroundNoise([np.ones(SR, dtype=np.float32)], SR)
    spec = {"eq": True, "speed": {"p": 0.2, "factor": [0.95, 1.05]}, "mp3": False, "pitch": None,
            "reverb": {"bank_size": 2, "method": "ism", "cache_dir": str(tmp_path)}}  # fmt: skip
    chain = W.build_waveform_augment(spec, SR, noise_mod)
    assert isinstance(chain, W.Compose)
    assert [type(t).__name__ for t in chain.transforms] == ["SpeedPerturb", "RoomReverb", "BackgroundNoise", "RandomEQ"]
    assert chain.transforms[0].p == 0.2 and chain.transforms[0].factor == (0.95, 1.05)
    assert W.build_waveform_augment({}, SR, noise_mod) is noise_mod
    assert W.build_waveform_augment({"mp3": False}, SR) is None
    x = speech()
    assert torch.equal(chain(x, gen(1)), chain(x, gen(1)))


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"echo": True}, "unknown augmentation"),
        ({"speed": {"rate": 2}}, "unknown option"),
        ({"speed": 0.5}, "true, false or a mapping"),
        ({"speed": {"factor": [1.2, 0.9]}}, "data.augment.speed: factor"),
        ({"gain": {"p": 2}}, "data.augment.gain: p must be in"),
        ({"reverb": {"folder": "/nonexistent", "rt60": [0.2, 0.3]}}, "do not apply to a folder"),
    ],
)
def test_bad_recipe_specs_name_the_problem(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        W.build_waveform_augment(spec, SR)


def test_a_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from arinext.utils.optional import MissingExtraError

    monkeypatch.setitem(sys.modules, "python_stretch", None)  # import python_stretch now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'arinext\[augment\]'"):
        W.build_waveform_augment({"pitch": True}, SR)


def test_the_recipe_key_reaches_training_clips_seeded_per_epoch_and_clip() -> None:
    from arinext.train.config import load_config
    from arinext.train.data import build_dataset

    root = CLIP.parents[1]
    augment = "{speed: {p: 1.0}, eq: {p: 1.0}, clipping: {p: 1.0, fraction: [0.01, 0.02]}}"
    cfg = load_config("keywords", [f"data.root={root}", f"data.augment={augment}", "data.spec_augment=false",
                                   "data.background_noise=null"])  # fmt: skip
    ds = build_dataset(cfg.data, "training", training=True, seed=3).dataset
    plain = build_dataset(load_config("keywords", [f"data.root={root}", "data.spec_augment=false",
                                                   "data.background_noise=null"]).data, "training", True, seed=3).dataset  # fmt: skip
    ds.set_epoch(0)
    plain.set_epoch(0)
    a, b, p = ds[5]["inputs"], ds[5]["inputs"], plain[5]["inputs"]
    assert a.shape == p.shape == (1, 101, 64) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, p), "seeded, and the augmentation is applied"
    ds.set_epoch(1)
    assert not torch.equal(ds[5]["inputs"], a), "another epoch draws again"
    assert not torch.equal(ds[6]["inputs"], ds[5]["inputs"])
    val = build_dataset(cfg.data, "validation", training=False).dataset
    assert val.waveform_transform is None, "evaluation clips are never augmented"
