#!/usr/bin/env bash
# Create (or repair) a Python venv and install the end-to-end test requirements.
# usage: scripts/setup-venv.sh VENV_DIR REQUIREMENTS_FILE
set -euo pipefail
venv="$1"
requirements="$2"

make_venv() {
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! python3 -m venv "$venv"; then
    # Debian's python3 needs python3-venv for ensurepip.
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      echo "setup-venv: python3 -m venv failed; installing python3-venv" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$venv"
      python3 -m venv "$venv"
    else
      echo "setup-venv: python3 -m venv failed and python3-venv cannot be installed here" >&2
      exit 1
    fi
  fi
}

# A venv whose interpreter moved or broke is rebuilt from scratch.
if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1 || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  make_venv
fi

"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
