//! `cosa buildextend-live`: the live ISO, PXE kernel, initramfs and rootfs
//! of an existing build (src/image/live.rs), recorded in its meta.json under
//! images.live-iso, live-kernel, live-initramfs and live-rootfs.

use anyhow::{Context, Result, ensure};

use crate::cli::{GlobalOpts, LiveOpts};
use crate::config::workdir::Workdir;
use crate::image::{self, ImageBuild, live};
use crate::store::builds::{self, BuildsJson};
use crate::store::lock::WorkdirLock;
use crate::store::meta::{self, Artifact, Meta};
use crate::util::{self, time};

pub fn buildextend_live(global: &GlobalOpts, opts: LiveOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    let _lock = WorkdirLock::acquire(&wd.root)?;
    let builds = BuildsJson::load(&wd.builds_dir())?;
    let arch = util::target_arch(opts.target.arch.as_deref())?;
    let id = builds.resolve(opts.target.build.as_deref())?;
    ensure!(
        builds.has_arch(&id, &arch),
        "build {id} has no {arch} part; `cosa list` shows the builds and their arches"
    );
    let builds_dir = wd.builds_dir();
    let build_dir = builds::build_dir(&builds_dir, &id, &arch);
    let meta_path = meta::meta_path(&builds_dir, &id, &arch);
    let m = Meta::read(&meta_path)?;
    for p in builds::remove_partial_artifacts(&build_dir, &m) {
        eprintln!("Removed leftover of an interrupted run: {}", p.display());
    }
    let repo = crate::ostree::Repo::open_or_init(&wd.repo_dir())?;
    crate::publish::oci::ensure_build_commit(&repo, &m, &build_dir)?;
    let scratch = image::scratch_dir(&wd.tmp_dir())?;
    let timestamp = time::parse_rfc3339(&m.ostree_timestamp).unwrap_or(0);
    let ostree_ref = m
        .ostree_ref
        .clone()
        .unwrap_or_else(|| m.ostree_commit.clone());
    let ostree_archive = m
        .images
        .get("ostree")
        .map(|a| a.path.clone())
        .unwrap_or_default();
    let made = live::build_live(&ImageBuild {
        repo: &repo,
        commit: &m.ostree_commit,
        name: &m.name,
        buildid: &id,
        ostree_ref: &ostree_ref,
        ostree_archive: &ostree_archive,
        arch: &arch,
        config_dir: &wd.config_dir(),
        build_dir: &build_dir,
        work: scratch.path(),
        timestamp,
    })
    .with_context(|| format!("making the live media of build {id} ({arch})"))?;
    // Re-read: the meta.json on disk is the truth, we only add images.
    let mut m = Meta::read(&meta_path)?;
    for (key, file) in &made.files {
        let (sha256, size) = crate::util::digest::sha256_file(&build_dir.join(file))?;
        let old = m.images.insert(
            key.clone(),
            Artifact {
                path: file.clone(),
                sha256,
                size: Some(size),
                // As upstream: the ISO and PXE files are shipped as they are.
                skip_compression: Some(true),
                ..Default::default()
            },
        );
        if let Some(old) = old
            && old.path != *file
        {
            let _ = std::fs::remove_file(build_dir.join(&old.path));
        }
    }
    m.write(&meta_path)?;
    for (key, file) in &made.files {
        eprintln!("Recorded images.{key} = {file}");
    }
    eprintln!(
        "Live media made in {:.1}s; ISO label {}, kernel arguments: {}",
        made.seconds,
        made.label,
        made.kargs.join(" ")
    );
    Ok(())
}

/// `cosa kola run basic --platform live-iso|live-pxe`: boot the ISO as a
/// CD-ROM (virtio-scsi, the firmware's El Torito boot) or the PXE kernel
/// with the initramfs and the rootfs appended (QEMU `-kernel`/`-initrd`,
/// as a PXE loader passes two initrds), and check the booted system reports
/// this build's commit and version, on metal, from the live media.
pub fn kola_basic(global: &GlobalOpts, opts: &crate::cli::KolaRunOpts) -> Result<()> {
    use crate::cli::Firmware;
    use crate::testvm;
    use std::process::Command;
    use std::time::Duration;

    let pxe = match opts.platform.as_str() {
        "live-iso" => false,
        "live-pxe" => true,
        other => anyhow::bail!("unknown live platform {other:?} (live-iso or live-pxe)"),
    };
    let wd = Workdir::open(&global.workdir)?;
    let builds = BuildsJson::load(&wd.builds_dir())?;
    let arch = util::target_arch(opts.target.arch.as_deref())?;
    ensure!(
        arch == "x86_64",
        "booting {arch} live media is not supported yet (x86_64 only)"
    );
    let id = builds.resolve(opts.target.build.as_deref())?;
    let build_dir = builds::build_dir(&wd.builds_dir(), &id, &arch);
    let m = Meta::read(&meta::meta_path(&wd.builds_dir(), &id, &arch))?;
    let file = |key: &str| -> Result<std::path::PathBuf> {
        let art = m.images.get(key).with_context(|| {
            format!("build {id} has no {key}; make the live media with `cosa buildextend-live`")
        })?;
        let p = build_dir.join(&art.path);
        ensure!(p.exists(), "{} is missing", p.display());
        Ok(p)
    };
    let scratch = image::scratch_dir(&wd.tmp_dir())?;
    let fw = match opts.firmware {
        Firmware::Uefi => "uefi",
        Firmware::Bios => "bios",
    };
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args([
        "-accel", "tcg", "-machine", "q35", "-cpu", "max", "-smp", "2",
    ])
    .args(["-m", "1536", "-no-reboot", "-nic", "none"])
    .args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
    if opts.firmware == Firmware::Uefi {
        let (code, vars) = testvm::ovmf()?;
        let my_vars = scratch.path().join("OVMF_VARS.fd");
        std::fs::copy(&vars, &my_vars)
            .with_context(|| format!("copying {} to {}", vars.display(), my_vars.display()))?;
        qemu.arg("-drive").arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            code.display()
        ));
        qemu.arg("-drive").arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            my_vars.display()
        ));
    }
    let what = if pxe {
        let kernel = file("live-kernel")?;
        let initramfs = file("live-initramfs")?;
        let rootfs = file("live-rootfs")?;
        let kargs = live::pxe_kargs(&wd.config_dir(), &arch, &m.name, &kernel, &initramfs)?;
        // QEMU takes one initrd for Linux: the two, the second on a 4-byte
        // boundary, as a boot loader lays them out.
        let both = scratch.path().join("initrd-with-rootfs.img");
        let mut data = std::fs::read(&initramfs)
            .with_context(|| format!("reading {}", initramfs.display()))?;
        data.resize(data.len().div_ceil(4) * 4, 0);
        data.extend(
            std::fs::read(&rootfs).with_context(|| format!("reading {}", rootfs.display()))?,
        );
        std::fs::write(&both, data).with_context(|| format!("writing {}", both.display()))?;
        qemu.arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(&both)
            .arg("-append")
            .arg(kargs.join(" "));
        format!("{} + initramfs + rootfs", kernel.display())
    } else {
        let iso = file("live-iso")?;
        qemu.args(["-device", "virtio-scsi-pci,id=scsi0"])
            .arg("-drive")
            .arg(format!(
                "if=none,id=cd0,media=cdrom,format=raw,readonly=on,file={}",
                iso.display()
            ))
            .args(["-device", "scsi-cd,drive=cd0,bus=scsi0.0,bootindex=1"]);
        format!("{} as a CD-ROM", iso.display())
    };
    let log = wd
        .tmp_dir()
        .join("kola")
        .join(format!("basic-{id}-{}-{fw}.log", opts.platform));
    eprintln!(
        "kola basic: booting {what} ({fw}, TCG, timeout {}s)",
        opts.timeout
    );
    let (console, elapsed) = testvm::run_capture(
        &qemu,
        "qemu-system-x86_64 (install Debian's qemu-system-x86)",
        &log,
        Duration::from_secs(opts.timeout),
    )?;
    let mut want = vec!["ignition.platform.id=metal".to_string()];
    if !pxe {
        want.push(format!(
            "coreos.liveiso={}",
            live::volume_label(&m.name, &id)
        ));
    }
    let boot = testvm::BasicBoot {
        build: &id,
        platform: &opts.platform,
        firmware: fw,
        secure_boot: false,
        console: &console,
        log: &log,
        elapsed,
    };
    println!(
        "{}",
        testvm::basic_verdict(&boot, &m.ostree_commit, &m.ostree_version, &want)?
    );
    Ok(())
}
