//! The sample OS boots: `cosa build` composes the sample config, the commit
//! is laid out as `ostree admin deploy` would in an ext4 filesystem labelled
//! `root`, and QEMU (TCG, direct kernel boot) runs the kernel and initramfs
//! from the commit; the OS's init reports the deployment it booted.

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OS: &str = "cosa-sample";
const REF: &str = "cosa-sample/x86_64/dev";

/// `mkfs.ext4 -L label -d dir` into a sparse image big enough for `dir`.
fn mkfs(dir: &Path, label: &str, img: &Path) {
    let du = sh("du", Command::new("du").args(["-sm"]).arg(dir));
    let mb: u64 = du.split_whitespace().next().unwrap().parse().unwrap();
    let f = std::fs::File::create(img).unwrap();
    f.set_len((mb * 2 + 64) << 20).unwrap();
    sh(
        "mkfs.ext4",
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", label, "-d"])
            .arg(dir)
            .arg(img),
    );
}

/// Boot in QEMU (TCG); returns the console output and the time it took.
fn boot(kernel: &Path, initrd: &Path, append: &str, disk: &Path) -> (String, Duration) {
    let start = Instant::now();
    let out = Command::new("timeout")
        .args(["120", "qemu-system-x86_64", "-accel", "tcg", "-m", "768"])
        .args(["-nographic", "-no-reboot", "-kernel"])
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", append, "-drive"])
        .arg(format!("file={},if=virtio,format=raw", disk.display()))
        .stdin(Stdio::null())
        .output()
        .expect("running qemu-system-x86_64");
    let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        out.status.success(),
        "qemu exited {} after {:?}: {}\nconsole:\n{console}",
        out.status,
        start.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    (console, start.elapsed())
}

fn line_with<'a>(console: &'a str, prefix: &str) -> Option<&'a str> {
    console
        .lines()
        .find_map(|l| l.find(prefix).map(|i| &l[i..]))
}

/// The deployment layout `ostree admin deploy` leaves, for `commit` checked
/// out from `repo`; returns the root dir and the `ostree=` karg.
fn deploy(t: &Path, repo: &Path, commit: &str, bootcsum: &str) -> (PathBuf, String) {
    let root = t.join("rootfs");
    let osdir = root.join("ostree/deploy").join(OS);
    let dep = osdir.join("deploy").join(format!("{commit}.0"));
    std::fs::create_dir_all(dep.parent().unwrap()).unwrap();
    sh(
        "ostree checkout",
        Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(["checkout", commit])
            .arg(&dep),
    );
    sh(
        "copying /usr/etc",
        Command::new("cp")
            .arg("-a")
            .arg(dep.join("usr/etc"))
            .arg(dep.join("etc")),
    );
    for d in ["var", "sysroot", "boot", "dev", "proc", "run", "sys", "tmp"] {
        // Some are in the commit already (/tmp may be a link to sysroot/tmp).
        if std::fs::symlink_metadata(dep.join(d)).is_err() {
            std::fs::create_dir(dep.join(d)).unwrap();
        }
    }
    std::fs::create_dir_all(osdir.join("var")).unwrap();
    std::fs::create_dir_all(root.join("boot")).unwrap();
    let bootdir = root.join("ostree/boot.1.0").join(OS).join(bootcsum);
    std::fs::create_dir_all(&bootdir).unwrap();
    std::os::unix::fs::symlink("boot.1.0", root.join("ostree/boot.1")).unwrap();
    std::os::unix::fs::symlink(
        format!("../../../deploy/{OS}/deploy/{commit}.0"),
        bootdir.join("0"),
    )
    .unwrap();
    (root, format!("/ostree/boot.1/{OS}/{bootcsum}/0"))
}

#[test]
fn sample_build_boots_into_its_deployment() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let wd = t.path().join("wd");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(cosa(&wd).args(["init", "--transient"]).arg(manifests), true);
    for verb in ["fetch", "build"] {
        run(
            cosa(&wd).env("DNF_VAR_cosa_sample_repo", &repo).arg(verb),
            true,
        );
    }
    let bj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.join("builds/builds.json")).unwrap()).unwrap();
    let version = bj["builds"][0]["id"].as_str().unwrap().to_string();
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(wd.join(format!("builds/{version}/x86_64/meta.json"))).unwrap(),
    )
    .unwrap();
    let commit = meta["ostree-commit"].as_str().unwrap().to_string();
    let ostree_repo = wd.join("tmp/repo");
    let rev = sh(
        "ostree rev-parse",
        Command::new("ostree")
            .arg(format!("--repo={}", ostree_repo.display()))
            .args(["rev-parse", REF]),
    );
    assert_eq!(rev.trim(), commit);

    // The commit carries the kernel and the package's initramfs.
    let ls = sh(
        "ostree ls",
        Command::new("ostree")
            .arg(format!("--repo={}", ostree_repo.display()))
            .args(["ls", "-R", &commit, "/usr/lib/modules"]),
    );
    let kver = ls
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .last()
                .and_then(|p| p.strip_prefix("/usr/lib/modules/"))
                .and_then(|p| p.strip_suffix("/vmlinuz"))
        })
        .unwrap_or_else(|| panic!("no vmlinuz in the commit:\n{ls}"))
        .to_string();
    assert!(
        ls.contains(&format!("/usr/lib/modules/{kver}/initramfs.img")),
        "{ls}"
    );
    assert!(ls.contains("virtio_blk.ko"), "{ls}");

    // A bootcsum as ostree computes it: sha256 of kernel then initramfs.
    use sha2::Digest;
    let (root, karg) = {
        let co = t.path().join("kernel-co");
        sh(
            "ostree checkout",
            Command::new("ostree")
                .arg(format!("--repo={}", ostree_repo.display()))
                .args(["checkout", "--subpath"])
                .arg(format!("/usr/lib/modules/{kver}"))
                .arg(&commit)
                .arg(&co),
        );
        let mut h = sha2::Sha256::new();
        h.update(std::fs::read(co.join("vmlinuz")).unwrap());
        h.update(std::fs::read(co.join("initramfs.img")).unwrap());
        deploy(t.path(), &ostree_repo, &commit, &hex::encode(h.finalize()))
    };
    let img = t.path().join("root.img");
    mkfs(&root, "root", &img);
    let moddir = root.join(format!(
        "ostree/deploy/{OS}/deploy/{commit}.0/usr/lib/modules/{kver}"
    ));
    let append = format!("console=ttyS0,115200n8 ostree={karg} rw ignition.platform.id=qemu");
    let (console, took) = boot(
        &moddir.join("vmlinuz"),
        &moddir.join("initramfs.img"),
        &append,
        &img,
    );
    eprintln!("booted in {took:?}");
    assert!(
        !console.contains("COSA-BOOT-FAILED"),
        "boot failed:\n{console}"
    );
    assert_eq!(console.matches("COSA-BOOTED").count(), 1, "{console}");
    let line = line_with(&console, "COSA-BOOTED ")
        .unwrap_or_else(|| panic!("no COSA-BOOTED line:\n{console}"));
    assert_eq!(
        line,
        // No UEFI here: Secure Boot off, the kernel not locked down.
        format!(
            "COSA-BOOTED version={version} commit={commit} secureboot=0 lockdown=none \
             cmdline={append}"
        ),
        "{console}"
    );
}

#[test]
fn sample_initramfs_fails_fast_without_a_root() {
    let t = tempfile::tempdir().unwrap();
    let k = cosa_testkit::sample::kernel::load("x86_64").unwrap();
    let busybox = cosa_testkit::sample::busybox("x86_64").unwrap();
    let initrd = t.path().join("initramfs.img");
    std::fs::write(
        &initrd,
        cosa_testkit::sample::initramfs::build(&k, &busybox).unwrap(),
    )
    .unwrap();
    // The initramfs is reproducible.
    assert_eq!(
        std::fs::read(&initrd).unwrap(),
        cosa_testkit::sample::initramfs::build(&k, &busybox).unwrap()
    );
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let data = t.path().join("data.img");
    mkfs(&empty, "data", &data);
    let noostree = t.path().join("noostree.img");
    mkfs(&empty, "root", &noostree);
    let karg = "ostree=/ostree/boot.1/cosa-sample/0000/0";

    std::thread::scope(|s| {
        let no_label = s.spawn(|| {
            boot(
                &k.vmlinuz,
                &initrd,
                &format!("console=ttyS0 {karg} cosa.root-wait=3"),
                &data,
            )
        });
        // The serial console is not /dev/console here (the last console= is).
        let no_deploy = s.spawn(|| {
            boot(
                &k.vmlinuz,
                &initrd,
                &format!("console=ttyS0 console=tty0 {karg}"),
                &noostree,
            )
        });

        let (console, took) = no_label.join().unwrap();
        eprintln!("no root label: failed in {took:?}");
        assert_eq!(
            line_with(&console, "COSA-BOOT-FAILED"),
            Some("COSA-BOOT-FAILED: no filesystem with label root after 3 s"),
            "{console}"
        );
        assert!(took < Duration::from_secs(90), "{took:?}");

        let (console, took) = no_deploy.join().unwrap();
        eprintln!("no deployment: failed in {took:?}");
        assert_eq!(
            line_with(&console, "COSA-BOOT-FAILED"),
            Some(
                "COSA-BOOT-FAILED: ostree=/ostree/boot.1/cosa-sample/0000/0: \
                 /sysroot/ostree/boot.1/cosa-sample/0000/0 does not exist"
            ),
            "{console}"
        );
        assert!(!console.contains("COSA-BOOTED"), "{console}");
        assert_eq!(console.matches("COSA-BOOT-FAILED").count(), 1, "{console}");
    });
}
