#!/bin/sh
# /sbin/init of the cosa sample OS: report what booted on the console,
# then power off.
export PATH=/usr/bin:/usr/sbin

fail() {
    echo "COSA-BOOT-FAILED: $*" > /dev/console
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

echo "COSA-BOOTED version=$version commit=$commit cmdline=$cmdline" > /dev/console
sync
poweroff -f
reboot -f
