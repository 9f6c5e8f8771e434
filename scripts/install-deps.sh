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
  libsolv-dev libsolvext-dev  # the solver (libsolv, as dnf and rpm-ostree use)
  dpkg apt                  # the sample OS's Debian packages: apt-get download/install -d, dpkg-deb; dpkg --compare-versions in tests
  binutils                  # readelf checks the sample kernel modules' .modinfo
  kmod                      # depmod: the module index of a kernel that came without one, and of initramfs images
  e2fsprogs dosfstools mtools gdisk   # disk images: mkfs.ext4 -d, mkfs.fat + mcopy; sgdisk -v in tests
  grub-common grub-pc-bin grub-efi-amd64-bin  # grub-mkimage, BIOS and UEFI GRUB modules
  ovmf seabios              # UEFI and BIOS firmware for boot tests (ovmf: also Secure Boot's secboot/ms files)
  sbsigntool openssl        # image.yaml efi-signing-key: sbsign/sbverify; test keys
  util-linux                # blkid, losetup in tests
  docker-registry skopeo    # push-container tests: a local registry, skopeo inspect/copy
  squashfs-tools xorriso    # live media: mksquashfs, the ISO; unsquashfs in tests
  selinux-utils policycoreutils  # matchpathcon/selabel_lookup in tests; semodule builds the sample policy
  python3-venv              # the SPDX reference validator (spdx-tools from PyPI) in a venv
  openssh-client            # kola: ssh-keygen for the harness key, ssh into test machines
  openssh-server            # kola tests: a local sshd stands in for a test machine
)
# QEMU: the system emulators (bookworm, 7.2) need the qemu-utils of the same
# release; machines that carry qemu-utils 10 from backports must take
# bookworm's, so both are named with their release. qemu-system-arm and
# qemu-efi-aarch64 (AAVMF) boot the aarch64 images, qemu-system-misc the
# s390x ones, qemu-system-ppc (with SLOF) the ppc64le ones.
qemu_systems=(qemu-system-x86 qemu-system-arm qemu-system-misc qemu-efi-aarch64 qemu-system-ppc)
qemu=("${qemu_systems[@]}" qemu-utils/bookworm qemu-block-extra/bookworm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
need_qemu=0
for p in "${qemu_systems[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_qemu=1
done
if ((${#missing[@]} + need_qemu)); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  ((need_qemu)) && missing+=("${qemu[@]}")
  echo "Installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --allow-downgrades "${missing[@]}" >/dev/null
fi
# The SPDX reference validator (pyspdxtools) checks the SBOM in tests; it is
# on PyPI only, so it lives in its own venv.
default_venv=/opt/cosa-venv; [[ $(id -u) -eq 0 ]] || default_venv=$HOME/.local/share/cosa-venv
SPDX_VENV=${COSA_SPDX_VENV:-$default_venv}
if [[ ! -x $SPDX_VENV/bin/pyspdxtools ]]; then
  echo "Installing spdx-tools into $SPDX_VENV" >&2
  python3 -m venv "$SPDX_VENV"
  "$SPDX_VENV/bin/pip" install -q spdx-tools
fi
