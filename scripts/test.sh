#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests with the real tools.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The local S3 server of tests/s3_*.rs, built once and kept in ~/.cargo/bin.
if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  cargo install --locked s3s-fs@0.14.1 --features binary
fi
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
