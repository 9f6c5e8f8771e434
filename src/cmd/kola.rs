//! `cosa kola run basic` and `cosa run`: boot a build's image in QEMU.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::cli::{Firmware, GlobalOpts, KolaRunOpts, RunOpts};
use crate::config::workdir::Workdir;
use crate::image;
use crate::store::builds::{self, BuildsJson};
use crate::store::meta::{self, Meta};
use crate::testvm::{self, Machine};
use crate::util;
use crate::util::cmd::CommandRunExt;

fn firmware_name(f: Firmware) -> &'static str {
    match f {
        Firmware::Uefi => "uefi",
        Firmware::Bios => "bios",
    }
}

/// The build's meta.json and the machine for its `platform` image.
fn machine_for(
    wd: &Workdir,
    build: Option<&str>,
    arch: Option<&str>,
    platform: &str,
    firmware: Firmware,
    memory_mib: u32,
    scratch: &std::path::Path,
) -> Result<(String, Meta, Machine)> {
    let builds = BuildsJson::load(&wd.builds_dir())?;
    let arch = util::target_arch(arch)?;
    let id = builds.resolve(build)?;
    let m = Meta::read(&meta::meta_path(&wd.builds_dir(), &id, &arch))?;
    let target = image::target(platform)?;
    let art = m.images.get(platform).with_context(|| {
        format!("build {id} has no {platform} image; make it with `cosa buildextend-{platform}`")
    })?;
    let disk = builds::build_dir(&wd.builds_dir(), &id, &arch).join(&art.path);
    ensure!(disk.exists(), "{} is missing", disk.display());
    if firmware == Firmware::Bios && target.sector != 512 {
        bail!(
            "{platform} has {}-byte sectors: boot it with --firmware uefi",
            target.sector
        );
    }
    // Compressed by `cosa compress`, not by its format (gcp's tar.gz,
    // powervs's ova.gz).
    let is_compressed = [".xz", ".zst", ".gz"]
        .iter()
        .any(|e| art.path.ends_with(e) && !target.ext.ends_with(e));
    if is_compressed {
        bail!("{} is compressed; run `cosa uncompress` first", art.path);
    }
    // Formats QEMU cannot attach directly are unpacked into scratch.
    let (disk, format) = match target.format {
        image::Format::GcpTarGz => {
            std::process::Command::new("tar")
                .arg("-xSzf")
                .arg(&disk)
                .arg("-C")
                .arg(scratch)
                .arg("disk.raw")
                .run_capture("unpacking disk.raw from the GCP tarball")?;
            (scratch.join("disk.raw"), "raw")
        }
        image::Format::PowervsOvaGz => {
            let raw = scratch.join("disk.raw");
            image::formats::unpack_powervs_disk(&disk, &raw)?;
            (raw, "raw")
        }
        image::Format::Ova { .. } => {
            std::process::Command::new("tar")
                .arg("-xf")
                .arg(&disk)
                .arg("-C")
                .arg(scratch)
                .arg("disk.vmdk")
                .run_capture("unpacking disk.vmdk from the OVA")?;
            (scratch.join("disk.vmdk"), "vmdk")
        }
        _ => (
            disk,
            target.qemu_format().with_context(|| {
                format!("cosa kola cannot boot {platform} artifacts; boot the qemu image instead")
            })?,
        ),
    };
    Ok((
        id,
        m,
        Machine {
            arch,
            media: testvm::Media::Disk {
                path: disk,
                format: format.to_string(),
                sector: target.sector,
            },
            firmware,
            secure_boot: false,
            ssh_port: None,
            ignition: None,
            memory_mib,
        },
    ))
}

/// `--secure-boot`: UEFI on x86_64 and aarch64.
fn with_secure_boot(mut machine: Machine, secure_boot: bool) -> Result<Machine> {
    if secure_boot {
        ensure!(
            machine.firmware == Firmware::Uefi,
            "--secure-boot boots with UEFI: drop --firmware bios"
        );
        ensure!(
            ["x86_64", "aarch64"].contains(&machine.arch.as_str()),
            "--secure-boot needs UEFI firmware with Secure Boot (OVMF on x86_64, AAVMF on \
             aarch64); this build is {}",
            machine.arch
        );
        machine.secure_boot = true;
    }
    Ok(machine)
}

pub fn run(global: &GlobalOpts, opts: KolaRunOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    let scratch = image::scratch_dir(&wd.tmp_dir())?;
    let (id, m, machine, want) = if opts.platform.starts_with("live-") {
        ensure!(
            !opts.secure_boot,
            "--secure-boot boots disk images; the live media carry the host's unsigned GRUB"
        );
        live_machine(&wd, &opts, scratch.path())?
    } else {
        let (id, m, machine) = machine_for(
            &wd,
            opts.target.build.as_deref(),
            opts.target.arch.as_deref(),
            &opts.platform,
            opts.firmware,
            1024,
            scratch.path(),
        )?;
        let platform_id = image::target(&opts.platform)?.ignition_id();
        let want = vec![format!("ignition.platform.id={platform_id}")];
        (id, m, with_secure_boot(machine, opts.secure_boot)?, want)
    };
    // s390x images boot by direct kernel boot (no zipl): no firmware;
    // ppc64le ones with SLOF, pseries' Open Firmware.
    let fw = match machine.arch.as_str() {
        "s390x" => "direct",
        "ppc64le" => "slof",
        _ if opts.secure_boot => "uefi-secure-boot",
        _ => firmware_name(opts.firmware),
    };
    let log = wd
        .tmp_dir()
        .join("kola")
        .join(format!("basic-{id}-{}-{fw}.log", opts.platform));
    eprintln!(
        "kola basic: booting {} ({fw}, TCG, timeout {}s)",
        machine.media.describe(),
        opts.timeout
    );
    let (console, elapsed) =
        machine.boot_capture(scratch.path(), &log, Duration::from_secs(opts.timeout))?;
    let boot = testvm::BasicBoot {
        build: &id,
        platform: &opts.platform,
        firmware: fw,
        secure_boot: opts.secure_boot,
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

/// `--platform live-iso|live-pxe`: the ISO as a CD-ROM, or the PXE kernel
/// with the initramfs and the rootfs appended as one initrd (QEMU's
/// `-kernel`/`-initrd`, laid out as a PXE loader passes two initrds); and
/// what the booted kernel command line must hold.
fn live_machine(
    wd: &Workdir,
    opts: &KolaRunOpts,
    scratch: &std::path::Path,
) -> Result<(String, Meta, Machine, Vec<String>)> {
    use crate::image::live;
    let pxe = match opts.platform.as_str() {
        "live-iso" => false,
        "live-pxe" => true,
        other => bail!("unknown live platform {other:?} (live-iso or live-pxe)"),
    };
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
    let mut want = vec!["ignition.platform.id=metal".to_string()];
    let media = if pxe {
        let kernel = file("live-kernel")?;
        let initramfs = file("live-initramfs")?;
        let append = live::pxe_kargs(&wd.config_dir(), &arch, &m.name, &kernel, &initramfs)?;
        let initrd = scratch.join("initrd-with-rootfs.img");
        testvm::concat_initrds(&[initramfs, file("live-rootfs")?], &initrd)?;
        testvm::Media::Kernel {
            kernel,
            initrd,
            append: append.join(" "),
        }
    } else {
        want.push(format!(
            "coreos.liveiso={}",
            live::volume_label(&m.name, &id)
        ));
        testvm::Media::Cdrom(file("live-iso")?)
    };
    let machine = Machine {
        arch,
        media,
        firmware: opts.firmware,
        secure_boot: false,
        ssh_port: None,
        ignition: None,
        memory_mib: 1536,
    };
    Ok((id, m, machine, want))
}

pub fn interactive(global: &GlobalOpts, opts: RunOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    let scratch = image::scratch_dir(&wd.tmp_dir())?;
    let (_, _, machine) = machine_for(
        &wd,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
        "qemu",
        opts.firmware,
        opts.memory,
        scratch.path(),
    )?;
    let machine = with_secure_boot(machine, opts.secure_boot)?;
    let mut cmd = machine.command(scratch.path(), true)?;
    eprintln!("Booting {} (Ctrl-a x quits)", machine.media.describe());
    let status = cmd
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}
