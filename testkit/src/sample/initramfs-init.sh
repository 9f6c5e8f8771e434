#!/bin/sh
# /init of the cosa sample OS's initramfs: what ostree-prepare-root does,
# in busybox sh. Any failure prints one COSA-BOOT-FAILED line and powers off.
#
# Live media (cosa buildextend-live): when the initramfs holds /root.squashfs
# (PXE: the live rootfs image appended as a second initrd) or the kernel
# command line has coreos.liveiso=<label> (the ISO with that volume label
# holds images/pxeboot/rootfs.img, a cpio whose first member is
# root.squashfs), the physical root is that squashfs, read-only, under a
# tmpfs overlay; the deployment is then entered as on disk.
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
liveiso=
wait=20
for arg in $cmdline; do
    case "$arg" in
        ostree=*) ostree=${arg#ostree=} ;;
        cosa.root-wait=*) wait=${arg#cosa.root-wait=} ;;
        coreos.liveiso=*) liveiso=${arg#coreos.liveiso=} ;;
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

# The offset of root.squashfs in a newc cpio archive whose first member it
# is (the live rootfs image).
squashfs_offset() {
    [ "$(dd if="$1" bs=1 count=6 2>/dev/null)" = 070701 ] ||
        fail "$1 is not a newc cpio archive"
    namesize=$(dd if="$1" bs=1 skip=94 count=8 2>/dev/null)
    case "$namesize" in
        [0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]) ;;
        *) fail "$1: bad cpio header" ;;
    esac
    name=$(dd if="$1" bs=1 skip=110 count=$((0x$namesize - 1)) 2>/dev/null)
    [ "$name" = root.squashfs ] || fail "$1 starts with $name, not root.squashfs"
    echo $(((110 + 0x$namesize + 3) / 4 * 4))
}

# Mount the squashfs at byte offset $2 of file $1 read-only at /run/rootfs.
mount_squashfs() {
    loopdev=$(losetup -f) || fail "no free loop device"
    losetup -r -o "$2" "$loopdev" "$1" || fail "cannot attach $1 (offset $2) to $loopdev"
    mkdir -p /run/rootfs
    mount -t squashfs -o ro "$loopdev" /run/rootfs || fail "cannot mount the squashfs in $1"
}

# The device holding the ISO 9660 file system labelled $1: findfs, else
# the volume identifier (32 bytes at 32808) of each CD-ROM.
find_iso() {
    findfs "LABEL=$1" 2>/dev/null && return 0
    for d in /dev/sr*; do
        [ -b "$d" ] || continue
        id=$(dd if="$d" bs=1 skip=32808 count=32 2>/dev/null)
        while [ "${id% }" != "$id" ]; do id=${id% }; done
        [ "$id" = "$1" ] && echo "$d" && return 0
    done
    return 1
}

live=
if [ -e /root.squashfs ]; then
    live=pxe
    mount_squashfs /root.squashfs 0
elif [ -n "$liveiso" ]; then
    live=iso
    tries=$((wait * 5))
    while ! dev=$(find_iso "$liveiso"); do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "no ISO 9660 file system labelled $liveiso after ${wait} s"
        usleep 200000
    done
    mkdir -p /run/media/iso
    mount -t iso9660 -o ro "$dev" /run/media/iso || fail "cannot mount $dev ($liveiso)"
    img=/run/media/iso/images/pxeboot/rootfs.img
    [ -f "$img" ] || fail "the ISO $liveiso has no images/pxeboot/rootfs.img"
    off=$(squashfs_offset "$img") || exit 1
    mount_squashfs "$img" "$off"
fi
if [ -n "$live" ]; then
    # A writable root: tmpfs over the read-only squashfs.
    mkdir -p /run/overlay
    mount -t tmpfs -o mode=0755 tmpfs /run/overlay || fail "cannot mount the overlay tmpfs"
    mkdir -p /run/overlay/upper /run/overlay/work
    mount -t overlay overlay \
        -o lowerdir=/run/rootfs,upperdir=/run/overlay/upper,workdir=/run/overlay/work /sysroot ||
        fail "cannot mount the overlay at /sysroot"
else
    # Wait for the root filesystem (label root).
    tries=$((wait * 5))
    while ! dev=$(findfs LABEL=root 2>/dev/null); do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "no filesystem with label root after ${wait} s"
        usleep 200000
    done
    mount -o rw "$dev" /sysroot || fail "cannot mount $dev (label root) at /sysroot"
fi

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
