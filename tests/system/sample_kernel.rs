//! The sample OS's kernel package, checked with real tools: module
//! dependencies against binutils' `readelf -p .modinfo`, the package with
//! `rpm -qp`, and the initramfs with GNU cpio.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};

fn readelf_depends(path: &std::path::Path) -> Vec<String> {
    let out = Command::new("readelf")
        .args(["-p", ".modinfo"])
        .arg(path)
        .output()
        .expect("readelf runs (install binutils)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.split_once("depends=").map(|x| x.1.trim().to_string()))
        .map(|d| {
            d.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kernel_package_holds_the_boot_modules_and_initramfs() {
    let k = cosa_testkit::sample::kernel::load("x86_64").unwrap();
    assert!(k.kver.ends_with("-cloud-amd64"), "{}", k.kver);
    let names: Vec<&str> = k.modules.iter().map(|m| m.name.as_str()).collect();
    for want in [
        "virtio",
        "virtio_ring",
        "virtio_pci",
        "virtio_blk",
        "virtio_scsi",
        "sd_mod",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // Dependencies as binutils reads them, each loaded before its users.
    let cache = cosa_testkit::sample::debian::cache_dir().unwrap();
    let deb = cosa_testkit::sample::kernel::kernel_deb(&cache, "amd64").unwrap();
    let root = cosa_testkit::sample::debian::extract_deb(&cache, &deb).unwrap();
    let moddir = root.join("lib/modules").join(&k.kver);
    let mut loaded = BTreeSet::new();
    for m in &k.modules {
        assert_eq!(
            m.depends,
            readelf_depends(&moddir.join(&m.rel)),
            "{}",
            m.name
        );
        for d in &m.depends {
            assert!(loaded.contains(d), "{} is loaded before {d}", m.name);
        }
        loaded.insert(m.name.clone());
    }

    // The package, read back by Debian's rpm.
    let pkgs = cosa_testkit::sample::packages("x86_64").unwrap();
    let kernel = pkgs.iter().find(|p| p.name == "kernel").unwrap();
    let (v, r) = cosa_testkit::sample::rpm_version(&k.deb_version);
    assert_eq!(
        (&kernel.version, &kernel.release),
        (&v, &format!("{r}.sample"))
    );
    let t = tempfile::tempdir().unwrap();
    let rpm = kernel.build(t.path()).unwrap();
    let q = |args: &[&str]| {
        let out = Command::new("rpm")
            .args(["-qp", "--nosignature", "--nodigest"])
            .args(args)
            .arg(&rpm)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let files = q(&["-l"]);
    let dir = format!("/usr/lib/modules/{}", k.kver);
    for f in ["vmlinuz", "initramfs.img", "modules.dep"] {
        assert!(files.contains(&format!("{dir}/{f}\n")), "{f}: {files}");
    }
    let kos: Vec<&str> = files.lines().filter(|l| l.ends_with(".ko")).collect();
    // The boot modules, and those the booted OS loads itself (efivarfs).
    assert_eq!(kos.len(), k.modules.len() + k.os_modules.len(), "{files}");
    assert!(
        k.os_modules.iter().any(|m| m.name == "efivarfs"),
        "{:?}",
        k.os_modules.iter().map(|m| &m.name).collect::<Vec<_>>()
    );
    assert!(q(&["--requires"]).lines().any(|l| l == "filesystem"));
    assert!(q(&["--provides"]).contains(&format!("kernel-uname-r = {}", k.kver)));
    for (name, req) in [("busybox", "filesystem"), ("sample-init", "busybox")] {
        let p = pkgs.iter().find(|p| p.name == name).unwrap();
        assert!(p.requires.iter().any(|r| r == req), "{name} requires {req}");
    }

    // The initramfs: gzip'd newc that GNU cpio lists, with /init and the modules.
    let busybox = cosa_testkit::sample::busybox("x86_64").unwrap();
    let gz = cosa_testkit::sample::initramfs::build(&k, &busybox).unwrap();
    let mut cpio = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut cpio)
        .unwrap();
    let mut child = Command::new("cpio")
        .args(["-t", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&cpio).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    let entries: BTreeSet<&str> = listing.lines().collect();
    for want in [
        "init",
        "bin/busybox",
        "bin/switch_root",
        "bin/findfs",
        "dev/console",
        "etc/cosa-modules",
    ] {
        assert!(
            entries.contains(want),
            "{want} not in the initramfs:\n{listing}"
        );
    }
    for m in &k.modules {
        let p = format!("lib/modules/{}/{}", k.kver, m.rel);
        assert!(entries.contains(p.as_str()), "{p}");
    }
}
