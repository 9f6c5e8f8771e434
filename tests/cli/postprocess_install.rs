//! End to end on a tree made by `install` from fixture RPMs: a %pre that
//! creates a user owning /var content, a kernel package, then
//! postprocessing; a rebuild whose %pre picks another uid is refused.

use cosa::compose::install::install;
use cosa_testkit::fixture::{FileSpec, PkgSpec};
use cosa_testkit::postprocess::{KVER, listing, opts, read, treefile};

fn base() -> PkgSpec {
    let bb = std::fs::read("/bin/busybox").expect("apt-get install busybox-static");
    PkgSpec::new("base", "1")
        .file(FileSpec::dir("/usr/share"))
        .file(FileSpec::file("/usr/bin/busybox", bb).mode(0o755))
        .file(FileSpec::symlink("/usr/bin/sh", "busybox"))
        .file(FileSpec::symlink("/bin", "usr/bin"))
        .file(FileSpec::file(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n",
        ))
        .file(FileSpec::file("/etc/group", "root:x:0:\nwheel:x:10:\n"))
        .file(FileSpec::file(
            "/etc/nsswitch.conf",
            "passwd: files\ngroup: files\n",
        ))
        .file(FileSpec::file(
            "/usr/lib/os-release",
            "NAME=Sample\nVERSION=\"1 (x)\"\nPRETTY_NAME=\"Sample 1\"\n",
        ))
        .file(FileSpec::symlink(
            "/etc/os-release",
            "../usr/lib/os-release",
        ))
        .file(FileSpec::dir("/var/log"))
        .file(FileSpec::dir("/var/tmp").mode(0o1777))
}

fn app(uid: u32) -> PkgSpec {
    PkgSpec::new("app", "1")
        .pre(&format!(
            "echo 'svc:x:{uid}:{uid}::/var/lib/svc:/bin/sh' >> /etc/passwd\necho 'svc:x:{uid}:' >> /etc/group"
        ))
        .file(FileSpec::dir("/var/lib/svc").mode(0o750).owner("svc", "svc"))
        .file(FileSpec::file("/usr/libexec/svc", "x").mode(0o755))
}

fn kernel() -> PkgSpec {
    PkgSpec::new("kernel", "6.1.0")
        .file(FileSpec::file(&format!("/boot/vmlinuz-{KVER}"), "kernel"))
        .file(FileSpec::file(
            &format!("/boot/initramfs-{KVER}.img"),
            "initrd",
        ))
        .file(FileSpec::file(
            &format!("/usr/lib/modules/{KVER}/modules.dep"),
            "",
        ))
        .file(FileSpec::file("/boot/grub2/grub.cfg", "# grub\n"))
}

fn compose(dir: &std::path::Path, uid: u32) -> std::path::PathBuf {
    let pkgs = cosa_testkit::install::build(&dir.join("rpms"), &[base(), app(uid), kernel()]);
    let root = dir.join("root");
    install(&root, &pkgs, &cosa_testkit::install::opts()).unwrap();
    root
}

#[test]
fn installed_tree_becomes_ostree_ready_and_uids_stay_stable() {
    let d = tempfile::tempdir().unwrap();
    let t = compose(d.path(), 990);
    let mut tf = treefile();
    tf.mutate_os_release = Some("1".into());
    tf.postprocess = vec!["ls /var/lib > /usr/share/var-at-postprocess".into()];
    let mut o = opts();
    o.version = Some("1.20240501.dev.0".into());
    let r = cosa::compose::postprocess::postprocess(&t, &tf, &o).unwrap();
    assert_eq!(r.kernel.as_ref().unwrap().version, KVER);
    assert_eq!(r.kernel.as_ref().unwrap().initramfs, "boot");
    assert_eq!(read(&t, "usr/share/var-at-postprocess"), "svc\n");
    assert_eq!(
        read(&t, "usr/lib/passwd"),
        "svc:x:990:990::/var/lib/svc:/bin/sh\n"
    );
    assert_eq!(read(&t, "usr/lib/group"), "wheel:x:10:\nsvc:x:990:\n");
    assert_eq!(
        read(&t, "usr/etc/nsswitch.conf"),
        "passwd: files altfiles\ngroup: files altfiles\n"
    );
    assert_eq!(
        read(&t, "usr/lib/tmpfiles.d/rpm-ostree-1-autovar.conf"),
        "d /var/lib 0755 root root - -\n\
         d /var/lib/svc 0750 svc svc - -\n\
         d /var/log 0755 root root - -\n\
         d /var/tmp 1777 root root - -\n"
    );
    assert_eq!(
        read(&t, "usr/lib/os-release"),
        "NAME=Sample\nVERSION=\"1.20240501.dev.0 (x)\"\nPRETTY_NAME=\"Sample 1.20240501.dev.0\"\nOSTREE_VERSION='1.20240501.dev.0'\n"
    );
    assert_eq!(
        listing(&t, &format!("usr/lib/modules/{KVER}"), 1),
        [
            format!("f usr/lib/modules/{KVER}/initramfs.img 644"),
            format!("f usr/lib/modules/{KVER}/modules.dep 644"),
            format!("f usr/lib/modules/{KVER}/vmlinuz 644"),
        ]
    );
    let previous_passwd = read(&t, "usr/lib/passwd");
    let previous_group = read(&t, "usr/lib/group");

    // Rebuild where the %pre hands out another uid: refused.
    let d2 = tempfile::tempdir().unwrap();
    let t2 = compose(d2.path(), 989);
    let mut o2 = opts();
    o2.previous_passwd = Some(previous_passwd);
    o2.previous_group = Some(previous_group);
    let e = format!(
        "{:#}",
        cosa::compose::postprocess::postprocess(&t2, &treefile(), &o2).unwrap_err()
    );
    assert!(
        e.contains("user svc: uid changed from 990 (previous build) to 989"),
        "{e}"
    );
}
