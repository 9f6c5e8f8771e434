//! The kernel: exactly one, at /usr/lib/modules/<kver>/vmlinuz with
//! initramfs.img beside it; moved from /boot; dracut when needed.

use cosa_testkit::postprocess::*;
use serde_json::json;

fn modules_tf() -> cosa::config::treefile::Treefile {
    let mut tf = treefile();
    set(&mut tf, "boot-location", json!("modules"));
    tf
}

#[test]
fn kernel_with_initramfs_from_the_package() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let r = run(&t, &modules_tf(), &opts());
    let k = r.kernel.unwrap();
    assert_eq!(
        (k.version.as_str(), k.initramfs.as_str()),
        (KVER, "package")
    );
    assert_eq!(
        read(&t, &format!("usr/lib/modules/{KVER}/vmlinuz")),
        "kernel image"
    );
    assert_eq!(
        read(&t, &format!("usr/lib/modules/{KVER}/initramfs.img")),
        "initramfs"
    );
}

#[test]
fn kernel_and_initramfs_in_boot_move_beside_the_modules() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    std::fs::remove_file(t.join(format!("usr/lib/modules/{KVER}/vmlinuz"))).unwrap();
    std::fs::remove_file(t.join(format!("usr/lib/modules/{KVER}/initramfs.img"))).unwrap();
    write(&t, &format!("boot/vmlinuz-{KVER}"), "boot kernel");
    write(&t, &format!("boot/initramfs-{KVER}.img"), "boot initramfs");
    let r = run(&t, &modules_tf(), &opts());
    assert_eq!(r.kernel.unwrap().initramfs, "boot");
    assert_eq!(
        listing(&t, &format!("usr/lib/modules/{KVER}"), 1),
        [
            format!("f usr/lib/modules/{KVER}/initramfs.img 644"),
            format!("f usr/lib/modules/{KVER}/modules.dep 644"),
            format!("f usr/lib/modules/{KVER}/vmlinuz 644"),
        ]
    );
    assert_eq!(
        read(&t, &format!("usr/lib/modules/{KVER}/vmlinuz")),
        "boot kernel"
    );
    assert_eq!(
        listing(&t, "usr/lib/ostree-boot", 1),
        ["d usr/lib/ostree-boot/grub2 755"]
    );
    assert!(r.moved.contains(&(
        format!("boot/vmlinuz-{KVER}"),
        format!("usr/lib/modules/{KVER}/vmlinuz")
    )));
}

#[test]
fn no_kernel_is_refused_when_bootable_only() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    std::fs::remove_dir_all(t.join("usr/lib/modules")).unwrap();
    let e = err(&t, &treefile(), &opts());
    assert!(
        e.contains(
            "no kernel in the tree: a bootable tree needs one at /usr/lib/modules/<kver>/vmlinuz"
        ),
        "{e}"
    );

    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    std::fs::remove_dir_all(t.join("usr/lib/modules")).unwrap();
    let mut o = opts();
    o.bootable = false;
    let r = run(&t, &treefile(), &o);
    assert_eq!(r.kernel, None);
    assert!(t.join("boot").is_dir());
}

#[test]
fn two_kernels_are_refused_naming_both() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    write(&t, "usr/lib/modules/6.2.0-other/vmlinuz", "k2");
    // A modules directory without a kernel does not count.
    write(&t, "usr/lib/modules/extra/foo.ko", "m");
    let e = err(&t, &treefile(), &opts());
    assert!(
        e.contains(&format!(
            "the tree holds 2 kernels, but an OSTree commit carries exactly one: {KVER} (/usr/lib/modules/{KVER}/vmlinuz); 6.2.0-other (/usr/lib/modules/6.2.0-other/vmlinuz)"
        )),
        "{e}"
    );
    // A kernel in /boot and another in /usr/lib/modules are two as well.
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    write(&t, "boot/vmlinuz-5.10.0-old", "k0");
    let e = err(&t, &treefile(), &opts());
    assert!(e.contains("5.10.0-old (/boot/vmlinuz-5.10.0-old)"), "{e}");
}

#[test]
fn missing_initramfs_without_dracut_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    std::fs::remove_file(t.join(format!("usr/lib/modules/{KVER}/initramfs.img"))).unwrap();
    let e = err(&t, &modules_tf(), &opts());
    assert!(
        e.contains(&format!("kernel {KVER} has no initramfs (/usr/lib/modules/{KVER}/initramfs.img) and the tree has no dracut to make one")),
        "{e}"
    );
    // no-initramfs accepts it, with a warning.
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    std::fs::remove_file(t.join(format!("usr/lib/modules/{KVER}/initramfs.img"))).unwrap();
    let mut tf = modules_tf();
    set(&mut tf, "no-initramfs", json!(true));
    let r = run(&t, &tf, &opts());
    assert_eq!(r.kernel.unwrap().initramfs, "none");
}

/// A stand-in dracut (busybox sh) that records its arguments and what it
/// sees, and writes the image where `-f` says.
const FAKE_DRACUT: &str = r#"#!/bin/sh
out=
kver=
while [ $# -gt 0 ]; do
  case "$1" in
    -f) out="$2"; shift;;
    --kver) kver="$2"; shift;;
  esac
  shift
done
echo "dracut for $kver"
grep -q '^svc:' /etc/passwd || { echo "no svc user in /etc/passwd"; exit 1; }
echo "initramfs of $kver by $(cat /etc/marker)" > "$out"
"#;

#[test]
fn dracut_in_the_tree_generates_the_initramfs() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    std::fs::remove_file(t.join(format!("usr/lib/modules/{KVER}/initramfs.img"))).unwrap();
    write(&t, "usr/bin/dracut", FAKE_DRACUT);
    mode(&t, "usr/bin/dracut", 0o755);
    write(&t, "etc/marker", "fake-dracut");
    let r = run(&t, &modules_tf(), &opts());
    assert_eq!(r.kernel.unwrap().initramfs, "dracut");
    assert!(r.scripts_run.contains(&"dracut".to_string()));
    assert_eq!(
        listing(&t, &format!("usr/lib/modules/{KVER}"), 1)[0],
        format!("f usr/lib/modules/{KVER}/initramfs.img 644")
    );
    assert_eq!(
        read(&t, &format!("usr/lib/modules/{KVER}/initramfs.img")),
        format!("initramfs of {KVER} by fake-dracut\n")
    );
    // The sandbox's mount point under the /tmp link is gone again.
    assert_eq!(listing(&t, "sysroot", 1), Vec::<String>::new());
    // /etc went back to /usr/etc with the split passwd intact.
    assert!(!t.join("etc").exists());
    assert_eq!(
        read(&t, "usr/etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
}

#[test]
fn failing_dracut_names_the_kernel() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    std::fs::remove_file(t.join(format!("usr/lib/modules/{KVER}/initramfs.img"))).unwrap();
    write(
        &t,
        "usr/bin/dracut",
        "#!/bin/sh\necho dracut-broke\nexit 3\n",
    );
    mode(&t, "usr/bin/dracut", 0o755);
    let e = err(&t, &modules_tf(), &opts());
    assert!(
        e.contains(&format!("generating the initramfs of kernel {KVER}: dracut failed (exit status: 3); last output:\ndracut-broke")),
        "{e}"
    );
    assert!(t.join("usr/etc/passwd").is_file() && !t.join("etc").exists());
}

#[test]
fn container_skips_kernel_processing() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    std::fs::remove_dir_all(t.join("usr/lib/modules")).unwrap();
    let mut tf = treefile();
    set(&mut tf, "container", json!(true));
    let r = run(&t, &tf, &opts());
    assert_eq!(r.kernel, None);
    // tmp-is-dir is implied.
    assert!(listing(&t, "", 1).contains(&"d tmp 1777".to_string()));
}
