//! The initramfs cosa makes from a tree (src/compose/initramfs.rs), with
//! this host's root as the tree: the programs named, their loader and
//! libraries found by reading ELF headers, unpacked with cpio(1) and run
//! with chroot(8) to show nothing they need is missing.

use std::path::Path;
use std::process::Command;

use cosa::compose::initramfs::{Spec, build};

use crate::common::{sh, sh_bytes};

fn spec(binaries: &[&str], compression: &str) -> Spec {
    Spec {
        init: "/usr/bin/sh".into(),
        binaries: binaries.iter().map(|s| s.to_string()).collect(),
        files: vec!["/etc/os-release".into()],
        kernel_modules: vec![],
        compression: compression.into(),
        ..Default::default()
    }
}

fn unpack(image: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let cpio = sh_bytes("zstd -dc", Command::new("zstd").arg("-dc").arg(image));
    let mut child = Command::new("cpio")
        .args(["-idm", "--quiet", "--no-absolute-filenames"])
        .current_dir(dest)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&cpio).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn programs_run_from_the_image_with_the_libraries_found_in_the_tree() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("initramfs.img");
    let made = build(
        Path::new("/"),
        "none",
        &spec(&["/usr/bin/bash", "/usr/bin/ls", "/usr/bin/cat"], "zstd"),
        &img,
        0,
    )
    .unwrap();
    assert!(made.libraries >= 3, "{made:?}");
    let root = t.path().join("root");
    unpack(&img, &root);
    // /init is the program named, and the shell runs inside the image.
    assert_eq!(
        std::fs::read_link(root.join("init"))
            .unwrap()
            .to_string_lossy(),
        std::fs::canonicalize("/usr/bin/sh")
            .unwrap()
            .to_string_lossy()
    );
    assert!(root.join("dev").is_dir() && root.join("sysroot").is_dir());
    let out = sh(
        "chroot into the initramfs",
        Command::new("chroot").arg(&root).args([
            "/usr/bin/bash",
            "-c",
            "ls /usr/bin && cat /etc/os-release",
        ]),
    );
    assert!(out.contains("bash") && out.contains("ID="), "{out}");
    // The same tree gives the same bytes.
    let again = t.path().join("again.img");
    build(
        Path::new("/"),
        "none",
        &spec(&["/usr/bin/bash", "/usr/bin/ls", "/usr/bin/cat"], "zstd"),
        &again,
        0,
    )
    .unwrap();
    assert_eq!(std::fs::read(&img).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn a_missing_library_names_the_program_and_the_library() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::copy("/usr/bin/bash", tree.join("usr/bin/bash")).unwrap();
    let e = build(
        &tree,
        "none",
        &Spec {
            init: "/usr/bin/bash".into(),
            binaries: vec![],
            files: vec![],
            kernel_modules: vec![],
            compression: "none".into(),
            ..Default::default()
        },
        &t.path().join("img"),
        0,
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("/usr/bin/bash") && msg.contains("not in the tree"),
        "{msg}"
    );
    let e = build(
        &tree,
        "none",
        &Spec {
            init: "/usr/bin/nothing".into(),
            binaries: vec![],
            files: vec![],
            kernel_modules: vec![],
            compression: "gzip".into(),
            ..Default::default()
        },
        &t.path().join("img"),
        0,
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("/usr/bin/nothing"), "{e:#}");
}
