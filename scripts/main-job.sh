#!/usr/bin/env bash
# The main job: install what is needed, build cosa, build the FCOS-like
# sample OS's package repository (Debian's packages with their
# dependencies, converted to RPMs), build the OS (OSTree commit, build
# record, qemu image), and test it as upstream's kola does: over SSH, with
# an Ignition config on first boot, under UEFI (the built-in `basic` and
# `ostree.upgrade`, and the config's external tests in sample-fcos/tests/kola)
# and BIOS (`basic` and `ostree.upgrade`). The OS is built twice, so that
# `ostree.upgrade` boots the first build and upgrades it to the second.
# Usage: scripts/main-job.sh [WORKDIR]   (default: ./sample-workdir)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(realpath -m "${1:-$here/sample-workdir}")
"$here/scripts/install-deps.sh"
cargo build --release --manifest-path "$here/Cargo.toml" --bin cosa --bin sample-fcos-repo
cosa="$here/target/release/cosa"
mkdir -p "$work"
"$here/target/release/sample-fcos-repo" "$work/sample-fcos-repo"
export DNF_VAR_cosa_sample_fcos_repo="$work/sample-fcos-repo"
export COSA_WORKDIR="$work/cosa"
if [[ ! -e $COSA_WORKDIR/src/config ]]; then
  "$cosa" init --transient "$here/sample-fcos"
fi
"$cosa" fetch
"$cosa" build
# A second build (a new version of the same inputs) to upgrade to.
"$cosa" build --force
"$cosa" list
echo "The commit is in $COSA_WORKDIR/tmp/repo; the build in $COSA_WORKDIR/builds/latest/" >&2
"$cosa" kola list
"$cosa" kola run --parallel 2 --firmware uefi
"$cosa" kola run basic ostree.upgrade --parallel 2 --firmware bios
echo "Boot it yourself: COSA_WORKDIR=$COSA_WORKDIR $cosa run --ssh" >&2
