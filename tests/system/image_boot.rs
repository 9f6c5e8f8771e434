//! Disk images of the sample OS: `cosa build` makes the qemu image, `cosa
//! build metal metal4k` adds the metal ones; each is checked with the real
//! tools (qemu-img, sgdisk, blkid, debugfs, ostree) and booted with `cosa
//! kola run basic` under UEFI and BIOS.

use crate::common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1024 * 1024;

struct Built {
    _t: tempfile::TempDir,
    wd: PathBuf,
    id: String,
    dir: PathBuf,
    meta: serde_json::Value,
}

fn build_sample(targets: &[&[&str]]) -> Built {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let wd = t.path().join("wd");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(cosa(&wd).args(["init", "--transient"]).arg(manifests), true);
    for args in targets {
        run(
            cosa(&wd)
                .env("DNF_VAR_cosa_sample_repo", &repo)
                .arg("build")
                .args(*args),
            true,
        );
    }
    let bj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.join("builds/builds.json")).unwrap()).unwrap();
    let id = bj["builds"][0]["id"].as_str().unwrap().to_string();
    let dir = wd.join(format!("builds/{id}/x86_64"));
    let meta = serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    Built {
        _t: t,
        wd,
        id,
        dir,
        meta,
    }
}

fn image(b: &Built, platform: &str) -> PathBuf {
    b.dir
        .join(b.meta["images"][platform]["path"].as_str().unwrap())
}

/// `sgdisk -i N` facts: (type GUID, name, first sector, last sector).
fn partition(disk: &Path, n: usize) -> (String, String, u64, u64) {
    let out = sh(
        "sgdisk -i",
        Command::new("sgdisk").arg(format!("-i={n}")).arg(disk),
    );
    let field = |k: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {out}"))
            .trim()
            .to_string()
    };
    let ty = field("Partition GUID code:")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let name = field("Partition name:").trim_matches('\'').to_string();
    let num = |k: &str| -> u64 { field(k).split_whitespace().next().unwrap().parse().unwrap() };
    (ty, name, num("First sector:"), num("Last sector:"))
}

fn blkid(disk: &Path, offset: u64) -> String {
    sh(
        "blkid",
        Command::new("blkid")
            .args(["--probe", "--offset"])
            .arg(offset.to_string())
            .arg(disk),
    )
}

/// Copy an ext4 file system at `offset` of `disk` into `dest` with debugfs
/// (owners and modes kept), then restore the extended attributes debugfs
/// does not dump (ostree fsck checks them).
fn dump_ext4(disk: &Path, offset: u64, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let dev = format!("{}?offset={offset}", disk.display());
    sh(
        "debugfs rdump",
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("rdump / {}", dest.display()))
            .arg(&dev),
    );
    let mut files = Vec::new();
    let mut stack = vec![dest.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() || ft.is_symlink() {
                // Symlinks carry SELinux labels too, and a bare repo's
                // symlink objects are checksummed with them.
                files.push(e.path());
            }
        }
    }
    let cmds: String = files
        .iter()
        .map(|p| format!("ea_list /{}\n", p.strip_prefix(dest).unwrap().display()))
        .collect();
    let cmdfile = dest.with_extension("debugfs");
    std::fs::write(&cmdfile, cmds).unwrap();
    let out = sh(
        "debugfs ea_list",
        Command::new("debugfs").arg("-f").arg(&cmdfile).arg(&dev),
    );
    let mut current: Option<PathBuf> = None;
    let mut restored = 0;
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("debugfs: ea_list /") {
            current = Some(dest.join(p));
        } else if let (Some(p), Some((name, value))) = (&current, line.trim().split_once(" = ")) {
            let name = name.split(" (").next().unwrap();
            let bytes: Vec<u8> = if let Some(s) = value.strip_prefix('"') {
                // debugfs prints a string value with C escapes: the NUL
                // that ends an SELinux label is `\000`.
                unescape(s.strip_suffix('"').unwrap_or(s))
            } else {
                value
                    .split_whitespace()
                    .map(|h| u8::from_str_radix(h, 16).unwrap())
                    .collect()
            };
            xattr::set(p, name, &bytes).unwrap();
            restored += 1;
        }
    }
    let _ = restored;
}

/// `\NNN` (octal) and `\\` escapes as debugfs prints them.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap(), 8).unwrap();
            out.push(v);
            i += 4;
        } else if b[i] == b'\\' && i + 1 < b.len() {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn sample_images_have_the_fcos_layout_and_boot() {
    let b = build_sample(&[&[], &["metal", "metal4k"]]);
    // One build: the second `cosa build` had no new input, so it added the
    // metal images to the first build.
    let bj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.wd.join("builds/builds.json")).unwrap()).unwrap();
    assert_eq!(bj["builds"].as_array().unwrap().len(), 1, "{bj}");
    cosa::store::meta::validate(&b.meta).unwrap();
    let name = b.meta["name"].as_str().unwrap();
    for (platform, ext) in [("qemu", "qcow2"), ("metal", "raw"), ("metal4k", "raw")] {
        let img = &b.meta["images"][platform];
        assert_eq!(
            img["path"],
            format!("{name}-{}-{platform}.x86_64.{ext}", b.id),
            "{img}"
        );
        let (sha, size) = cosa::util::digest::sha256_file(&image(&b, platform)).unwrap();
        assert_eq!(img["sha256"], sha.as_str());
        assert_eq!(img["size"], size);
        if ext == "qcow2" {
            sh(
                "qemu-img check",
                Command::new("qemu-img")
                    .args(["check", "-f", ext])
                    .arg(image(&b, platform)),
            );
        } else {
            // qemu-img has no check for raw; it must see a plain raw disk.
            let info: serde_json::Value = serde_json::from_str(&sh(
                "qemu-img info",
                Command::new("qemu-img")
                    .args(["info", "--output=json"])
                    .arg(image(&b, platform)),
            ))
            .unwrap();
            assert_eq!(info["format"], "raw");
            assert_eq!(info["virtual-size"], size);
        }
    }
    let info: serde_json::Value = serde_json::from_str(&sh(
        "qemu-img info",
        Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(image(&b, "qemu")),
    ))
    .unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["format-specific"]["data"]["compat"], "1.1");
    assert_eq!(info["virtual-size"], 10 * 1024 * MIB, "image.yaml size: 10");

    // The GPT: upstream's partitions, names and type GUIDs.
    let t = tempfile::tempdir().unwrap();
    let qraw = t.path().join("qemu.raw");
    sh(
        "qemu-img convert",
        Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(image(&b, "qemu"))
            .arg(&qraw),
    );
    let metal = image(&b, "metal");
    for disk in [&qraw, &metal] {
        let v = sh("sgdisk -v", Command::new("sgdisk").arg("-v").arg(disk));
        assert!(v.contains("No problems found"), "{v}");
        let parts: Vec<_> = (1..=4).map(|n| partition(disk, n)).collect();
        let want = [
            ("21686148-6449-6E6F-744E-656564454649", "BIOS-BOOT", 1, 1),
            ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI-SYSTEM", 2, 127),
            ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "boot", 129, 384),
            ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "root", 513, 0),
        ];
        for (p, w) in parts.iter().zip(want) {
            assert_eq!(
                (p.0.as_str(), p.1.as_str()),
                (w.0, w.1),
                "{}",
                disk.display()
            );
            assert_eq!(p.2 * 512, w.2 * MIB, "{} start", w.1);
            if w.3 > 0 {
                assert_eq!((p.3 + 1 - p.2) * 512, w.3 * MIB, "{} size", w.1);
            }
        }
        let guid = sh("sgdisk -p", Command::new("sgdisk").arg("-p").arg(disk));
        assert!(
            guid.contains("00000000-0000-4000-A000-000000000001"),
            "{guid}"
        );
        assert!(blkid(disk, 2 * MIB).contains("LABEL=\"EFI-SYSTEM\""));
        let bootfs = blkid(disk, 129 * MIB);
        assert!(
            bootfs.contains("LABEL=\"boot\"") && bootfs.contains("TYPE=\"ext4\""),
            "{bootfs}"
        );
        assert!(blkid(disk, 513 * MIB).contains("LABEL=\"root\""));
    }
    // metal is sized to its content, qemu to image.yaml's 10 GiB.
    let metal_size = std::fs::metadata(&metal).unwrap().len();
    assert!(metal_size < 2048 * MIB, "metal is {metal_size} bytes");
    // metal4k: 4096-byte sectors; sgdisk sees them through a loop device.
    let m4k = image(&b, "metal4k");
    let lo = Command::new("losetup")
        .args(["-b", "4096", "-f", "--show", "-r"])
        .arg(&m4k)
        .output()
        .unwrap();
    if lo.status.success() {
        let dev = String::from_utf8_lossy(&lo.stdout).trim().to_string();
        let v = Command::new("sgdisk").arg("-v").arg(&dev).output().unwrap();
        let p = Command::new("sgdisk").arg("-p").arg(&dev).output().unwrap();
        Command::new("losetup")
            .arg("-d")
            .arg(&dev)
            .status()
            .unwrap();
        let v = String::from_utf8_lossy(&v.stdout);
        assert!(v.contains("No problems found"), "{v}");
        let p = String::from_utf8_lossy(&p.stdout).into_owned();
        assert!(
            p.lines()
                .any(|l| l.starts_with("Sector size") && l.contains("4096")),
            "{p}"
        );
    } else {
        eprintln!(
            "note: no loop device here, so sgdisk cannot read metal4k's 4096-byte sectors; \
             it is checked by booting it"
        );
    }
    assert!(blkid(&m4k, 129 * MIB).contains("LABEL=\"boot\""));

    // The boot partition: BLS entry with the platform's kargs, grub.cfg.
    let commit = b.meta["ostree-commit"].as_str().unwrap();
    for (disk, platform) in [(&qraw, "qemu"), (&metal, "metal")] {
        let boot = t.path().join(format!("boot-{platform}"));
        dump_ext4(disk, 129 * MIB, &boot);
        let bls =
            std::fs::read_to_string(boot.join("loader/entries/ostree-1-cosa-sample.conf")).unwrap();
        let fields: BTreeMap<&str, &str> = bls.lines().filter_map(|l| l.split_once(' ')).collect();
        let opts: Vec<&str> = fields["options"].split_whitespace().collect();
        for k in [
            format!("ignition.platform.id={platform}"),
            "console=ttyS0,115200n8".to_string(),
            "mitigations=auto,nosmt".to_string(),
            "rw".to_string(),
        ] {
            assert!(opts.contains(&k.as_str()), "{k} missing in {bls}");
        }
        let ostree = opts.iter().find(|o| o.starts_with("ostree=")).unwrap();
        assert!(
            ostree.starts_with("ostree=/ostree/boot.1/cosa-sample/"),
            "{ostree}"
        );
        assert!(fields["title"].contains(&b.id), "{bls}");
        for k in ["linux", "initrd"] {
            assert!(
                boot.join(&fields[k][1..]).is_file(),
                "{k} {} missing",
                fields[k]
            );
        }
        let grub = std::fs::read_to_string(boot.join("grub2/grub.cfg")).unwrap();
        assert!(grub.contains("serial --speed=115200"), "{grub}");
        // First boot: the stamp file (empty: image.yaml has
        // `ignition-network-kcmdline: []`) turns `$ignition_firstboot` on.
        assert!(opts.contains(&"$ignition_firstboot"), "{bls}");
        assert!(grub.contains("source \"/ignition.firstboot\""), "{grub}");
        assert_eq!(
            std::fs::read_to_string(boot.join("ignition.firstboot")).unwrap(),
            ""
        );
        assert!(grub.contains(&format!("linux {} {}", fields["linux"], fields["options"])));

        // The boot loader is the tree's: the ESP holds the commit's bootupd
        // payload byte for byte (Microsoft-signed shim, Debian-signed GRUB)
        // with the grub.cfg stub where Debian's GRUB looks (its prefix),
        // bootupd's state names it, and the kernel GRUB boots is signed.
        let payload = crate::esp::assert_esp_is_the_commits(
            &b.wd,
            commit,
            disk,
            "/EFI/debian/grub.cfg",
            t.path(),
        );
        assert!(
            payload.contains(&"BOOT/BOOTX64.EFI".to_string())
                && payload.contains(&"debian/grubx64.efi".to_string()),
            "{payload:?}"
        );
        crate::esp::assert_bootupd_state(&b.wd, commit, &boot, &payload, true);
        let vmlinuz = std::fs::read(boot.join(&fields["linux"][1..])).unwrap();
        assert!(crate::esp::pe_signed(&vmlinuz), "the kernel is not signed");
        let record = &b.meta["images"][platform]["bootloader"];
        assert_eq!(record["from"], "tree", "{record}");
        assert_eq!(record["grub-cfg-stub"], "/EFI/debian/grub.cfg", "{record}");
        assert!(
            record["BIOS"]["version"]
                .as_str()
                .unwrap()
                .starts_with("grub-pc-bin-"),
            "{record}"
        );

        // The root partition: an OSTree sysroot; with the boot partition
        // at /boot, `ostree admin status` sees this build's deployment.
        let root = t.path().join(format!("root-{platform}"));
        dump_ext4(disk, 513 * MIB, &root);
        std::fs::remove_dir_all(root.join("boot")).unwrap();
        std::os::unix::fs::symlink(&boot, root.join("boot")).unwrap();
        let status = sh(
            "ostree admin status",
            Command::new("ostree")
                .arg("admin")
                .arg("status")
                .arg(format!("--sysroot={}", root.display())),
        );
        assert!(
            status.contains(&format!("cosa-sample {commit}.0")),
            "{status}"
        );
        assert!(status.contains(&format!("Version: {}", b.id)), "{status}");
        sh(
            "ostree fsck",
            Command::new("ostree")
                .arg("fsck")
                .arg(format!("--repo={}", root.join("ostree/repo").display())),
        );
        let mode = sh(
            "ostree config",
            Command::new("ostree")
                .args(["config", "get", "core.mode"])
                .arg(format!("--repo={}", root.join("ostree/repo").display())),
        );
        assert_eq!(mode.trim(), "bare");
        let dep = root.join(format!("ostree/deploy/cosa-sample/deploy/{commit}.0"));
        assert!(dep.join("etc/os-release").exists());
        let origin = std::fs::read_to_string(root.join(format!(
            "ostree/deploy/cosa-sample/deploy/{commit}.0.origin"
        )))
        .unwrap();
        assert!(
            origin.contains("refspec=cosa-sample/x86_64/dev"),
            "{origin}"
        );
        let aleph: serde_json::Value = serde_json::from_slice(
            &std::fs::read(root.join(".coreos-aleph-version.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(aleph["ostree-commit"], commit);
        assert_eq!(aleph["imgid"], b.meta["images"][platform]["path"]);
    }

    // Boot them: qemu under UEFI and BIOS, metal under BIOS, metal4k (4K
    // sectors) under UEFI.
    for (platform, fw) in [
        ("qemu", "uefi"),
        ("qemu", "bios"),
        ("metal", "bios"),
        ("metal4k", "uefi"),
    ] {
        let out = run(
            cosa(&b.wd).args([
                "kola",
                "run",
                "basic",
                "--platform",
                platform,
                "--firmware",
                fw,
                "--timeout",
                "180",
            ]),
            true,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("PASS: basic ({platform} {fw}) booted {}", b.id)),
            "{stdout}"
        );
        eprintln!("{}", stdout.trim());
    }
    // Secure Boot: OVMF with Microsoft's keys runs the signed chain, and the
    // booted kernel says Secure Boot is on and locks itself down.
    let out = run(
        cosa(&b.wd).args(["kola", "run", "basic", "--secure-boot", "--timeout", "300"]),
        true,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "PASS: basic (qemu uefi-secure-boot) booted {}",
            b.id
        )) && stdout.contains("with Secure Boot on, lockdown integrity"),
        "{stdout}"
    );
    eprintln!("{}", stdout.trim());
}

#[test]
fn secure_boot_refuses_the_hosts_unsigned_grub() {
    // The sample config without its boot loader packages: the image gets
    // the build host's GRUB, with a warning, and meta.json says so.
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let cfg = t.path().join("config");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    std::fs::create_dir(&cfg).unwrap();
    // The sample config, with base.yaml rewritten (the rest linked:
    // image.yaml, platforms.yaml and overlay.d are links themselves).
    for e in std::fs::read_dir(&manifests).unwrap() {
        let e = e.unwrap();
        let target = std::fs::canonicalize(e.path()).unwrap();
        if e.file_name() == "base.yaml" {
            std::fs::copy(&target, cfg.join("base.yaml")).unwrap();
        } else {
            std::os::unix::fs::symlink(&target, cfg.join(e.file_name())).unwrap();
        }
    }
    let base = std::fs::read_to_string(cfg.join("base.yaml")).unwrap();
    let (kept, _) = base.split_once("packages-x86_64:").unwrap();
    std::fs::write(cfg.join("base.yaml"), kept).unwrap();
    let wd = t.path().join("wd");
    run(cosa(&wd).args(["init", "--transient"]).arg(&cfg), true);
    let out = run(
        cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .arg("build"),
        true,
    );
    let e = stderr(&out);
    assert!(
        e.contains("warning: the tree has no /usr/lib/bootupd/updates/EFI")
            && e.contains("build host's GRUB"),
        "{e}"
    );
    let bj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.join("builds/builds.json")).unwrap()).unwrap();
    let id = bj["builds"][0]["id"].as_str().unwrap();
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(wd.join(format!("builds/{id}/x86_64/meta.json"))).unwrap(),
    )
    .unwrap();
    cosa::store::meta::validate(&meta).unwrap();
    assert_eq!(
        meta["images"]["qemu"]["bootloader"]["from"], "host",
        "{meta}"
    );
    // It boots without Secure Boot...
    let out = run(
        cosa(&wd).args(["kola", "run", "basic", "--timeout", "180"]),
        true,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("PASS: basic (qemu uefi)"));
    // ...and under Secure Boot the firmware refuses the unsigned GRUB: kola
    // fails at once, naming the firmware's message, not by timing out.
    let start = std::time::Instant::now();
    let out = run(
        cosa(&wd).args(["kola", "run", "basic", "--secure-boot", "--timeout", "240"]),
        false,
    );
    let took = start.elapsed();
    let e = stderr(&out);
    assert!(
        e.contains("kola basic FAILED") && e.contains("Secure Boot refused"),
        "{e}"
    );
    assert!(e.contains("Access Denied"), "{e}");
    assert!(
        took < std::time::Duration::from_secs(120),
        "the refusal took {took:?}: kola waited for the timeout"
    );
    eprintln!("unsigned GRUB refused under Secure Boot in {took:?}");
}

#[test]
fn kola_fails_with_the_console_when_the_build_does_not_match() {
    let b = build_sample(&[&[]]);
    // Pretend the build is another version: the booted system disagrees.
    run(
        cosa(&b.wd).args(["meta", "--set", "ostree-version=1.20000101.dev.9"]),
        true,
    );
    let out = run(
        cosa(&b.wd).args(["kola", "run", "basic", "--timeout", "180"]),
        false,
    );
    let e = stderr(&out);
    assert!(e.contains("kola basic FAILED"), "{e}");
    assert!(
        e.contains(&format!(
            "booted version {} is not this build's 1.20000101.dev.9",
            b.id
        )),
        "{e}"
    );
    assert!(
        e.contains("COSA-BOOTED version="),
        "the console is shown: {e}"
    );
    // A platform the build lacks and a wrong firmware are clear errors.
    let e = stderr(&run(
        cosa(&b.wd).args(["kola", "run", "basic", "--platform", "metal"]),
        false,
    ));
    assert!(
        e.contains("has no metal image") && e.contains("cosa buildextend-metal"),
        "{e}"
    );
    let e = stderr(&run(cosa(&b.wd).args(["buildextend-metal4k"]), true));
    assert!(e.contains("Recorded images.metal4k"), "{e}");
    let e = stderr(&run(
        cosa(&b.wd).args([
            "kola",
            "run",
            "basic",
            "--platform",
            "metal4k",
            "--firmware",
            "bios",
        ]),
        false,
    ));
    assert!(e.contains("4096-byte sectors"), "{e}");
}

#[test]
fn a_tree_without_kernel_gets_no_image_and_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let cfg = config_dir(
        t.path(),
        "ref: t/x86_64/dev\nreleasever: 1\nrepos:\n  - test\npackages:\n  - filesystem\n",
        &repo.join("x86_64"),
    );
    let wd = init_transient(t.path(), &cfg);
    // `cosa build` (default targets) commits and says why there is no image.
    let e = stderr(&run(cosa(&wd).arg("build"), true));
    assert!(e.contains("no kernel: skipping the images (qemu)"), "{e}");
    // Asking for an image explicitly is an error, naming why.
    let e = stderr(&run(cosa(&wd).arg("buildextend-qemu"), false));
    assert!(e.contains("no kernel"), "{e}");
    let e = stderr(&run(cosa(&wd).args(["build", "--force", "metal"]), false));
    assert!(e.contains("no kernel"), "{e}");
}
