"""Damaged, overflowing and non-finite audio: every input path classifies with finite scores or raises arinext's
own error naming the input (the rule of ``arinext.audio.io``), and no output holds a NaN or an infinity."""

from __future__ import annotations

import importlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import arinext
from arinext.apps import hear
from arinext.audio.frontend import FrontendConfig
from arinext.audio.io import MAX_AMPLITUDE, AudioDecodeError, check_waveform, decode_blocks, load_audio
from arinext.cli import main
from arinext.data.readers import read_clip
from arinext.data.records import ClipRecord
from arinext.inference import AudioClassifier
from arinext.inference.results import NonFiniteOutputError
from arinext.utils.jsonout import NonFiniteJSONError, dumps, undefined_as_null

from .conftest import tiny_model

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_inputs.py"
# 16 kHz (a HEAR rate), 0.5 s crops: small enough that a few hundred inputs run in seconds
FE = FrontendConfig(sample_rate=16000, win_ms=25.0, hop_ms=10.0, num_frames=51, clip_seconds=0.5, n_fft=512, n_mels=32)
LABELS = ["a", "b", "c"]


def strict_json(text: str):
    def refuse(token: str):
        raise AssertionError(f"non-JSON token {token} in {text[:200]!r}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Several pytest processes share the cores: one thread each keeps hundreds of tiny forward passes fast."""


@pytest.fixture(scope="module")
def fuzz():
    sys.path.insert(0, str(BENCH.parent))
    try:
        return importlib.import_module("fuzz_inputs")  # the benchmark's mutator and outcome counting
    finally:
        sys.path.remove(str(BENCH.parent))


def tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return tiny_model(len(LABELS), bn_seed=seed)


@pytest.fixture(scope="module")
def clf() -> AudioClassifier:
    return AudioClassifier(tiny(), frontend=FE, labels=LABELS)


@pytest.fixture(scope="module")
def huge_wav(tmp_path_factory) -> Path:
    """A float WAV of finite samples near 1e38: their STFT overflows to inf, and inf * 0 in the mel matrix is NaN."""
    x = np.random.default_rng(0).uniform(-3e38, 3e38, 8000).astype(np.float32)
    path = tmp_path_factory.mktemp("huge") / "huge.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    return path


def test_fuzzed_files_are_classified_or_refused(fuzz, clf, tmp_path) -> None:
    """The benchmark's mutator (benchmarks/fuzz_inputs.py, 10,000 inputs there) on 500 inputs, every path."""
    report = fuzz.fuzz(clf, 500, seed=11, workdir=tmp_path)
    for path, counts in report["counts"].items():
        assert counts["non-finite"] == 0 and counts["foreign"] == 0, (path, counts, report["failures"])
        assert counts["classified"] > 50 and counts["clean error"] > 50, (path, counts)  # both outcomes exercised
    kinds = " | ".join(report["clean_error_kinds"])
    for problem in ("samples reach", "NaN or Inf", "sample rate", "truncated WAV", "not a readable audio file"):
        assert problem in kinds, kinds


def test_without_the_rule_overflow_reaches_the_scores(fuzz, clf, monkeypatch) -> None:
    """Without the amplitude bound, the output guard names the input; without the guard too, NaN scores come
    back and the fuzz harness counts them: the fuzz test can fail."""
    import arinext.audio.io as audio_io
    import arinext.inference.classifier as classifier

    buf = io.BytesIO()
    sf.write(buf, np.full(8000, 2e38, np.float32), 16000, format="WAV", subtype="FLOAT")
    monkeypatch.setattr(audio_io, "MAX_AMPLITUDE", float("inf"))
    outcome, detail = fuzz.check_input(clf, buf.getvalue(), paths=("predict_proba",))["predict_proba"]
    assert outcome == "clean error" and "scores hold NaN or infinity" in detail
    with pytest.raises(NonFiniteOutputError, match="the model's weights are finite: this input drives it beyond"):
        clf.predict_proba(buf.getvalue())
    monkeypatch.setattr(classifier, "check_finite_output", lambda values, *args: values)
    assert fuzz.check_input(clf, buf.getvalue(), paths=("predict_proba",))["predict_proba"][0] == "non-finite"


def test_huge_finite_float_wav_is_refused_on_every_path(clf, huge_wav) -> None:
    name = str(huge_wav)
    data = huge_wav.read_bytes()
    calls = {
        "predict_proba": lambda: clf.predict_proba(name),
        "call on bytes": lambda: clf(data),
        "scan": lambda: clf.scan(name),
        "framewise": lambda: clf.framewise(name, head="clip"),
        "events": lambda: clf.events(name, head="clip"),
        "embed": lambda: clf.embed(name),
        "timestamp_embeddings": lambda: clf.timestamp_embeddings(name),
        "dataset decode": lambda: read_clip(ClipRecord(name, 0), 0.0, 0.3, 16000),
        "sliding windows": lambda: clf.scan(sf.read(huge_wav, dtype="float32")[0], sampling_rate=16000),
        "load_audio": lambda: load_audio(name, sample_rate=8000),
    }
    for what, call in calls.items():
        with pytest.raises(AudioDecodeError, match="samples reach 3e\\+38; float audio must lie within") as err:
            call()
        assert err.value.source in (name, f"<{len(data)} bytes>", "<array>"), what
    stream = clf.stream(window=0.5, hop=0.25)
    with pytest.raises(AudioDecodeError, match="chunk at 0.000 s: samples reach"):
        stream.push(sf.read(huge_wav, dtype="float32")[0])


def test_predict_cli_refuses_a_huge_float_wav_and_writes_strict_json(clf, huge_wav, tmp_path, capsys) -> None:
    ckpt = tmp_path / "ckpt"
    arinext.save_pretrained(tiny(), ckpt, labels=LABELS, frontend=FE)
    good = tmp_path / "good.wav"
    sf.write(good, 0.3 * np.sin(np.arange(8000) / 5.0).astype(np.float32), 16000, subtype="FLOAT")
    for extra in ([], ["--json"]):
        code = main(["predict", "-m", str(ckpt), *extra, str(huge_wav), str(good)])
        out, err = capsys.readouterr()
        assert code == 1  # one input failed, the other was classified
        assert f"skipping {huge_wav}: samples reach 3e+38" in err
        assert "nan" not in out.lower() and str(good) in out
        if extra:
            record = strict_json(out)
            assert record["input"] == str(good) and all(np.isfinite(p["score"]) for p in record["predictions"])


@pytest.mark.parametrize(
    "x, problem",
    [
        (np.array([0.0, np.nan, 0.1], np.float32), "NaN or Inf"),
        (np.array([0.0, -np.inf], np.float64), "NaN or Inf"),
        (np.array([0.0, 1e300], np.float64), "samples reach 1e\\+300"),
        (np.array([0.5, MAX_AMPLITUDE * 1.01], np.float32), "samples reach 64.6"),
        (np.array([1, 2, 3], np.int64), "samples of type int64 are not audio"),
        (np.array([0.1 + 1j], np.complex64), "samples of type complex64"),
    ],
)
def test_the_input_rule_refuses(x, problem) -> None:
    with pytest.raises(AudioDecodeError, match=problem):
        check_waveform(x, "clip.wav")


def test_the_input_rule_keeps_overs_scales_integers_and_handles_silence_and_denormals(clf) -> None:
    overs = np.full(8000, MAX_AMPLITUDE, np.float32)  # the largest accepted magnitude
    tiny_values = np.full(8000, 1e-40, np.float32)  # denormals
    silence = np.zeros(8000, np.float32)
    for x in (overs, -overs, tiny_values, silence):
        p = clf.predict_proba(x, sampling_rate=16000)
        assert np.isfinite(p).all() and abs(p.sum() - 1) < 1e-5
    # integer PCM arrays are scaled by their full scale, as soundfile decodes PCM files
    t = np.sin(np.arange(8000) / 7.0) * 0.5
    pcm16 = np.round(t * 32767).astype(np.int16)
    scaled = clf.predict_proba(pcm16 / 32768.0, sampling_rate=16000)
    np.testing.assert_allclose(clf.predict_proba(pcm16, sampling_rate=16000), scaled, atol=1e-6)
    np.testing.assert_allclose(check_waveform(np.array([0, 255], np.uint8)), [-1.0, 127 / 128])
    with pytest.raises(AudioDecodeError, match="<array>: sample rate 100 Hz is not a whole number in \\[1000"):
        clf.predict_proba(t, sampling_rate=100)
    one = io.BytesIO()
    sf.write(one, np.zeros(1, np.float32), 48000, format="WAV", subtype="FLOAT")
    for call in (lambda: clf.predict_proba(np.zeros(1, np.float32), sampling_rate=48000),
                 lambda: clf.scan(one.getvalue()), lambda: clf.framewise(one.getvalue(), head="clip")):  # fmt: skip
        with pytest.raises(AudioDecodeError, match="1 sample\\(s\\) at 48000 Hz leave none at 16000 Hz"):
            call()
    with pytest.raises(ValueError, match="scan\\(\\) takes a 1-D mono array, got shape \\(8000, 2\\)"):
        clf.scan(np.zeros((8000, 2), np.float32), sampling_rate=16000)  # once flattened into one waveform


def test_a_header_that_claims_billions_of_frames_costs_nothing() -> None:
    """soundfile's blocks() would hand out stale buffers for every claimed frame; decode_blocks stops at the data."""

    class Claims:  # what libsndfile reports for a damaged MP3: 4.7e9 frames, 1,000 of them decodable
        channels, frames = 1, 4_680_866_243

        def __init__(self) -> None:
            self.left = 1000

        def read(self, n: int, dtype: str, always_2d: bool) -> np.ndarray:
            k = min(n, self.left)
            self.left -= k
            return np.full((k, 1), 0.1, np.float32)

    with pytest.raises(AudioDecodeError, match="truncated audio: expected 4680866243 frames, decoded 1000"):
        list(decode_blocks(Claims(), Claims.frames, "damaged.mp3", block_frames=1 << 20))  # type: ignore[arg-type]


def test_non_finite_weights_raise_naming_the_input(clf, tmp_path, capsys) -> None:
    model = tiny()
    with torch.no_grad():
        model.stem.conv.conv.weight[0, 0, 0, 0] = float("nan")  # a damaged checkpoint
    broken = AudioClassifier(model, frontend=FE, labels=LABELS)
    x = np.sin(np.arange(8000) / 9.0).astype(np.float32) * 0.3
    path = tmp_path / "fine.wav"
    sf.write(path, x, 16000)
    calls = [lambda: broken.predict_proba(str(path)), lambda: broken.scan(str(path)),
             lambda: broken.framewise(str(path), head="clip"),
             lambda: broken.embed([x, x], sampling_rate=16000)]  # fmt: skip
    for call in calls:
        with pytest.raises(NonFiniteOutputError, match="hold NaN or infinity \\(the model's weights and buffers hold"):
            call()
    with pytest.raises(NonFiniteOutputError, match=f"{path}: the model's scores hold NaN"):
        broken(str(path))
    with pytest.raises(NonFiniteOutputError, match=f"{path}: windows 0.00-0.50 s of the stream: the model's scores"):
        broken.scan(str(path))
    with pytest.raises(NonFiniteOutputError, match="<array 0>: the model's embeddings hold NaN"):
        broken.embed([x, x], sampling_rate=16000, batch_size=1)
    ckpt = tmp_path / "broken"
    arinext.save_pretrained(model, ckpt, labels=LABELS, frontend=FE)
    assert main(["predict", "-m", str(ckpt), "--json", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and f"skipping {path}: the model's scores hold NaN or infinity" in err


def test_hear_refuses_overflowing_sounds_and_scales_integer_tensors(tmp_path) -> None:
    ckpt = tmp_path / "ckpt"
    arinext.save_pretrained(tiny(), ckpt, labels=LABELS, frontend=FE)
    model = hear.load_model(str(ckpt))
    audio = torch.zeros(3, 8000)
    audio[1, 5] = 1e38
    for get in (hear.get_scene_embeddings, hear.get_timestamp_embeddings):
        with pytest.raises(AudioDecodeError, match="sound 1: samples reach 1e\\+38"):
            get(audio, model)
    audio[1, 5] = float("nan")
    with pytest.raises(AudioDecodeError, match="sound 1: audio contains NaN"):
        hear.get_scene_embeddings(audio, model)
    wave = torch.sin(torch.arange(8000) / 7.0)[None] * 0.5
    pcm = torch.round(wave * 32767).to(torch.int16)
    torch.testing.assert_close(hear.get_scene_embeddings(pcm, model), hear.get_scene_embeddings(pcm / 32768.0, model))


def test_strict_json_helpers() -> None:
    assert undefined_as_null({"a": [1.0, float("nan")], "b": {"c": float("-inf")}, "d": np.float64(2.0)}) == {
        "a": [1.0, None], "b": {"c": None}, "d": 2.0}  # fmt: skip
    with pytest.raises(NonFiniteJSONError, match="predictions: cannot write predictions\\[1\\].score = nan as JSON"):
        dumps({"predictions": [{"score": 0.5}, {"score": float("nan")}]}, what="predictions")
    assert strict_json(dumps({"x": 1.5})) == {"x": 1.5}
