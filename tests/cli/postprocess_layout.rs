//! The OSTree layout: /etc to /usr/etc, the rebuilt top level, /var to
//! tmpfiles.d, /boot to /usr/lib/ostree-boot, refusals.

use std::os::unix::fs::MetadataExt;

use cosa_testkit::postprocess::*;
use serde_json::json;

#[test]
fn default_layout_top_level() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let r = run(&t, &treefile(), &opts());
    assert_eq!(
        listing(&t, "", 1),
        [
            "d boot 755",
            "d dev 755",
            "d proc 755",
            "d run 755",
            "d sys 755",
            "d sysroot 755",
            "d usr 755",
            "d var 755",
            "l bin -> usr/bin",
            "l home -> var/home",
            "l lib -> usr/lib",
            "l media -> run/media",
            "l mnt -> var/mnt",
            "l opt -> var/opt",
            "l ostree -> sysroot/ostree",
            "l root -> var/roothome",
            "l sbin -> usr/bin",
            "l srv -> var/srv",
            "l tmp -> sysroot/tmp",
        ]
    );
    // Mount points are empty; /var is emptied.
    for m in ["boot", "dev", "proc", "run", "sys", "sysroot", "var"] {
        assert_eq!(listing(&t, m, 1), Vec::<String>::new(), "{m}");
    }
    assert_eq!(std::fs::metadata(&t).unwrap().mode() & 0o7777, 0o755);
    // /etc moved whole, backups dropped, useradd's HOME fixed.
    assert!(!t.join("etc").exists());
    assert!(t.join("usr/etc/default/useradd").is_file());
    assert!(!t.join("usr/etc/passwd-").exists());
    assert_eq!(
        read(&t, "usr/etc/default/useradd"),
        "GROUP=100\nHOME=/var/home\nSHELL=/bin/bash\n"
    );
    assert_eq!(
        std::fs::read_link(t.join("usr/etc/os-release")).unwrap(),
        std::path::Path::new("../usr/lib/os-release")
    );
    assert_eq!(read(&t, "usr/etc/machine-id"), "");
    // /usr/local points into /var.
    assert_eq!(
        std::fs::read_link(t.join("usr/local")).unwrap(),
        std::path::Path::new("../var/usrlocal")
    );
    assert!(r.moved.contains(&("etc".into(), "usr/etc".into())));
    assert!(r.removed.contains(&"/opt".to_string()), "{:?}", r.removed);
    assert!(
        r.warnings.iter().any(|w| w.starts_with("dropping /opt")),
        "{:?}",
        r.warnings
    );
    assert!(
        !r.warnings.iter().any(|w| w.starts_with("dropping /home")),
        "an empty /home is not worth a warning: {:?}",
        r.warnings
    );
}

#[test]
fn tmp_is_dir_and_opt_usrlocal_root() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut tf = treefile();
    set(&mut tf, "tmp-is-dir", json!(true));
    set(&mut tf, "opt-usrlocal", json!("root"));
    run(&t, &tf, &opts());
    let top = listing(&t, "", 1);
    assert!(top.contains(&"d tmp 1777".to_string()), "{top:?}");
    assert!(top.contains(&"d opt 755".to_string()), "{top:?}");
    assert!(t.join("usr/local").is_dir());
    assert!(
        !std::fs::symlink_metadata(t.join("usr/local"))
            .unwrap()
            .is_symlink()
    );
    assert!(
        read(
            &t,
            "usr/lib/tmpfiles.d/rpm-ostree-0-integration-opt-usrlocal.conf"
        )
        .contains("d /var/usrlocal 0755 root root -\n")
    );
}

#[test]
fn var_becomes_tmpfiles_entries() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let r = run(&t, &treefile(), &opts());
    assert_eq!(
        read(&t, "usr/lib/tmpfiles.d/rpm-ostree-1-autovar.conf"),
        "L /var/lock - - - - ../run/lock\n\
         d '/var/spool/with space' 0755 root root - -\n\
         d /var/cache 0755 root root - -\n\
         d /var/cache/app 0755 root root - -\n\
         d /var/lib 0755 root root - -\n\
         d /var/lib/svc 0750 svc svc - -\n\
         d /var/lib/systemd 0755 root root - -\n\
         d /var/log 0755 root root - -\n\
         d /var/spool 0755 root root - -\n"
    );
    assert_eq!(r.tmpfiles_entries, 9);
    let md = std::fs::metadata(t.join("usr/lib/tmpfiles.d/rpm-ostree-1-autovar.conf")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o644);
    // The regular file is dropped with a warning; the known state file silently.
    assert_eq!(
        r.warnings
            .iter()
            .filter(|w| w.starts_with("dropping /var"))
            .collect::<Vec<_>>(),
        [
            "dropping /var/log/app.log: only directories and symlinks in /var are kept (as tmpfiles.d entries)"
        ]
    );
    let integ = read(&t, "usr/lib/tmpfiles.d/rpm-ostree-0-integration.conf");
    for l in [
        "d /var/home 0755 root root -",
        "d /var/roothome 0700 root root -",
        "d /var/srv 0755 root root -",
        "d /var/mnt 0755 root root -",
        "d /run/media 0755 root root -",
    ] {
        assert!(integ.lines().any(|x| x == l), "{l} missing from:\n{integ}");
    }
}

#[test]
fn var_entry_with_unknown_owner_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    mkdir(&t, "var/lib/orphan");
    std::os::unix::fs::chown(t.join("var/lib/orphan"), Some(4242), Some(0)).unwrap();
    let e = err(&t, &treefile(), &opts());
    assert!(
        e.contains("/var/lib/orphan: no user has uid 4242 in the tree"),
        "{e}"
    );
}

#[test]
fn boot_moves_to_ostree_boot_with_checksummed_kernel() {
    use sha2::Digest;
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let r = run(&t, &treefile(), &opts());
    let mut h = sha2::Sha256::new();
    h.update(b"kernel image");
    h.update(b"initramfs");
    let csum = hex::encode(h.finalize());
    assert_eq!(
        listing(&t, "usr/lib/ostree-boot", 2),
        [
            "d usr/lib/ostree-boot/grub2 755".to_string(),
            "f usr/lib/ostree-boot/grub2/grub.cfg 644".to_string(),
            format!("f usr/lib/ostree-boot/initramfs-{KVER}.img-{csum} 644"),
            format!("f usr/lib/ostree-boot/vmlinuz-{KVER}-{csum} 644"),
        ]
    );
    // Hardlinks of the /usr/lib/modules files.
    let a = std::fs::metadata(t.join(format!("usr/lib/modules/{KVER}/vmlinuz"))).unwrap();
    let b =
        std::fs::metadata(t.join(format!("usr/lib/ostree-boot/vmlinuz-{KVER}-{csum}"))).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert!(
        r.moved
            .contains(&("boot".into(), "usr/lib/ostree-boot".into()))
    );
}

#[test]
fn boot_location_modules_keeps_kernel_in_modules_only() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut tf = treefile();
    set(&mut tf, "boot-location", json!("modules"));
    run(&t, &tf, &opts());
    assert_eq!(
        listing(&t, "usr/lib/ostree-boot", 2),
        [
            "d usr/lib/ostree-boot/grub2 755",
            "f usr/lib/ostree-boot/grub2/grub.cfg 644",
        ]
    );
}

#[test]
fn both_etc_and_usr_etc_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    write(&t, "usr/etc/stray", "x");
    let e = err(&t, &treefile(), &opts());
    assert!(e.contains("the tree has both /etc and /usr/etc"), "{e}");
    // Nothing was touched.
    assert!(t.join("etc/passwd").is_file());
}

fn mknod(path: &std::path::Path, kind: libc::mode_t, major: u32, minor: u32) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | 0o600, libc::makedev(major, minor)) };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

#[test]
fn device_nodes_are_refused_naming_the_path() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    mknod(&t.join("usr/lib/null"), libc::S_IFCHR, 1, 3);
    mknod(&t.join("usr/lib/sda"), libc::S_IFBLK, 8, 0);
    let e = err(&t, &treefile(), &opts());
    assert!(
        e.contains(
            "the tree holds device node(s), which OSTree cannot store: /usr/lib/null, /usr/lib/sda"
        ),
        "{e}"
    );
}

#[test]
fn ignore_devices_drops_them_and_whiteouts_become_files() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    mknod(&t.join("usr/lib/null"), libc::S_IFCHR, 1, 3);
    mknod(&t.join("usr/lib/gone"), libc::S_IFCHR, 0, 0);
    let mut tf = treefile();
    set(&mut tf, "ignore-devices", json!(true));
    let r = run(&t, &tf, &opts());
    assert!(!t.join("usr/lib/null").exists());
    assert!(!t.join("usr/lib/gone").exists());
    let wh = std::fs::symlink_metadata(t.join("usr/lib/.ostree-wh.gone")).unwrap();
    assert!(wh.is_file() && wh.len() == 0);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("removed 1 device node(s) (ignore-devices): /usr/lib/null")),
        "{:?}",
        r.warnings
    );
}
