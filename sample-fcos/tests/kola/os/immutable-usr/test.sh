#!/usr/bin/bash
## kola:
##   description: /usr cannot be written, even by root; the rpm database inside names the OS's packages.
##   platforms: qemu
set -euo pipefail
if sudo touch /usr/kola-write-test 2>/dev/null; then
  echo "/usr is writable"; exit 1
fi
rpm -q systemd openssh-server ostree ignition
test "$(stat -c %U /usr/bin/sudo)" = root
test -u /usr/bin/sudo
echo "ok: /usr read-only, rpm database present"
