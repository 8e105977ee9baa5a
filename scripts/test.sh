#!/usr/bin/env bash
# The project's test command: build, Rust tests, then the Python end-to-end
# tests against the freshly built `lotline` binary.
#
#   CARGO_TARGET_DIR  cargo's target dir (default ~/.cache/lotline/target)
#   LOTLINE_VENV      Python venv for tests/python (default ~/.cache/lotline/venv;
#                     created if missing)
#   LOTLINE_BIN       the binary the Python tests start (default: the debug build)
#   extra arguments are passed to pytest, e.g. ./scripts/test.sh -k crash
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lotline/target}"
LOTLINE_VENV="${LOTLINE_VENV:-$HOME/.cache/lotline/venv}"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

echo "==> layers point down (scripts/check-layers.py)"
python3 ./scripts/check-layers.py

echo "==> cargo build --bin lotline"
cargo build --bin lotline

echo "==> cargo test"
cargo test

if [ ! -x "$LOTLINE_VENV/bin/python" ]; then
  echo "==> creating Python venv for the end-to-end tests"
  bash ./scripts/setup-venv.sh "$LOTLINE_VENV" tests/python/requirements.txt
fi

export LOTLINE_BIN="${LOTLINE_BIN:-$CARGO_TARGET_DIR/debug/lotline}"
echo "==> pytest tests/python (LOTLINE_BIN=$LOTLINE_BIN)"
"$LOTLINE_VENV/bin/python" -m pytest -q tests/python "$@"
