#!/bin/sh
# /init of the cosa sample OS's initramfs: what ostree-prepare-root does,
# in busybox sh. Any failure prints one COSA-BOOT-FAILED line and powers off.
export PATH=/bin

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
    sleep 5
    exit 1
}

mount -t proc proc /proc || fail "cannot mount /proc"
mount -t sysfs sysfs /sys || fail "cannot mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "cannot mount /dev"

# Modules in dependency order (dependencies first).
while read -r m; do
    [ -n "$m" ] || continue
    insmod "/lib/modules/$m" || fail "cannot load module $m"
done < /etc/cosa-modules

set -f
cmdline=$(cat /proc/cmdline)
ostree=
wait=20
for arg in $cmdline; do
    case "$arg" in
        ostree=*) ostree=${arg#ostree=} ;;
        cosa.root-wait=*) wait=${arg#cosa.root-wait=} ;;
    esac
done
set +f
[ -n "$ostree" ] || fail "no ostree= on the kernel command line"
case "$ostree" in
    /ostree/boot.*/*/*) ;;
    *) fail "ostree=$ostree is not /ostree/boot.N/<osname>/<bootcsum>/<serial>" ;;
esac
case "$wait" in
    ''|*[!0-9]*) fail "cosa.root-wait=$wait is not a number of seconds" ;;
esac

# Wait for the root filesystem (label root).
tries=$((wait * 5))
while ! dev=$(findfs LABEL=root 2>/dev/null); do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || fail "no filesystem with label root after ${wait} s"
    usleep 200000
done
mount -o rw "$dev" /sysroot || fail "cannot mount $dev (label root) at /sysroot"

# ostree=/ostree/boot.N/<osname>/<bootcsum>/<serial> is a relative symlink
# chain inside the root filesystem that ends at the deployment.
[ -e "/sysroot$ostree" ] || fail "ostree=$ostree: /sysroot$ostree does not exist"
deploy=$(readlink -f "/sysroot$ostree") || fail "cannot resolve /sysroot$ostree"
rest=${ostree#/ostree/boot.*/}
osname=${rest%%/*}
case "$deploy" in
    /sysroot/ostree/deploy/"$osname"/deploy/*) ;;
    *) fail "ostree=$ostree resolves to $deploy, not a deployment of $osname" ;;
esac
[ -d "$deploy/usr" ] || fail "deployment $deploy has no /usr"
var=/sysroot/ostree/deploy/$osname/var
[ -d "$var" ] || fail "no $var for the deployment"

# As ostree-prepare-root: the deployment becomes a mount point, gets /var
# and a read-only /usr, then swaps places with the physical root, which ends
# up at /sysroot inside it.
mkdir -p /sysroot.tmp
mount --bind "$deploy" "$deploy" || fail "cannot bind-mount $deploy"
mount --bind "$var" "$deploy/var" || fail "cannot bind-mount $var on /var"
mount --bind "$deploy/usr" "$deploy/usr" || fail "cannot bind-mount /usr"
mount -o remount,bind,ro "$deploy/usr" || fail "cannot make /usr read-only"
mount --move "$deploy" /sysroot.tmp || fail "cannot move the deployment"
mount --move /sysroot /sysroot.tmp/sysroot || fail "cannot move the physical root to /sysroot"
mount --move /sysroot.tmp /sysroot || fail "cannot move the deployment to /sysroot"

for fs in dev proc sys; do
    mount --move "/$fs" "/sysroot/$fs" || fail "cannot move /$fs into the new root"
done
[ -x /sysroot/sbin/init ] || fail "the deployment has no /sbin/init"
exec switch_root /sysroot /sbin/init
fail "switch_root failed"
