"""Bad clips through the dataset: skipped with a named error in training, raised in evaluation.

Plus a property test: random bytes and random arrays through decoding and the front end raise
only ``AudioDecodeError`` and never return non-finite features.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from arinext.audio import LogMel, get_preset
from arinext.audio.io import AudioDecodeError, check_waveform, load_audio
from arinext.data import AudioClipDataset, BadClipReport, ClipRecord, make_loader

from .test_data_fakes import write_audio

FE = get_preset("speech_commands_v2")


def _bad_files(d):
    good = write_audio(d / "good.wav", seconds=0.5)
    trunc = write_audio(d / "trunc.wav", seconds=1.0)
    trunc.write_bytes(trunc.read_bytes()[:-10000])
    flac = write_audio(d / "trunc.flac", seconds=1.0)
    flac.write_bytes(flac.read_bytes()[:2000])
    (d / "empty.wav").write_bytes(b"")
    sf.write(d / "zero.wav", np.zeros(0, dtype=np.float32), 16000)
    nan = np.full(800, np.nan, dtype=np.float32)
    sf.write(d / "nan.wav", nan, 16000, subtype="FLOAT")
    (d / "text.wav").write_text("not audio at all\n" * 50)
    return [good, trunc, flac, d / "empty.wav", d / "zero.wav", d / "nan.wav", d / "text.wav", d / "missing.wav"]


def test_training_skips_and_reports_every_bad_clip(tmp_path):
    files = _bad_files(tmp_path)
    ds = AudioClipDataset([ClipRecord(str(p), 0) for p in files], FE, training=True)
    assert ds.on_bad_clip == "skip"
    report = BadClipReport(max_shown=3)
    sizes = []
    for batch in make_loader(ds, batch_size=3, shuffle=False, num_workers=0):
        report.update(batch)
        sizes.append(0 if batch["inputs"] is None else batch["inputs"].shape[0])
    assert sum(sizes) == 1 and report.count == 7
    problems = dict(e.split(": ", 1) for e in report.errors)
    expected = {
        "trunc.wav": "truncated WAV", "trunc.flac": "corrupt or truncated audio", "empty.wav": "empty file",
        "zero.wav": "zero-length audio", "nan.wav": "NaN or Inf", "text.wav": "not a readable audio file",
        "missing.wav": "file not found",
    }  # fmt: skip
    for name, problem in expected.items():
        assert problem in problems[str(tmp_path / name)], (name, problems[str(tmp_path / name)])
    assert report.summary().startswith("7 bad clips skipped: ") and report.summary().endswith("(+4 more)")


def test_evaluation_raises_by_default(tmp_path):
    files = _bad_files(tmp_path)
    ds = AudioClipDataset([ClipRecord(str(p), 0) for p in files], FE, training=False)
    assert ds.on_bad_clip == "error" and ds[0]["inputs"].shape == (1, 512, 128)
    for i in range(1, len(files)):
        with pytest.raises(AudioDecodeError, match=str(files[i].name)):
            ds[i]


def test_segment_outside_the_file(tmp_path):
    p = write_audio(tmp_path / "a.wav", seconds=0.5)
    item = AudioClipDataset([ClipRecord(str(p), 0, start=3.0, end=4.0)], FE, training=True)[0]
    assert item["inputs"] is None and "a.wav@3-4s: segment [3, 0.5] s holds no audio" in item["error"]


def test_invalid_policy():
    with pytest.raises(ValueError, match="on_bad_clip"):
        AudioClipDataset([], FE, training=True, on_bad_clip="ignore")  # type: ignore[arg-type]


_LOGMEL = LogMel(get_preset("speech_commands_v2"))
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_raise_decode_error(data):
    try:
        x, _ = load_audio(data)
    except AudioDecodeError:
        return
    assert x.size > 0 and np.all(np.isfinite(x))


@_SETTINGS
@given(st.binary(min_size=0, max_size=2048))
def test_random_bytes_behind_a_wav_header(data):
    # a valid RIFF header followed by garbage of any length: truncated/garbled, never a crash
    header = b"RIFF" + (36 + 4000).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    header += (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little")
    header += (32000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    header += b"data" + (4000).to_bytes(4, "little")
    try:
        load_audio(header + data)
    except AudioDecodeError as exc:
        assert "truncated WAV" in str(exc) or len(data) >= 4000


@_SETTINGS
@given(arrays(np.float32, st.integers(0, 3000), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_random_arrays_through_the_front_end(x):
    from arinext.data import clip_features

    try:
        wave = check_waveform(x)
        spec = clip_features(torch.from_numpy(wave), _LOGMEL, "<array>")
    except AudioDecodeError:
        return
    assert torch.isfinite(spec).all() and spec.shape[-1] == 128


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_skipped(tmp_path):
    p = write_audio(tmp_path / "locked.wav")
    p.chmod(0)
    item = AudioClipDataset([ClipRecord(str(p), 0)], FE, training=True)[0]
    assert item["error"].endswith("locked.wav: permission denied")
