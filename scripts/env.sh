# Shared set-up for scripts/*: one virtual environment in .venv with everything installed.
# Sourced, not run. Idempotent: a second run only checks that the install is complete.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Model weights that no registry ships come from the shared mirror beside the clone
# (the project's model store also knows the official URLs; see docs/models.md).
if [ -z "${NLS_MODEL_MIRROR:-}" ] && [ -d "$ROOT/../shared/models" ]; then
  export NLS_MODEL_MIRROR="$(cd "$ROOT/../shared/models" && pwd)"
fi
if [ -z "${NLS_EVAL_DIR:-}" ] && [ -d "$ROOT/../shared/eval" ]; then
  export NLS_EVAL_DIR="$(cd "$ROOT/../shared/eval" && pwd)"
fi
# The stamp covers every install step: a changed install script reinstalls too.
stamp=".venv/.installed-$(cat pyproject.toml scripts/env.sh scripts/install-* tests/e2e/node/package-lock.json | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  # The official SDK (also named `nls`) in a directory of its own, for the compatibility
  # tests and benchmarks that run it against our gateway in a separate process.
  rm -rf .venv/official-nls-sdk
  .venv/bin/python -m pip install -q --no-deps --target .venv/official-nls-sdk \
    alibabacloud-nls-python-sdk==1.0.2 aliyun-python-sdk-core==2.16.1 jmespath==1.1.0 \
    cryptography cffi pycparser
  # Headless Chromium for the web console's browser test (Debian packages).
  "$ROOT/scripts/install-browser"
  # The official Node.js SDK, pinned by its lock file, for tests/e2e/test_official_node_sdk.py
  # (Node.js and npm from Debian when the machine has none).
  "$ROOT/scripts/install-node-sdk"
  # nginx (Debian package, service not started) for tests/deploy/test_nginx.py.
  "$ROOT/scripts/install-nginx"
  # The Chinese word-trigram LM (Debian package) for zh homophone repair.
  "$ROOT/scripts/install-zh-lm"
  rm -f .venv/.installed-* && touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export NLS_OFFICIAL_SDK_DIR="${NLS_OFFICIAL_SDK_DIR:-$ROOT/.venv/official-nls-sdk}"
