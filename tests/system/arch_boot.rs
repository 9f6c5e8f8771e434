//! Foreign architectures on this x86_64 host: `cosa build --arch aarch64`
//! and `--arch s390x` compose the sample OS from Debian's arm64 / s390x
//! kernel and busybox, make the qemu image with that architecture's layout
//! (checked with sgdisk, qemu-img, mtools, debugfs), and `cosa kola run
//! basic --arch A` boots it in QEMU TCG: aarch64 through AAVMF and the
//! tree's signed shim and GRUB (also with Secure Boot), s390x by direct
//! kernel boot of the kernel, initramfs and BLS options read from the
//! image's own boot partition, ppc64le through SLOF and the GRUB core image
//! in the PReP partition, built from the tree's own powerpc-ieee1275
//! modules.

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MIB: u64 = 1024 * 1024;
const TYPE_LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const TYPE_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const TYPE_RESERVED: &str = "8DA63339-0007-60C0-C436-083AC8230908";
const TYPE_PREP: &str = "9E1A2D38-C612-4316-AA26-8B49521E5A8B";

struct Built {
    t: tempfile::TempDir,
    wd: PathBuf,
    qcow2: PathBuf,
    meta: serde_json::Value,
}

/// `cosa init`, `fetch --arch`, `build --arch` of the sample OS for `arch`.
fn build(arch: &str) -> Built {
    build_platforms(arch, &[])
}

/// [`build`], with these platforms (default: qemu).
fn build_platforms(arch: &str, platforms: &[&str]) -> Built {
    let start = Instant::now();
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, arch).unwrap();
    let wd = t.path().join("wd");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(cosa(&wd).args(["init", "--transient"]).arg(manifests), true);
    for verb in ["fetch", "build"] {
        let mut cmd = cosa(&wd);
        cmd.env("DNF_VAR_cosa_sample_repo", &repo)
            .args([verb, "--arch", arch]);
        if verb == "build" {
            cmd.args(platforms);
        }
        run(&mut cmd, true);
    }
    let bj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.join("builds/builds.json")).unwrap()).unwrap();
    let id = bj["builds"][0]["id"].as_str().unwrap().to_string();
    assert!(
        bj["builds"][0]["arches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == arch),
        "{bj}"
    );
    let dir = wd.join(format!("builds/{id}/{arch}"));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    cosa::store::meta::validate(&meta).unwrap();
    assert_eq!(meta["coreos-assembler.basearch"], arch, "{meta}");
    let name = meta["name"].as_str().unwrap();
    let path = meta["images"]["qemu"]["path"].as_str().unwrap();
    assert_eq!(path, format!("{name}-{id}-qemu.{arch}.qcow2"));
    let qcow2 = dir.join(path);
    sh(
        "qemu-img check",
        Command::new("qemu-img")
            .args(["check", "-f", "qcow2"])
            .arg(&qcow2),
    );
    eprintln!(
        "{arch}: sample repo + fetch + build in {:?}",
        start.elapsed()
    );
    Built { t, wd, qcow2, meta }
}

/// The raw form of the qcow2 (sparse), checked by `sgdisk -v`.
fn raw(b: &Built) -> PathBuf {
    let raw = b.t.path().join("disk.raw");
    sh(
        "qemu-img convert",
        Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(&b.qcow2)
            .arg(&raw),
    );
    let v = sh("sgdisk -v", Command::new("sgdisk").arg("-v").arg(&raw));
    assert!(v.contains("No problems found"), "{v}");
    raw
}

/// `sgdisk -i N`: (type GUID, name, first MiB, size MiB), or None when the
/// partition does not exist.
fn partition(disk: &Path, n: usize) -> Option<(String, String, u64, u64)> {
    let out = sh(
        "sgdisk -i",
        Command::new("sgdisk").arg(format!("-i={n}")).arg(disk),
    );
    if out.contains("does not exist") {
        return None;
    }
    let field = |k: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {out}"))
            .trim()
            .to_string()
    };
    let num = |k: &str| -> u64 { field(k).split_whitespace().next().unwrap().parse().unwrap() };
    let (first, last) = (num("First sector:"), num("Last sector:"));
    Some((
        field("Partition GUID code:")
            .split_whitespace()
            .next()
            .unwrap()
            .to_string(),
        field("Partition name:").trim_matches('\'').to_string(),
        first * 512 / MIB,
        (last + 1 - first) * 512 / MIB,
    ))
}

/// `cosa kola run basic --arch A` (with `--secure-boot`): passes, and says so.
fn kola(b: &Built, arch: &str, timeout: u64, secure_boot: bool) {
    kola_platform(b, arch, "qemu", timeout, secure_boot)
}

/// `cosa kola run basic --arch A --platform P`: passes, and says so.
fn kola_platform(b: &Built, arch: &str, platform: &str, timeout: u64, secure_boot: bool) {
    let start = Instant::now();
    let timeout = timeout.to_string();
    let mut args = vec![
        "kola",
        "run",
        "basic",
        "--arch",
        arch,
        "--platform",
        platform,
        "--timeout",
        &timeout,
    ];
    if secure_boot {
        args.push("--secure-boot");
    }
    let out = run(cosa(&b.wd).args(&args), true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("PASS: basic ({platform} ")),
        "{stdout}"
    );
    if secure_boot {
        assert!(
            stdout.contains("with Secure Boot on, lockdown integrity"),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains(&b.meta["ostree-commit"].as_str().unwrap()[..12]),
        "{stdout}"
    );
    eprintln!(
        "{arch}: {} (kola wall {:?})",
        stdout.trim(),
        start.elapsed()
    );
}

/// Partitions 1-3 are `want` (type, name, start MiB, size MiB) and 4 is
/// the root from `root_start` MiB, as sgdisk reads them.
fn check_partitions(raw: &Path, want: [(&str, &str, u64, u64); 3], root_start: u64) {
    let parts: Vec<_> = (1..=4).map(|n| partition(raw, n).unwrap()).collect();
    for (got, (ty, name, start, size)) in parts.iter().zip(want) {
        assert_eq!(
            got,
            &(ty.to_string(), name.to_string(), start, size),
            "{parts:?}"
        );
    }
    assert_eq!(
        (parts[3].0.as_str(), parts[3].1.as_str(), parts[3].2),
        (TYPE_LINUX, "root", root_start)
    );
}

#[test]
fn aarch64_image_has_the_fcos_layout_and_boots_under_aavmf() {
    let b = build("aarch64");
    let raw = raw(&b);
    check_partitions(
        &raw,
        [
            (TYPE_RESERVED, "reserved", 1, 1),
            (TYPE_ESP, "EFI-SYSTEM", 2, 127),
            (TYPE_LINUX, "boot", 129, 384),
        ],
        513,
    );
    // The ESP holds the tree's boot loader (Debian's signed arm64 shim and
    // GRUB), byte-identical to the commit's, and BOOTAA64.EFI (the shim) is
    // a PE image for machine 0xAA64.
    let commit = b.meta["ostree-commit"].as_str().unwrap();
    let payload = crate::esp::assert_esp_is_the_commits(
        &b.wd,
        commit,
        &raw,
        "/EFI/debian/grub.cfg",
        b.t.path(),
    );
    assert!(
        payload.contains(&"debian/grubaa64.efi".to_string()),
        "{payload:?}"
    );
    assert_eq!(b.meta["images"]["qemu"]["bootloader"]["from"], "tree");
    let efi = b.t.path().join("BOOTAA64.EFI");
    sh(
        "mcopy",
        Command::new("mcopy")
            .arg("-i")
            .arg(format!("{}@@{}", raw.display(), 2 * MIB))
            .arg("::/EFI/BOOT/BOOTAA64.EFI")
            .arg(&efi),
    );
    let pe = std::fs::read(&efi).unwrap();
    let off = u32::from_le_bytes(pe[0x3c..0x40].try_into().unwrap()) as usize;
    assert_eq!(&pe[off..off + 4], b"PE\0\0");
    assert_eq!(
        u16::from_le_bytes([pe[off + 4], pe[off + 5]]),
        0xaa64,
        "BOOTAA64.EFI is not an arm64 image"
    );
    std::fs::remove_file(&raw).unwrap();
    kola(&b, "aarch64", 600, false);
    kola(&b, "aarch64", 600, true);
}

/// aarch64 live media: the ISO carries the tree's arm64 shim and GRUB and
/// boots under AAVMF, with and without Secure Boot; PXE boots too.
#[test]
fn aarch64_live_media_boot_with_the_trees_boot_loader() {
    let b = build("aarch64");
    run(
        cosa(&b.wd).args(["buildextend-live", "--arch", "aarch64"]),
        true,
    );
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(b.qcow2.parent().unwrap().join("meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        meta["images"]["live-iso"]["bootloader"]["from"], "tree",
        "{}",
        meta["images"]["live-iso"]
    );
    kola_platform(&b, "aarch64", "live-iso", 600, false);
    kola_platform(&b, "aarch64", "live-iso", 600, true);
    kola_platform(&b, "aarch64", "live-pxe", 600, false);
}

#[test]
fn s390x_image_has_boot_and_root_and_boots_its_own_kernel() {
    let b = build("s390x");
    let raw = raw(&b);
    assert_eq!(partition(&raw, 1), None);
    assert_eq!(partition(&raw, 2), None);
    assert_eq!(
        partition(&raw, 3).unwrap(),
        (TYPE_LINUX.to_string(), "boot".to_string(), 1, 384)
    );
    let root = partition(&raw, 4).unwrap();
    assert_eq!(
        (root.0.as_str(), root.1.as_str(), root.2),
        (TYPE_LINUX, "root", 385)
    );
    // What kola boots comes from the boot partition: its BLS entry has the
    // s390x console, and the kernel it names is an s390 kernel.
    let d = cosa::testvm::direct_boot_from_disk(&raw, "raw", b.t.path()).unwrap();
    assert!(d.append.contains("console=ttysclp0"), "{}", d.append);
    assert!(
        d.append.contains("ignition.platform.id=qemu"),
        "{}",
        d.append
    );
    let k = std::fs::read(&d.kernel).unwrap();
    assert!(k.len() > MIB as usize, "kernel of {} bytes", k.len());
    assert!(d.initrd.is_some());
    std::fs::remove_file(&raw).unwrap();
    kola(&b, "s390x", 300, false);
}

/// Whether `needle` occurs in `hay`.
fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn ppc64le_images_have_the_prep_layout_and_boot_under_slof() {
    let platforms = ["qemu", "metal", "metal4k", "openstack", "powervs"];
    let b = build_platforms("ppc64le", &platforms);
    let id = b.meta["buildid"].as_str().unwrap().to_string();
    let dir = b.qcow2.parent().unwrap().to_path_buf();
    for (p, ext) in [
        ("qemu", "qcow2"),
        ("metal", "raw"),
        ("metal4k", "raw"),
        ("openstack", "qcow2"),
        ("powervs", "ova.gz"),
    ] {
        assert_eq!(
            b.meta["images"][p]["path"],
            format!("cosa-sample-{id}-{p}.ppc64le.{ext}"),
            "{p}"
        );
    }
    assert_eq!(b.meta["images"]["powervs"]["skip-compression"], true);

    // upstream's layout: PReP (4 MiB, legacy-bootable), reserved, boot, root.
    let raw = raw(&b);
    check_partitions(
        &raw,
        [
            (TYPE_PREP, "PowerPC-PReP-boot", 1, 4),
            (TYPE_RESERVED, "reserved", 5, 1),
            (TYPE_LINUX, "boot", 6, 384),
        ],
        390,
    );
    let i1 = sh("sgdisk -i 1", Command::new("sgdisk").arg("-i=1").arg(&raw));
    assert!(i1.contains("Attribute flags: 0000000000000004"), "{i1}");
    let p = sh("sgdisk -p", Command::new("sgdisk").arg("-p").arg(&raw));
    assert!(
        p.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains(" 4100 ")),
        "{p}"
    );

    // The PReP partition holds GRUB's Open Firmware core image: a 32-bit
    // big-endian PowerPC ELF file with the tree's own modules inside (the
    // host has no powerpc-ieee1275 modules to give).
    let prep = {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(&raw).unwrap();
        let mut buf = vec![0u8; 4 * MIB as usize];
        f.read_exact_at(&mut buf, MIB).unwrap();
        buf
    };
    assert_eq!(&prep[..4], b"\x7fELF");
    assert_eq!((prep[4], prep[5]), (1, 2), "ELFCLASS32, big-endian");
    assert_eq!(u16::from_be_bytes([prep[18], prep[19]]), 20, "EM_PPC");
    let commit = b.meta["ostree-commit"].as_str().unwrap();
    let normal = Command::new("ostree")
        .arg(format!("--repo={}", b.wd.join("tmp/repo").display()))
        .args(["cat", commit, "/usr/lib/grub/powerpc-ieee1275/normal.mod"])
        .output()
        .unwrap();
    assert!(normal.status.success(), "{normal:?}");
    assert!(normal.stdout.len() > 4096);
    assert!(
        contains_bytes(&prep, &normal.stdout),
        "the core image does not carry the tree's normal.mod"
    );

    // The boot partition: grub.cfg with the first-boot stamp logic, and a
    // BLS entry with the hvc0 console.
    let d = cosa::testvm::direct_boot_from_disk(&raw, "raw", b.t.path()).unwrap();
    for k in ["console=hvc0", "ignition.platform.id=qemu"] {
        assert!(d.append.contains(k), "{}", d.append);
    }
    let boot = cosa::testvm::partition_offset(&raw, "boot").unwrap();
    let cfg = sh(
        "debugfs cat grub.cfg",
        Command::new("debugfs")
            .args(["-R", "cat /grub2/grub.cfg"])
            .arg(format!("{}?offset={boot}", raw.display())),
    );
    assert!(cfg.contains("source \"/ignition.firstboot\""), "{cfg}");
    assert!(cfg.contains("console=hvc0"), "{cfg}");
    std::fs::remove_file(&raw).unwrap();

    // metal4k: the same layout in 4096-byte sectors.
    let m4k = dir.join(b.meta["images"]["metal4k"]["path"].as_str().unwrap());
    assert_eq!(
        cosa::testvm::partition_offset(&m4k, "PowerPC-PReP-boot").unwrap(),
        MIB
    );
    assert_eq!(
        cosa::testvm::partition_offset(&m4k, "boot").unwrap(),
        6 * MIB
    );

    // powervs: disk.raw, then its OVF descriptor, in a gzipped tar (read
    // in one pass: the disk is 10 GiB uncompressed).
    let ova = dir.join(b.meta["images"]["powervs"]["path"].as_str().unwrap());
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&ova).unwrap());
    let mut archive = tar::Archive::new(gz);
    let mut members = Vec::new();
    let mut ovf = String::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "coreos.ovf" {
            std::io::Read::read_to_string(&mut e, &mut ovf).unwrap();
        }
        members.push((name, e.size()));
    }
    let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(names, ["disk.raw", "coreos.ovf"], "{members:?}");
    assert_eq!(members[0].1, 10 * 1024 * MIB, "{members:?}");
    assert!(
        ovf.contains(&format!(
            r#"<ovf:File href="disk.raw" id="file1" size="{}"/>"#,
            10 * 1024 * MIB
        )),
        "{ovf}"
    );
    assert!(ovf.contains(">ppc64le</ibmpvc:architecture>"), "{ovf}");

    kola(&b, "ppc64le", 900, false);
    kola_platform(&b, "ppc64le", "metal", 900, false);
    vscsi_boot(
        &b,
        &dir.join(b.meta["images"]["metal"]["path"].as_str().unwrap()),
    );
}

/// The metal image on pseries' own virtual SCSI adapter (spapr-vscsi)
/// instead of virtio: SLOF boots it from the PReP partition and the
/// initramfs finds the root through its ibmvscsi module. The machine is
/// kola's, with the disk device swapped.
fn vscsi_boot(b: &Built, metal: &Path) {
    let scratch = b.t.path().join("vscsi");
    std::fs::create_dir_all(&scratch).unwrap();
    let m = cosa::testvm::Machine {
        arch: "ppc64le".into(),
        media: cosa::testvm::Media::Disk {
            path: metal.to_path_buf(),
            format: "raw".into(),
            sector: 512,
        },
        firmware: cosa::cli::Firmware::Uefi,
        memory_mib: 1024,
        secure_boot: false,
        ssh_port: None,
        ignition: None,
        disks: Vec::new(),
    };
    let kola_cmd = m.command(&scratch, false).unwrap();
    let mut cmd = Command::new(kola_cmd.get_program());
    let mut swapped = false;
    for a in kola_cmd.get_args() {
        if a.to_string_lossy()
            .starts_with("virtio-blk-pci,drive=disk0")
        {
            cmd.args([
                "spapr-vscsi,id=scsi0",
                "-device",
                "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=1",
            ]);
            swapped = true;
        } else {
            cmd.arg(a);
        }
    }
    assert!(swapped, "{kola_cmd:?}");
    let (console, elapsed) = cosa::testvm::run_capture(
        &cmd,
        "qemu-system-ppc64",
        &scratch.join("console.log"),
        std::time::Duration::from_secs(900),
    )
    .unwrap();
    assert!(console.contains("v-scsi@"), "SLOF did not boot from vscsi");
    let booted = cosa::testvm::check_booted(
        &console,
        elapsed,
        b.meta["ostree-commit"].as_str().unwrap(),
        b.meta["ostree-version"].as_str().unwrap(),
        &["ignition.platform.id=metal".to_string()],
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cosa::testvm::tail(&console, 40)));
    assert!(
        console.contains("ibmvscsi"),
        "{}",
        cosa::testvm::tail(&console, 40)
    );
    eprintln!(
        "ppc64le: metal on spapr-vscsi booted {} in {:.1}s",
        booted.version,
        elapsed.as_secs_f64()
    );
}
