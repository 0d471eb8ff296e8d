#!/usr/bin/env bash
# The core install (`pip install .`, no extras) in a fresh virtual environment: the commands that need no
# extra run, and one that needs an extra says which. Called by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-core
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ] || [ pyproject.toml -nt "$VENV/.installed" ] || [ -n "$(find src -newer "$VENV/.installed" -print -quit)" ]; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet torch==2.13.0
  "$VENV/bin/python" -m pip install --quiet .
  touch "$VENV/.installed"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for module in onnx onnxruntime matplotlib h5py pandas tensorboard huggingface_hub sed_eval; do
  if "$VENV/bin/python" -c "import $module" 2>/dev/null; then echo "core install check: $module is installed" >&2; exit 1; fi
done
"$VENV/bin/arinext" --help > /dev/null
"$VENV/bin/arinext" models audio_rep_inception_next_tiny > /dev/null
"$VENV/bin/python" - "$tmp" <<'PY'
import sys
import arinext
model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=2).eval()
arinext.save_pretrained(model, f"{sys.argv[1]}/model", labels=["a", "b"], frontend=arinext.get_preset("speech_commands_v2"))
PY
clip=$("$VENV/bin/python" -c "import arinext.apps.demo as d; print(next((d.bundled_sample() / 'yes').iterdir()))")
"$VENV/bin/arinext" predict -m "$tmp/model" "$clip" > /dev/null
if "$VENV/bin/arinext" export "$tmp/model" --out "$tmp/m.onnx" 2> "$tmp/err"; then
  echo "core install check: export without onnx should fail" >&2; exit 1
fi
grep -q "pip install 'arinext\[export\]'" "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
echo "core install check: arinext --help, models and predict run without extras; export names its extra"
