//! Live media of the sample OS: `cosa build ostree` then `cosa
//! buildextend-live`; the ISO is checked with xorriso (El Torito BIOS and
//! EFI entries, file listing, MBR/GPT), the rootfs with cpio and unsquashfs,
//! meta.json against the upstream schema, and every boot path is booted in
//! QEMU with `cosa kola run basic`: the ISO under UEFI (OVMF) and BIOS
//! (SeaBIOS), and the PXE kernel + initramfs + rootfs. The ISO's EFI boot
//! loader is the commit's (bootupd's payload, read with `ostree cat`,
//! compared with efiboot.img's files read with mtools) and boots under
//! Secure Boot (`cosa kola run basic --platform live-iso --secure-boot`:
//! OVMF secboot with Microsoft's keys); meta.json records it.

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Like `common::sh`, but stdout and stderr together (xorriso reports on
/// stderr).
fn sh(what: &str, cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

struct Built {
    wd: PathBuf,
    id: String,
    dir: PathBuf,
    meta: serde_json::Value,
    seconds: f64,
}

/// One build with live media for every test of this file.
fn built() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        let root = process_dir("live_boot");
        std::fs::create_dir_all(&root).unwrap();
        let repo = root.join("sample-repo");
        cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
        let wd = root.join("wd");
        let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
        run(cosa(&wd).args(["init", "--transient"]).arg(manifests), true);
        run(
            cosa(&wd)
                .env("DNF_VAR_cosa_sample_repo", &repo)
                .args(["build", "ostree"]),
            true,
        );
        let t = std::time::Instant::now();
        let out = run(cosa(&wd).arg("buildextend-live"), true);
        let seconds = t.elapsed().as_secs_f64();
        eprintln!("{}", stderr(&out));
        let bj: serde_json::Value =
            serde_json::from_slice(&std::fs::read(wd.join("builds/builds.json")).unwrap()).unwrap();
        let id = bj["builds"][0]["id"].as_str().unwrap().to_string();
        let dir = wd.join(format!("builds/{id}/x86_64"));
        let meta = serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
        Built {
            wd,
            id,
            dir,
            meta,
            seconds,
        }
    })
}

fn artifact(b: &Built, key: &str) -> PathBuf {
    b.dir.join(
        b.meta["images"][key]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("no images.{key} in {}", b.meta)),
    )
}

#[test]
fn meta_records_the_four_artifacts() {
    let b = built();
    eprintln!("buildextend-live took {:.1}s", b.seconds);
    cosa::store::meta::validate(&b.meta).unwrap();
    let want = [
        ("live-iso", format!("cosa-{}-live-iso.x86_64.iso", b.id)),
        ("live-kernel", format!("cosa-{}-live-kernel.x86_64", b.id)),
        (
            "live-initramfs",
            format!("cosa-{}-live-initramfs.x86_64.img", b.id),
        ),
        (
            "live-rootfs",
            format!("cosa-{}-live-rootfs.x86_64.img", b.id),
        ),
    ];
    // Where the ISO's boot loader came from, as disk images record it.
    assert_eq!(
        b.meta["images"]["live-iso"]["bootloader"]["from"], "tree",
        "{}",
        b.meta["images"]["live-iso"]
    );
    let name = b.meta["name"].as_str().unwrap();
    for (key, file) in want {
        let file = file.replacen("cosa-", &format!("{name}-"), 1);
        let a = &b.meta["images"][key];
        assert_eq!(a["path"], file.as_str(), "{key}");
        assert_eq!(a["skip-compression"], true, "{key}");
        let p = b.dir.join(&file);
        let (sha, size) = cosa::util::digest::sha256_file(&p).unwrap();
        assert_eq!(a["sha256"], sha.as_str(), "{key}");
        assert_eq!(a["size"], size, "{key}");
    }
    // The kernel is a bzImage, the initramfs gzip.
    let k = std::fs::read(artifact(b, "live-kernel")).unwrap();
    assert_eq!(&k[0x202..0x206], b"HdrS");
    let i = std::fs::read(artifact(b, "live-initramfs")).unwrap();
    assert_eq!(&i[..2], &[0x1f, 0x8b]);
    // The same build makes the same bytes (time stamps are the commit's).
    run(cosa(&b.wd).arg("buildextend-live"), true);
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.dir.join("meta.json")).unwrap()).unwrap();
    for key in cosa::image::live::KEYS {
        assert_eq!(
            again["images"][key]["sha256"], b.meta["images"][key]["sha256"],
            "{key} is not reproducible"
        );
    }
    // No leftovers of the staging.
    for e in std::fs::read_dir(&b.dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with(".tmp-"), "{n}");
    }
}

#[test]
fn rootfs_is_a_cpio_with_the_deployed_sysroot_squashfs() {
    let b = built();
    let rootfs = artifact(b, "live-rootfs");
    let t = tempfile::tempdir().unwrap();
    let list = sh(
        "cpio -t",
        Command::new("sh")
            .arg("-c")
            .arg("cpio -t --quiet < \"$1\"")
            .arg("sh")
            .arg(&rootfs),
    );
    assert_eq!(list.trim(), "root.squashfs");
    sh(
        "cpio -i",
        Command::new("sh")
            .current_dir(t.path())
            .arg("-c")
            .arg("cpio -i --quiet < \"$1\"")
            .arg("sh")
            .arg(&rootfs),
    );
    let sq = t.path().join("root.squashfs");
    let data = std::fs::read(&sq).unwrap();
    assert_eq!(&data[..4], b"hsqs");
    let commit = b.meta["ostree-commit"].as_str().unwrap();
    let ls = sh(
        "unsquashfs -l",
        Command::new("unsquashfs").arg("-l").arg(&sq),
    );
    for want in [
        "squashfs-root/ostree/repo/config",
        "squashfs-root/ostree/boot.1",
        "squashfs-root/.coreos-aleph-version.json",
    ] {
        assert!(ls.lines().any(|l| l == want), "{want} not in\n{ls}");
    }
    let busybox = format!("/deploy/{commit}.0/usr/bin/busybox");
    assert!(
        ls.lines()
            .any(|l| l.starts_with("squashfs-root/ostree/deploy/") && l.ends_with(&busybox)),
        "no deployment of {commit} in\n{ls}"
    );
    // Owners and modes kept (not -all-root), times fixed to the commit's.
    let lls = sh(
        "unsquashfs -lls",
        Command::new("unsquashfs").arg("-lls").arg(&sq),
    );
    assert!(
        lls.contains("drwxrwxrwt root/root"),
        "no /tmp-like 1777 dirs:\n{lls}"
    );
    let stat = sh(
        "unsquashfs -s",
        Command::new("unsquashfs").arg("-s").arg(&sq),
    );
    assert!(stat.contains("zstd"), "{stat}");
    // Every time stamp is the commit's (unsquashfs prints local time).
    let ts = b.meta["ostree-timestamp"].as_str().unwrap();
    let ts = cosa::util::time::format_rfc3339(cosa::util::time::parse_rfc3339(ts).unwrap());
    let minute = ts[..16].replace('T', " ");
    let lls = sh(
        "unsquashfs -lls",
        Command::new("unsquashfs")
            .env("TZ", "UTC")
            .arg("-lls")
            .arg(&sq),
    );
    let entries: Vec<&str> = lls
        .lines()
        .filter(|l| l.contains(" squashfs-root"))
        .collect();
    assert!(entries.len() > 100, "{lls}");
    for l in entries {
        assert!(l.contains(&minute), "{l} is not dated {minute}");
    }
}

#[test]
fn iso_has_bios_and_efi_el_torito_and_the_pxe_files() {
    let b = built();
    let iso = artifact(b, "live-iso");
    let label = cosa::image::live::volume_label(b.meta["name"].as_str().unwrap(), &b.id);
    let rep = sh(
        "xorriso -report_el_torito",
        Command::new("xorriso").arg("-indev").arg(&iso).args([
            "-report_el_torito",
            "plain",
            "-report_system_area",
            "plain",
        ]),
    );
    let entries: Vec<&str> = rep
        .lines()
        .filter(|l| l.starts_with("El Torito boot img :"))
        .collect();
    assert_eq!(entries.len(), 2, "{rep}");
    assert!(
        entries[0].contains("BIOS") && entries[0].contains(" y "),
        "{rep}"
    );
    assert!(entries[1].contains("UEFI"), "{rep}");
    assert!(rep.contains(&format!("Volume id    : '{label}'")), "{rep}");
    assert!(rep.contains("GPT"), "no GPT in the system area:\n{rep}");
    assert!(rep.contains("MBR"), "no MBR in the system area:\n{rep}");
    let ls = sh(
        "xorriso -find",
        Command::new("xorriso")
            .arg("-indev")
            .arg(&iso)
            .args(["-find", "/", "-type", "f"]),
    );
    for f in [
        "/images/pxeboot/vmlinuz",
        "/images/pxeboot/initrd.img",
        "/images/pxeboot/rootfs.img",
        "/images/efiboot.img",
        "/boot/grub/grub.cfg",
        "/boot/grub/i386-pc/eltorito.img",
        "/EFI/BOOT/BOOTX64.EFI",
    ] {
        assert!(
            ls.lines().any(|l| l.trim_matches('\'') == f),
            "{f} not in\n{ls}"
        );
    }
    // The PXE files on the ISO are the artifacts, byte for byte.
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("x");
    for (inside, key) in [
        ("/images/pxeboot/vmlinuz", "live-kernel"),
        ("/images/pxeboot/initrd.img", "live-initramfs"),
        ("/images/pxeboot/rootfs.img", "live-rootfs"),
    ] {
        sh(
            "xorriso -osirrox",
            Command::new("xorriso")
                .arg("-osirrox")
                .arg("on")
                .arg("-indev")
                .arg(&iso)
                .arg("-extract")
                .arg(inside)
                .arg(&out),
        );
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(artifact(b, key)).unwrap(),
            "{inside} differs from {key}"
        );
        std::fs::remove_file(&out).unwrap();
    }
    let cfg_out = t.path().join("grub.cfg");
    sh(
        "xorriso -osirrox",
        Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(&iso)
            .args(["-extract", "/boot/grub/grub.cfg"])
            .arg(&cfg_out),
    );
    let cfg = std::fs::read_to_string(&cfg_out).unwrap();
    assert!(cfg.contains("serial --speed=115200"), "{cfg}");
    let linux = cfg
        .lines()
        .find(|l| l.trim().starts_with("linux "))
        .unwrap();
    for k in [
        format!("coreos.liveiso={label}"),
        "ignition.platform.id=metal".to_string(),
        "console=ttyS0,115200n8".to_string(),
    ] {
        assert!(
            linux.split_whitespace().any(|a| a == k),
            "{k} not in {linux}"
        );
    }
    assert!(linux.contains(" ostree=/ostree/boot.1/"), "{linux}");
    // The EFI image is FAT with the GRUB EFI binary.
    let efi = t.path().join("efiboot.img");
    sh(
        "xorriso -osirrox",
        Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(&iso)
            .args(["-extract", "/images/efiboot.img"])
            .arg(&efi),
    );
    let dir = sh(
        "mdir",
        Command::new("mdir").arg("-i").arg(&efi).arg("::EFI/BOOT"),
    );
    assert!(dir.contains("BOOTX64"), "{dir}");
}

/// One QEMU at a time (TCG wants the cores).
static BOOTS: Mutex<()> = Mutex::new(());

fn kola(args: &[&str]) {
    let _g = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let b = built();
    let out = run(
        cosa(&b.wd)
            .args(["kola", "run", "basic", "--timeout", "400"])
            .args(args),
        true,
    );
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(so.contains("PASS: basic"), "{so}");
    let commit = b.meta["ostree-commit"].as_str().unwrap();
    assert!(so.contains(&commit[..12]), "{so}");
    eprintln!("{so}");
}

#[test]
fn boots_the_iso_under_uefi() {
    kola(&["--platform", "live-iso", "--firmware", "uefi"]);
}

#[test]
fn boots_the_iso_under_bios() {
    kola(&["--platform", "live-iso", "--firmware", "bios"]);
}

#[test]
fn boots_the_pxe_files() {
    kola(&["--platform", "live-pxe", "--firmware", "bios"]);
}

#[test]
fn kola_fails_when_there_are_no_live_media() {
    let b = built();
    let out = run(
        cosa(&b.wd).args([
            "kola",
            "run",
            "basic",
            "--platform",
            "live-iso",
            "--build",
            "no-such-build",
        ]),
        false,
    );
    assert!(stderr(&out).contains("no-such-build"), "{}", stderr(&out));
}

/// Boot the ISO as a disk (virtio-blk): the isohybrid MBR (BIOS) and GPT
/// EFI partition (UEFI) paths, which `kola` does not cover.
fn boot_iso_as_disk(uefi: bool) {
    let _g = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let b = built();
    let iso = artifact(b, "live-iso");
    let t = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=5", "400", "qemu-system-x86_64"])
        .args([
            "-accel", "tcg", "-machine", "q35", "-cpu", "max", "-smp", "2",
        ])
        .args(["-m", "1536", "-no-reboot", "-nic", "none"])
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
    if uefi {
        let vars = t.path().join("vars.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).unwrap();
        cmd.arg("-drive")
            .arg("if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd")
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ));
    }
    cmd.arg("-drive")
        .arg(format!(
            "if=none,id=d0,format=raw,snapshot=on,file={}",
            iso.display()
        ))
        .args(["-device", "virtio-blk-pci,drive=d0,bootindex=1"]);
    let started = std::time::Instant::now();
    let out = cmd.output().unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    let booted = cosa::testvm::parse_booted(&console).unwrap_or_else(|| {
        panic!(
            "no COSA-BOOTED line booting the ISO as a disk (uefi={uefi}):\n{}",
            cosa::testvm::tail(&console, 40)
        )
    });
    assert_eq!(booted.commit, b.meta["ostree-commit"].as_str().unwrap());
    assert!(
        booted.cmdline.contains("coreos.liveiso="),
        "{}",
        booted.cmdline
    );
    eprintln!(
        "ISO as a disk (uefi={uefi}) booted in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn boots_the_iso_as_a_disk_under_bios() {
    boot_iso_as_disk(false);
}

#[test]
fn boots_the_iso_as_a_disk_under_uefi() {
    boot_iso_as_disk(true);
}

/// The commit's bootupd EFI payload directory.
const EFI_PAYLOAD: &str = "/usr/lib/bootupd/updates/EFI";

/// The file `path` of the FAT image `img` (mtools' `mtype`).
fn fat_read(img: &Path, path: &str) -> Vec<u8> {
    sh_bytes(
        "mtype",
        Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(img)
            .arg(format!("::/{path}")),
    )
}

/// The file `inside` of the ISO `iso` (xorriso).
fn iso_read(iso: &Path, inside: &str, scratch: &Path) -> Vec<u8> {
    let out = scratch.join("iso-file");
    let _ = std::fs::remove_file(&out);
    sh(
        "xorriso -osirrox",
        Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(iso)
            .arg("-extract")
            .arg(inside)
            .arg(&out),
    );
    std::fs::read(&out).unwrap()
}

#[test]
fn efiboot_and_the_isos_efi_hold_the_commits_boot_loader() {
    let b = built();
    let iso = artifact(b, "live-iso");
    let commit = b.meta["ostree-commit"].as_str().unwrap();
    let label = cosa::image::live::volume_label(b.meta["name"].as_str().unwrap(), &b.id);
    let t = tempfile::tempdir().unwrap();
    let efiboot = t.path().join("efiboot.img");
    std::fs::write(&efiboot, iso_read(&iso, "/images/efiboot.img", t.path())).unwrap();

    // Where the tree's GRUB looks for grub.cfg, and what it has built in.
    let want = commit_files(&b.wd, commit, EFI_PAYLOAD);
    assert!(want.iter().any(|f| f == "BOOT/BOOTX64.EFI"), "{want:?}");
    let grub_rel = want
        .iter()
        .find(|f| f.ends_with("/grubx64.efi") && !f.starts_with("BOOT/"))
        .unwrap_or_else(|| panic!("no vendor grubx64.efi in {want:?}"));
    let grub = crate::esp::ostree_cat(&b.wd, commit, &format!("{EFI_PAYLOAD}/{grub_rel}"));
    let info = cosa::image::grub::read_image_info(&grub).unwrap();
    for m in ["fat", "iso9660", "search", "search_label", "configfile"] {
        assert!(
            info.modules.iter().any(|x| x == m),
            "{m}: {:?}",
            info.modules
        );
    }
    let prefix = info.prefix.clone().unwrap();
    let stub_rel = format!("{}/grub.cfg", prefix.trim_start_matches('/'));

    // efiboot.img: the commit's files byte for byte, plus the stub.
    let got = fat_files(&efiboot.display().to_string());
    let mut expected: Vec<String> = want.iter().map(|f| format!("EFI/{f}")).collect();
    expected.push(stub_rel.clone());
    expected.sort();
    assert_eq!(got, expected, "efiboot.img's files");
    for f in &want {
        let data = crate::esp::ostree_cat(&b.wd, commit, &format!("{EFI_PAYLOAD}/{f}"));
        assert!(
            fat_read(&efiboot, &format!("EFI/{f}")) == data,
            "efiboot.img's EFI/{f} differs from the commit's"
        );
        assert!(
            iso_read(&iso, &format!("/EFI/{f}"), t.path()) == data,
            "the ISO's /EFI/{f} differs from the commit's"
        );
    }
    // The stub finds the ISO by label and loads its grub.cfg.
    let stub = String::from_utf8(fat_read(&efiboot, &stub_rel)).unwrap();
    assert_eq!(stub, cosa::image::live::early_cfg(&label));
    assert!(
        stub.contains(&format!("search --no-floppy --label '{label}' --set root")),
        "{stub}"
    );
    assert!(
        stub.contains("configfile ($root)/boot/grub/grub.cfg"),
        "{stub}"
    );
    let on_iso = iso_read(&iso, &format!("/{stub_rel}"), t.path());
    assert_eq!(String::from_utf8(on_iso).unwrap(), stub);
}

#[test]
fn boots_the_iso_under_secure_boot() {
    // Through kola, which checks secureboot=1 and lockdown on the console.
    kola(&["--platform", "live-iso", "--secure-boot"]);
}

#[test]
fn secure_boot_of_the_pxe_files_is_refused() {
    let b = built();
    let out = run(
        cosa(&b.wd).args([
            "kola",
            "run",
            "basic",
            "--platform",
            "live-pxe",
            "--secure-boot",
        ]),
        false,
    );
    let e = stderr(&out);
    assert!(e.contains("shim") && e.contains("live-iso"), "{e}");
}
