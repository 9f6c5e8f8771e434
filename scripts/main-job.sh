#!/usr/bin/env bash
# The main job: install what is needed, build cosa, build the sample OS's
# package repository, compose the sample OS into a root tree, build it (OSTree
# commit, build record, qemu and metal disk images), and boot the images in
# QEMU (TCG) under UEFI and BIOS with `cosa kola run basic`.
# Usage: scripts/main-job.sh [WORKDIR]   (default: ./sample-workdir)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(realpath -m "${1:-$here/sample-workdir}")
"$here/scripts/install-deps.sh"
cargo build --release --manifest-path "$here/Cargo.toml" --bin cosa --bin sample-repo
cosa="$here/target/release/cosa"
mkdir -p "$work"
"$here/target/release/sample-repo" "$work/sample-repo"
export DNF_VAR_cosa_sample_repo="$work/sample-repo"
export COSA_WORKDIR="$work/cosa"
if [[ ! -e $COSA_WORKDIR/src/config ]]; then
  "$cosa" init --transient "$here/manifests"
fi
"$cosa" fetch
rm -rf "$work/rootfs"
"$cosa" compose rootfs "$work/rootfs"
echo "The sample OS tree is in $work/rootfs:" >&2
cat "$work/rootfs/usr/lib/os-release" >&2
"$cosa" build
"$cosa" build metal metal4k
"$cosa" list
echo "The sample OS commit is in $COSA_WORKDIR/tmp/repo; the build in $COSA_WORKDIR/builds/latest/" >&2
"$cosa" kola run basic --firmware uefi
"$cosa" kola run basic --firmware bios
"$cosa" kola run basic --platform metal --firmware bios
"$cosa" kola run basic --platform metal4k --firmware uefi
echo "Boot it yourself: COSA_WORKDIR=$COSA_WORKDIR $cosa run" >&2
