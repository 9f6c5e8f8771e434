#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests with the real tools.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
