#!/usr/bin/bash
## kola:
##   description: Ignition writes a file and a systemd unit on first boot; the unit runs.
##   tags: ignition
##   platforms: qemu
##   timeoutMin: 10
set -euo pipefail
grep -qx 'written by Ignition' /etc/kola-sample/hello
systemctl is-enabled kola-sample.service
systemctl is-active kola-sample.service
grep -qx 'written by Ignition' /var/lib/kola-sample/ran
echo "ok: file and unit from Ignition"
