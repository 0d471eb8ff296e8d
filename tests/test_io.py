"""Decoding: formats, windows, resampling, and every way a file can be unusable."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from arinext.audio.io import AudioDecodeError, audio_info, check_waveform, load_audio, resample

from .test_data_fakes import write_audio


def test_wav_flac_window_and_stereo(tmp_path):
    for suffix in (".wav", ".flac"):
        p = write_audio(tmp_path / f"s{suffix}", seconds=1.0, channels=2)
        x, sr = load_audio(p, start=0.25, end=0.75)
        assert sr == 16000 and x.shape == (8000,)
        st, _ = load_audio(p, mono=False)
        assert st.shape == (2, 16000)
        np.testing.assert_allclose(x, st.mean(axis=0)[4000:12000], atol=1e-4)
        assert audio_info(p) == (16000, 16000)


def test_resample_with_soxr_and_log_once(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("arinext.audio.io._RESAMPLE_LOGGED", set())  # earlier tests may have logged this pair
    p = write_audio(tmp_path / "a.wav", seconds=1.0, sr=44100)
    with caplog.at_level("INFO", logger="arinext.audio.io"):
        x, sr = load_audio(p, sample_rate=16000)
        load_audio(p, sample_rate=16000)
    assert sr == 16000 and abs(x.shape[0] - 16000) <= 1
    assert caplog.text.count("resampling audio from 44100 Hz to 16000 Hz") == 1
    # the 440 Hz tone survives: its spectral peak stays at 440 Hz
    peak = np.argmax(np.abs(np.fft.rfft(x))) * sr / x.shape[0]
    assert abs(peak - 440) < 2
    assert resample(x, 16000, 16000) is x


def _truncated(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep > 0 else data[: len(data) + keep])
    return path


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda d: _truncated(write_audio(d / "t.wav", 1.0), -8000), "truncated WAV: header declares 32000 bytes"),
        (lambda d: _truncated(write_audio(d / "t.flac", 1.0), 3000), "corrupt or truncated audio"),
        (lambda d: _truncated(write_audio(d / "h.wav", 1.0), 20), "not a readable audio file"),
        (lambda d: (d / "e.wav").write_bytes(b"") or d / "e.wav", "empty file (0 bytes)"),
        (lambda d: (d / "text.wav").write_text("hello, this is not audio\n" * 20) and d / "text.wav",
         "not a readable audio file"),
        (lambda d: d / "missing.wav", "file not found"),
        (lambda d: d, "is a directory"),
    ],
)  # fmt: skip
def test_bad_files_name_the_file_and_problem(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(AudioDecodeError) as err:
        load_audio(path)
    assert str(path) in str(err.value) and problem in str(err.value)
    assert err.value.source == str(path)


def test_zero_length_and_nonfinite_audio(tmp_path):
    sf.write(tmp_path / "z.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioDecodeError, match=r"z.wav: zero-length audio"):
        load_audio(tmp_path / "z.wav")
    x = np.zeros(1000, dtype=np.float32)
    x[10] = np.nan
    sf.write(tmp_path / "n.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match=r"n.wav: audio contains NaN or Inf"):
        load_audio(tmp_path / "n.wav")
    with pytest.raises(AudioDecodeError, match="Inf"):
        check_waveform(np.array([0.0, np.inf]))
    p = write_audio(tmp_path / "w.wav", seconds=0.5)
    with pytest.raises(AudioDecodeError, match=r"window \[2.0, 3.0\] s holds no samples \(audio lasts 0.500 s\)"):
        load_audio(p, start=2.0, end=3.0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_path(tmp_path):
    p = write_audio(tmp_path / "locked.wav")
    p.chmod(0)
    with pytest.raises(AudioDecodeError, match="locked.wav: permission denied"):
        load_audio(p)


def test_bytes_input():
    with pytest.raises(AudioDecodeError, match="<0 bytes>: empty input"):
        load_audio(b"")
    with pytest.raises(AudioDecodeError, match="<5 bytes>: not a readable audio file"):
        load_audio(b"hello")


def test_permission_denied_branch(tmp_path, monkeypatch):
    # root can read anything, so simulate the failed access check the test above makes for real
    p = write_audio(tmp_path / "locked.wav")
    monkeypatch.setattr("arinext.audio.io.os.access", lambda *args, **kwargs: False)
    with pytest.raises(AudioDecodeError, match="locked.wav: permission denied"):
        load_audio(p)
