#!/usr/bin/bash
## kola:
##   description: The autopkgtest reboot API; state in /var survives, the boot ID changes.
##   tags: reboot
##   platforms: qemu
##   timeoutMin: 15
set -euo pipefail
case "${AUTOPKGTEST_REBOOT_MARK:-}" in
  "")
    cat /proc/sys/kernel/random/boot_id | sudo tee /var/lib/kola-reboot-first >/dev/null
    /tmp/autopkgtest-reboot rebooted
    ;;
  rebooted)
    first=$(cat /var/lib/kola-reboot-first)
    now=$(cat /proc/sys/kernel/random/boot_id)
    test "$first" != "$now"
    echo "ok: rebooted from $first into $now"
    ;;
  *) echo "unexpected mark ${AUTOPKGTEST_REBOOT_MARK}"; exit 1 ;;
esac
