#!/bin/sh
# /sbin/init of the cosa sample OS: report what booted on the console,
# then power off.
export PATH=/usr/bin:/usr/sbin

# One line to every console the kernel writes to (/proc/consoles), so the
# serial console has it even when it is not the last console= argument;
# /dev/console alone before /proc and /dev are mounted.
say() {
    sent=
    if [ -r /proc/consoles ]; then
        while read -r name _rest; do
            [ -c "/dev/$name" ] && echo "$*" > "/dev/$name" && sent=1
        done < /proc/consoles
    fi
    [ -n "$sent" ] || echo "$*" > /dev/console
}

fail() {
    say "COSA-BOOT-FAILED: $*"
    sync
    poweroff -f
    reboot -f
    exit 1
}

[ -e /proc/cmdline ] || mount -t proc proc /proc || fail "cannot mount /proc"
cmdline=$(cat /proc/cmdline)
version=$(. /etc/os-release && echo "${OSTREE_VERSION:-$VERSION}")
[ -n "$version" ] || fail "no OSTREE_VERSION or VERSION in /etc/os-release"

set -f
ostree=
for arg in $cmdline; do
    case "$arg" in ostree=*) ostree=${arg#ostree=} ;; esac
done
set +f
[ -n "$ostree" ] || fail "no ostree= on the kernel command line"
deploy=$(readlink -f "/sysroot$ostree") || fail "cannot resolve /sysroot$ostree"
base=${deploy##*/}
commit=${base%.*}
case "$commit" in
    *[!0-9a-f]*) fail "deployment $deploy is not named <commit>.<serial>" ;;
esac
[ ${#commit} -eq 64 ] || fail "deployment $deploy is not named <commit>.<serial>"

# What the initramfs set up: the physical root at /sysroot, the stateful
# /var bound in, and a read-only /usr.
usr_ro= var= sysroot=
while read -r _dev mnt _fs opts _rest; do
    case "$mnt" in
        /usr) case ",$opts," in *,ro,*) usr_ro=1 ;; *) usr_ro= ;; esac ;;
        /var) var=1 ;;
        /sysroot) sysroot=1 ;;
    esac
done < /proc/mounts
[ -n "$sysroot" ] || fail "/sysroot is not mounted"
[ -n "$var" ] || fail "/var is not mounted"
[ -n "$usr_ro" ] || fail "/usr is not mounted read-only"
[ -d "/sysroot/ostree/deploy" ] || fail "/sysroot holds no /ostree/deploy"

# Secure Boot, as the firmware reports it: the last byte of the
# SecureBoot EFI variable (4 bytes of attributes, then 0 or 1). 0 when the
# machine did not boot through UEFI.
secureboot=0
if [ -d /sys/firmware/efi ]; then
    efivars=/sys/firmware/efi/efivars
    # efivarfs is a module in Debian's kernel (signed: lockdown allows it).
    grep -q efivarfs /proc/filesystems ||
        insmod "/usr/lib/modules/$(uname -r)/kernel/fs/efivarfs/efivarfs.ko" 2>/dev/null
    [ -e "$efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c" ] ||
        mount -t efivarfs efivarfs "$efivars" 2>/dev/null
    sb="$efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
    # od prints the 5 bytes as numbers; efivarfs ignores od's seek (-j).
    # shellcheck disable=SC2046
    [ -r "$sb" ] && set -- $(od -An -tu1 -N5 "$sb") && secureboot=${5:-0}
fi
# The kernel's lockdown mode (the bracketed word of securityfs's
# `none [integrity] confidentiality`), or `unsupported`.
lockdown=unsupported
sec=/sys/kernel/security
[ -e "$sec/lockdown" ] || mount -t securityfs securityfs "$sec" 2>/dev/null
if [ -r "$sec/lockdown" ]; then
    set -f
    for word in $(cat "$sec/lockdown"); do
        case "$word" in \[*\]) lockdown=${word#[}; lockdown=${lockdown%]} ;; esac
    done
    set +f
fi

say "COSA-BOOTED version=$version commit=$commit secureboot=$secureboot lockdown=$lockdown cmdline=$cmdline"
sync
poweroff -f
reboot -f
