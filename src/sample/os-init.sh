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

say "COSA-BOOTED version=$version commit=$commit cmdline=$cmdline"
sync
poweroff -f
reboot -f
