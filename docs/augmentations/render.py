"""Draw what each waveform augmentation does to one bundled keyword clip: one small PNG per augmentation
(waveform and spectrogram, before and after) in this folder.

    python docs/augmentations/render.py [OUT_DIR]

Each augmentation runs at p=1 with a fixed, clearly visible setting (the recipe draws them at random).
Needs the augment and plot extras: pip install 'arinext[augment,plot]'.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from arinext.apps.demo import bundled_sample  # noqa: E402
from arinext.audio.io import load_audio  # noqa: E402
from arinext.audio.waveaug import build_waveform_augment  # noqa: E402

SR = 16000
CLIP = "down/03abcb9e_nohash_0.flac"

#: file name -> (data.augment spec at p=1, title)
EXAMPLES = {
    "speed": ({"speed": {"p": 1, "factor": [0.85, 0.85]}}, "speed x0.85: slower, lower"),
    "pitch": ({"pitch": {"p": 1, "semitones": [4, 4]}}, "pitch +4 semitones, same tempo"),
    "reverb": ({"reverb": {"p": 1, "rt60": [0.6, 0.6], "bank_size": 1}}, "simulated room, RT60 0.6 s"),
    "eq": ({"eq": {"p": 1, "gain_db": [-12, 12]}}, "random EQ, 7 bands within +-12 dB"),
    "bandlimit": ({"bandlimit": {"p": 1}}, "telephone band, about 300-3400 Hz"),
    "clipping": ({"clipping": {"p": 1, "fraction": [0.05, 0.05]}}, "loudest 5 % of the samples clipped"),
    "mp3": ({"mp3": {"p": 1, "bitrates": [16]}}, "MP3 round trip at 16 kbit/s"),
    "gain": ({"gain": {"p": 1, "gain_db": [-10, -10]}}, "gain -10 dB"),
    "shift": ({"shift": {"p": 1, "max_seconds": 0.15}}, "time shift up to 150 ms"),
}


def spectrogram_db(x: np.ndarray) -> np.ndarray:
    n_fft, hop = 512, 128
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, (n_fft // 2, n_fft // 2)), n_fft)[::hop]
    return 10 * np.log10(np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)).T ** 2 + 1e-10)


def panel(ax_wave, ax_spec, x: np.ndarray, title: str, vmax: float) -> None:
    ax_wave.plot(np.arange(x.size) / SR, x, lw=0.5)
    ax_wave.set(xlim=(0, x.size / SR), ylim=(-1.05 * vmax, 1.05 * vmax))
    ax_wave.set_title(title, fontsize=8)
    ax_spec.imshow(spectrogram_db(x), origin="lower", aspect="auto", cmap="magma",
                   extent=(0, x.size / SR, 0, SR / 2000), vmin=-100, vmax=20)  # fmt: skip
    ax_spec.set_ylabel("kHz", fontsize=6)
    ax_spec.set_xlabel("s", fontsize=6)
    for ax in (ax_wave, ax_spec):
        ax.tick_params(labelsize=6)


def main(out: Path) -> None:
    x = load_audio(bundled_sample() / CLIP, sample_rate=SR)[0]
    with tempfile.TemporaryDirectory() as tmp:
        for name, (spec, title) in EXAMPLES.items():
            if "reverb" in spec:
                spec["reverb"]["cache_dir"] = tmp
            t = build_waveform_augment(spec, SR)
            y = t(torch.from_numpy(x), torch.Generator().manual_seed(0)).numpy()
            vmax = float(max(np.abs(x).max(), np.abs(y).max()))
            fig, ax = plt.subplots(2, 2, figsize=(6.0, 3.0), sharex=True)
            panel(ax[0, 0], ax[1, 0], x, f"original ({CLIP})", vmax)
            panel(ax[0, 1], ax[1, 1], y, title, vmax)
            fig.tight_layout()
            fig.savefig(out / f"{name}.png", dpi=80)
            plt.close(fig)
    print(f"wrote {len(EXAMPLES)} PNGs to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
