#!/usr/bin/env bash
# Install the Debian packages cosa and its tests use. Safe to run again.
set -euo pipefail
pkgs=(
  rpm dnf createrepo-c      # reference tools: rpm -qp, dnf --installroot, repodata
  bubblewrap                # scriptlet sandbox
  busybox-static            # the sample OS's shell, and scriptlet tests
  cpio zstd xz-utils        # rpm2cpio | cpio in tests
  gnupg                     # test signing keys
  libcap2-bin attr          # getcap / getfattr in tests
  ostree                    # ostree fsck/show/checkout in tests
  git pkg-config libssl-dev # building git2
  dpkg apt                  # the sample OS's Debian kernel: apt-get download, dpkg-deb -x
  e2fsprogs qemu-system-x86 # sample OS boot tests: mkfs.ext4 -d, QEMU (TCG)
  binutils                  # readelf checks the sample kernel modules' .modinfo
)
missing=()
for p in "${pkgs[@]}"; do
  [[ $p == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  echo "Installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
