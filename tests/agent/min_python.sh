#!/usr/bin/env bash
# The agent promises Python >= 3.10 (Ubuntu 22.04's python3): install it on that Python, import every
# module, and run its tests that need nothing of the platform (the others also check the platform's
# models, which need 3.12). Where no such Python is found: fails under CI=true, else says so and skips.
set -euo pipefail
cd "$(dirname "$0")/../.."

version="${AGENT_MIN_PYTHON:-3.10}"
# pyenv keeps python3.10 off PATH unless a version names it (the Makefile names 3.12 for the platform).
PYENV_VERSION="$(pyenv versions --bare 2>/dev/null | grep -E "^${version//./\\.}(\.[0-9]+)?$" | tail -n1 || true)"
export PYENV_VERSION
python="python$version"
if ! "$python" -c pass 2>/dev/null; then
  message="python$version not found (pyenv install $version): the agent's oldest supported Python is not checked"
  if [[ "${CI:-}" == true ]]; then
    echo "agent-min-python: ERROR: $message" >&2
    exit 1
  fi
  echo "agent-min-python: $message" >&2
  exit 0
fi

venv=".local/agent-py$version"
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./node_agent pytest
"$venv/bin/python" - <<'PY'
import importlib
import pkgutil

import worldland_node

for module in pkgutil.walk_packages(worldland_node.__path__, "worldland_node."):
    if not module.name.endswith(".__main__"):  # that one runs the command (checked with --help below)
        importlib.import_module(module.name)
PY
"$venv/bin/worldland-node" --help >/dev/null
# --noconftest: tests/agent/conftest.py starts the platform's local stack (3.12); these need none of it.
"$venv/bin/python" -m pytest -q -p no:cacheprovider --noconftest --rootdir "$venv" \
  tests/agent/test_agent.py tests/agent/test_ports.py tests/agent/test_redaction.py tests/agent/test_settings.py
echo "agent-min-python: the agent installs, imports and passes its own tests on $("$venv/bin/python" -V)"
