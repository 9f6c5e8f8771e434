//! Boot a disk image in QEMU (TCG: no KVM needed) with the serial console
//! captured, and read what the booted system reports. The sample OS's init
//! prints one line:
//!
//! `COSA-BOOTED version=<version> commit=<commit> secureboot=<0|1>
//! lockdown=<mode> cmdline=<kernel command line>`
//!
//! and its initramfs prints `COSA-BOOT-FAILED: <reason>` when it cannot
//! find or enter the deployment.
//!
//! Secure Boot: on x86_64 OVMF built with Secure Boot and SMM
//! (`OVMF_CODE_4M.secboot.fd`) with a per-boot copy of the variable store
//! that enrolls Microsoft's keys (`OVMF_VARS_4M.ms.fd`), on a q35 machine
//! with SMM and a secure flash; on aarch64 AAVMF with its Microsoft-keys
//! store (`AAVMF_VARS.ms.fd`). When the firmware or shim refuses a binary,
//! the console says so ([`SECURE_BOOT_REFUSALS`]) and the boot is stopped
//! there instead of running into the timeout.
//!
//! Per architecture: x86_64 boots the disk with OVMF or SeaBIOS (q35),
//! aarch64 with AAVMF (`virt`), ppc64le with SLOF, QEMU's Open Firmware
//! (`pseries`), which loads GRUB from the disk's PReP partition and whose
//! console is the hypervisor console `hvc0`, and s390x, whose disks have no zipl boot
//! record here, by direct kernel boot of the kernel, initramfs and options
//! that the image's own boot partition and BLS entry name (read with
//! debugfs), so the layout is what is tested.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::cli::Firmware;
use crate::config::kola::{DiskSpec, TestMeta};
use crate::util::cmd::CommandRunExt;

pub mod builtin;
pub mod ext;
pub mod guest;
pub mod harness;
pub mod ignition;
pub mod instance;
pub mod report;
pub mod serve;
pub mod ssh;

pub use instance::{Instance, free_port};

pub const BOOTED_MARKER: &str = "COSA-BOOTED ";
pub const FAILED_MARKER: &str = "COSA-BOOT-FAILED";

/// Console messages of a firmware or shim that refused to run a binary
/// under Secure Boot: OVMF's boot manager (`BdsDxe: failed to load Boot0001
/// ...: Access Denied`), shim (`Verification failed: (0x1A) Security
/// Violation`) and GRUB's shim_lock verifier (`bad shim signature`).
pub const SECURE_BOOT_REFUSALS: &[&str] =
    &["Access Denied", "Security Violation", "bad shim signature"];

/// What the booted system said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booted {
    pub version: String,
    pub commit: String,
    /// The `SecureBoot` EFI variable (None: an init that does not say).
    pub secure_boot: Option<bool>,
    /// The kernel's lockdown mode (`none`, `integrity`, `confidentiality`,
    /// `unsupported`; None: an init that does not say).
    pub lockdown: Option<String>,
    pub cmdline: String,
}

/// Find the `COSA-BOOTED` line in a console log.
pub fn parse_booted(console: &str) -> Option<Booted> {
    let line = console.lines().find_map(|l| {
        let i = l.find(BOOTED_MARKER)?;
        Some(
            l[i + BOOTED_MARKER.len()..]
                .trim_end_matches('\r')
                .to_string(),
        )
    })?;
    let rest = line.strip_prefix("version=")?;
    let (version, rest) = rest.split_once(" commit=")?;
    let (fields, cmdline) = rest.split_once(" cmdline=")?;
    let mut fields = fields.split(' ');
    let commit = fields.next()?;
    let (mut secure_boot, mut lockdown) = (None, None);
    for f in fields {
        match f.split_once('=')? {
            ("secureboot", v) => secure_boot = Some(v == "1"),
            ("lockdown", v) => lockdown = Some(v.to_string()),
            _ => {}
        }
    }
    Some(Booted {
        version: version.to_string(),
        commit: commit.to_string(),
        secure_boot,
        lockdown,
        cmdline: cmdline.trim().to_string(),
    })
}

/// What a [`Machine`] boots.
#[derive(Clone, Debug)]
pub enum Media {
    /// A disk image on virtio-blk (snapshot: the file is not written).
    Disk {
        path: PathBuf,
        /// `qcow2`, `raw`, `vmdk`...
        format: String,
        /// Logical sector size the disk is attached with.
        sector: u64,
    },
    /// An ISO as a CD-ROM on virtio-scsi (the firmware's El Torito boot).
    Cdrom(PathBuf),
    /// A kernel and initrd loaded by QEMU itself, as a PXE loader would.
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        append: String,
    },
}

impl Media {
    /// The medium for messages: the file booted.
    pub fn describe(&self) -> String {
        match self {
            Media::Disk { path, .. } => path.display().to_string(),
            Media::Cdrom(iso) => format!("{} as a CD-ROM", iso.display()),
            Media::Kernel { kernel, .. } => format!("{} + initrd", kernel.display()),
        }
    }
}

/// `path` as the value of a QEMU `file=` option: UTF-8 and without the
/// comma that would end it; errors name it as the `what` path.
fn qemu_path<'a>(path: &'a Path, what: &str) -> Result<&'a str> {
    let file = path
        .to_str()
        .with_context(|| format!("the {what} path {} is not UTF-8", path.display()))?;
    ensure!(
        !file.contains(','),
        "the {what} path {file} has a comma, which QEMU's options cannot carry"
    );
    Ok(file)
}

/// An empty disk a test asked for, made ([`MachineOptions::create_disks`])
/// and attached on virtio-blk after the boot medium.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraDisk {
    /// The qcow2 image.
    pub file: PathBuf,
    /// The guest sees `/dev/disk/by-id/virtio-<serial>`.
    pub serial: String,
    /// Physical and logical sector sizes in bytes (None: QEMU's 512).
    pub sectors: Option<(u32, u32)>,
}

impl ExtraDisk {
    /// Its `-drive` and `-device` arguments on `bus` (`pci` or `ccw`).
    /// The drive's id is made from the serial, which is unique per machine.
    pub fn qemu_args(&self, bus: &str) -> Result<Vec<String>> {
        let file = qemu_path(&self.file, "disk image")?;
        let id = format!("extra-{}", self.serial);
        let blocks = match self.sectors {
            Some((physical, logical)) => {
                format!(",physical_block_size={physical},logical_block_size={logical}")
            }
            None => String::new(),
        };
        // cache=unsafe as upstream: the disk is thrown away with the machine.
        Ok(vec![
            "-drive".into(),
            format!("if=none,id={id},format=qcow2,cache=unsafe,file={file}"),
            "-device".into(),
            format!("virtio-blk-{bus},drive={id},serial={}{blocks}", self.serial),
        ])
    }
}

/// What one test asks of its machine beyond the run's settings: upstream
/// kola's `minMemory` and `additionalDisks` metadata. Built-in tests, and
/// tests without those keys, get [`MachineOptions::default`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineOptions {
    /// MiB: the machine gets at least this much (`minMemory`).
    pub min_memory_mib: Option<u32>,
    /// Empty disks beside the boot disk, in order (`additionalDisks`).
    pub disks: Vec<DiskSpec>,
}

impl MachineOptions {
    /// The options in a test's metadata; errors name `origin` (the
    /// test's file) and the entry that is wrong.
    pub fn from_meta(meta: &TestMeta, origin: &str) -> Result<MachineOptions> {
        let disks = meta
            .additional_disks
            .iter()
            .map(|d| DiskSpec::parse(d).with_context(|| origin.to_string()))
            .collect::<Result<Vec<_>>>()?;
        let opts = MachineOptions {
            min_memory_mib: meta.min_memory,
            disks,
        };
        let serials = opts.serials();
        for (i, s) in serials.iter().enumerate() {
            ensure!(
                !serials[..i].contains(s),
                "{origin}: additionalDisks: two disks have serial {s}"
            );
        }
        Ok(opts)
    }

    /// The disks' serials: `serial=` or upstream's `disk1`, `disk2`...
    pub fn serials(&self) -> Vec<String> {
        self.disks
            .iter()
            .enumerate()
            .map(|(i, d)| d.serial.clone().unwrap_or_else(|| format!("disk{}", i + 1)))
            .collect()
    }

    /// The memory of the test's machine: the run's `run_mib`, or the
    /// test's `minMemory` when that is more (as upstream).
    pub fn memory_mib(&self, run_mib: u32) -> u32 {
        self.min_memory_mib.map_or(run_mib, |m| m.max(run_mib))
    }

    /// Make the disks as sparse qcow2 images in `dir` (`qemu-img create`);
    /// they go with the directory.
    pub fn create_disks(&self, dir: &Path) -> Result<Vec<ExtraDisk>> {
        self.disks
            .iter()
            .zip(self.serials())
            .map(|(d, serial)| {
                let file = dir.join(format!("{serial}.qcow2"));
                Command::new("qemu-img")
                    .args(["create", "-q", "-f", "qcow2"])
                    .arg(&file)
                    .arg(d.size.to_string())
                    .run_capture(&format!(
                        "qemu-img create of the {} byte disk {} (install Debian's qemu-utils)",
                        d.size,
                        file.display()
                    ))?;
                Ok(ExtraDisk {
                    file,
                    serial,
                    sectors: d.sectors,
                })
            })
            .collect()
    }

    /// `machine` as the test wants it: its memory raised to `minMemory`
    /// and `disks` (from [`MachineOptions::create_disks`]) attached.
    pub fn apply(&self, machine: &Machine, disks: Vec<ExtraDisk>) -> Machine {
        Machine {
            memory_mib: self.memory_mib(machine.memory_mib),
            disks,
            ..machine.clone()
        }
    }
}

/// What a console log says about a boot that went wrong, for an error
/// message: Ignition's errors (its own words) and the boot-failure line of
/// the initramfs, else the last lines. Empty when the log cannot be read.
pub fn console_excerpt(console: &Path) -> String {
    let Ok(data) = std::fs::read(console) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&data);
    let wanted: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains(FAILED_MARKER)
                || (l.contains("ignition") && (l.contains("CRITICAL") || l.contains("ERROR")))
        })
        .collect();
    let lines = if wanted.is_empty() {
        tail(&text, 15)
    } else {
        wanted.join("\n")
    };
    format!("\nconsole:\n{lines}")
}

/// Write `parts` one after the other into `out`, each starting on a 4-byte
/// boundary: how a boot loader lays out several initrds for Linux, which
/// QEMU's `-initrd` takes as one.
pub fn concat_initrds(parts: &[PathBuf], out: &Path) -> Result<()> {
    let mut data = Vec::new();
    for p in parts {
        data.resize(data.len().div_ceil(4) * 4, 0);
        data.extend(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?);
    }
    std::fs::write(out, data).with_context(|| format!("writing {}", out.display()))
}

/// A QEMU machine for one boot medium.
#[derive(Clone, Debug)]
pub struct Machine {
    pub arch: String,
    pub media: Media,
    pub firmware: Firmware,
    /// UEFI with Secure Boot enforced (x86_64: OVMF secboot, Microsoft keys).
    pub secure_boot: bool,
    pub memory_mib: u32,
    /// QEMU user-mode networking with this port of 127.0.0.1 forwarded
    /// to the guest's SSH port (None: no network card). A machine with
    /// SSH may reboot (tests reboot it); one without stops when the guest
    /// reboots (`-no-reboot`), as the console-only boots want.
    pub ssh_port: Option<u16>,
    /// The Ignition config the guest reads on first boot: QEMU's fw_cfg
    /// `opt/com.coreos/config` on x86_64 and aarch64; on s390x and
    /// ppc64le, which have no fw_cfg, a read-only virtio disk with serial
    /// `ignition` (Ignition's qemu provider reads either).
    pub ignition: Option<PathBuf>,
    /// Empty disks attached after the boot medium, on virtio-blk: a kola
    /// test's `additionalDisks` ([`MachineOptions::apply`]).
    pub disks: Vec<ExtraDisk>,
}

/// Where a machine's serial console goes.
#[derive(Clone, Debug)]
pub enum Console {
    /// This terminal, with QEMU's monitor on Ctrl-a (`cosa run`).
    Terminal,
    /// QEMU's stdout, for [`run_capture`].
    Stdout,
    /// A file, for a machine running in the background.
    File(PathBuf),
}

/// OVMF's code and variable store templates (Debian's `ovmf`).
pub fn ovmf() -> Result<(PathBuf, PathBuf)> {
    let pairs = [
        (
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/OVMF/OVMF_VARS_4M.fd",
        ),
        (
            "/usr/share/OVMF/OVMF_CODE.fd",
            "/usr/share/OVMF/OVMF_VARS.fd",
        ),
    ];
    for (c, v) in pairs {
        if Path::new(c).exists() && Path::new(v).exists() {
            return Ok((c.into(), v.into()));
        }
    }
    bail!("UEFI firmware not found in /usr/share/OVMF (install Debian's ovmf package)")
}

/// OVMF with Secure Boot: the SMM build's code and a variable store with
/// Microsoft's keys enrolled (Debian's `ovmf`), as a distribution's
/// Microsoft-signed shim expects on real machines.
pub fn ovmf_secure_boot() -> Result<(PathBuf, PathBuf)> {
    let (c, v) = (
        "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
    );
    if Path::new(c).exists() && Path::new(v).exists() {
        return Ok((c.into(), v.into()));
    }
    bail!("Secure Boot firmware {c} or {v} not found (install Debian's ovmf package)")
}

/// AAVMF's code and variable store templates (Debian's `qemu-efi-aarch64`);
/// with `secure_boot` the store with Microsoft's keys enrolled and Secure
/// Boot on (`AAVMF_VARS.ms.fd`: arm64 needs no SMM for it).
fn aavmf(secure_boot: bool) -> Result<(PathBuf, PathBuf)> {
    let (c, v) = if secure_boot {
        (
            "/usr/share/AAVMF/AAVMF_CODE.ms.fd",
            "/usr/share/AAVMF/AAVMF_VARS.ms.fd",
        )
    } else {
        (
            "/usr/share/AAVMF/AAVMF_CODE.fd",
            "/usr/share/AAVMF/AAVMF_VARS.fd",
        )
    };
    if Path::new(c).exists() && Path::new(v).exists() {
        return Ok((c.into(), v.into()));
    }
    bail!("UEFI firmware not found in /usr/share/AAVMF (install Debian's qemu-efi-aarch64 package)")
}

/// The QEMU system emulator for `arch` and the Debian package that has it.
pub fn qemu_system(arch: &str) -> Result<(&'static str, &'static str)> {
    Ok(match arch {
        "x86_64" => ("qemu-system-x86_64", "qemu-system-x86"),
        "aarch64" => ("qemu-system-aarch64", "qemu-system-arm"),
        "s390x" => ("qemu-system-s390x", "qemu-system-misc"),
        "ppc64le" => ("qemu-system-ppc64", "qemu-system-ppc"),
        other => bail!("no QEMU boot for {other} images (x86_64, aarch64, ppc64le, s390x)"),
    })
}

/// A kernel, initramfs and command line for QEMU's direct kernel boot.
#[derive(Clone, Debug)]
pub struct DirectBoot {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub append: String,
}

/// One `debugfs -R REQUEST` on the file system at `dev` (`file?offset=N`).
fn debugfs(dev: &str, request: &str) -> Result<String> {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(request)
        .arg(dev)
        .run_capture(&format!(
            "debugfs {request:?} on {dev} (install Debian's e2fsprogs)"
        ))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The byte offset of the partition called `name` in the raw GPT disk
/// `raw` (512- or 4096-byte sectors: the header is found at either).
pub fn partition_offset(raw: &Path, name: &str) -> Result<u64> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(raw).with_context(|| format!("opening {}", raw.display()))?;
    let read = |off: u64, len: usize| -> Result<Vec<u8>> {
        let mut b = vec![0u8; len];
        f.read_exact_at(&mut b, off)
            .with_context(|| format!("reading {len} bytes at {off} of {}", raw.display()))?;
        Ok(b)
    };
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |v, x| (v << 8) | *x as u64);
    for sector in [512u64, 4096] {
        let h = read(sector, 92)?;
        if &h[..8] != b"EFI PART" {
            continue;
        }
        let (entries_lba, count, size) = (le(&h[72..80]), le(&h[80..84]), le(&h[84..88]));
        ensure!(
            (128..=4096).contains(&size) && count <= 1024,
            "{}: implausible GPT entry table ({count} entries of {size} bytes)",
            raw.display()
        );
        let table = read(entries_lba * sector, (count * size) as usize)?;
        for e in table.chunks(size as usize) {
            let units: Vec<u16> = e[56..128]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|u| *u != 0)
                .collect();
            if e[..16].iter().any(|b| *b != 0) && String::from_utf16_lossy(&units) == name {
                return Ok(le(&e[32..40]) * sector);
            }
        }
        bail!("{} has no GPT partition named {name}", raw.display());
    }
    bail!("{} has no GPT", raw.display())
}

/// What the image's boot partition would boot: the last BLS entry in
/// `/loader/entries` and the kernel and initramfs it names, copied out of
/// the partition labelled `boot` with debugfs (qcow2 disks are converted
/// to a sparse raw copy in `scratch` first).
pub fn direct_boot_from_disk(disk: &Path, format: &str, scratch: &Path) -> Result<DirectBoot> {
    let raw = if format == "raw" {
        disk.to_path_buf()
    } else {
        let raw = scratch.join("disk.raw");
        Command::new("qemu-img")
            .args(["convert", "-f", format, "-O", "raw"])
            .arg(disk)
            .arg(&raw)
            .run_capture(&format!("converting {} to raw", disk.display()))?;
        raw
    };
    let offset = partition_offset(&raw, "boot")?;
    let dev = format!("{}?offset={offset}", raw.display());
    let ls = debugfs(&dev, "ls -p /loader/entries")?;
    // `ls -p` lines: /inode/mode/uid/gid/name/size/
    let entry = ls
        .lines()
        .filter_map(|l| l.split('/').nth(5))
        .filter(|n| n.ends_with(".conf"))
        .max()
        .with_context(|| {
            format!(
                "no BLS entry in /loader/entries of the boot partition of {}",
                disk.display()
            )
        })?
        .to_string();
    let text = debugfs(&dev, &format!("cat /loader/entries/{entry}"))?;
    let bls = crate::ostree::deploy::BlsEntry::parse(&text)
        .with_context(|| format!("reading BLS entry {entry} of {}", disk.display()))?;
    let dump = |from: &str, to: &str| -> Result<PathBuf> {
        let dest = scratch.join(to);
        debugfs(&dev, &format!("dump {from} {}", dest.display()))?;
        // debugfs reports a missing file on stderr and still exits 0.
        let len = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        ensure!(
            len > 0,
            "BLS entry {entry} names {from}, which is not in the boot partition of {}",
            disk.display()
        );
        Ok(dest)
    };
    Ok(DirectBoot {
        kernel: dump(&bls.linux, "vmlinuz")?,
        initrd: bls
            .initrd
            .as_deref()
            .map(|i| dump(i, "initramfs.img"))
            .transpose()?,
        append: bls.options,
    })
}

impl Machine {
    /// The QEMU command line with the console on this terminal
    /// (`interactive`) or on stdout; see [`Machine::command_with`].
    pub fn command(&self, scratch: &Path, interactive: bool) -> Result<Command> {
        self.command_with(
            scratch,
            if interactive {
                Console::Terminal
            } else {
                Console::Stdout
            },
        )
    }

    /// The network card and Ignition config arguments (none without
    /// [`Machine::ssh_port`] and [`Machine::ignition`]).
    pub fn guest_args(&self) -> Result<Vec<String>> {
        let mut a = Vec::new();
        match self.ssh_port {
            // The forward listens on 127.0.0.1 only: nothing outside this
            // host reaches the guest's sshd.
            Some(port) => a.extend([
                "-nic".to_string(),
                format!("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:22"),
            ]),
            None => a.extend(["-nic".to_string(), "none".into(), "-no-reboot".into()]),
        }
        if let Some(config) = &self.ignition {
            let file = qemu_path(config, "Ignition config")?;
            match self.arch.as_str() {
                "x86_64" | "aarch64" => a.extend([
                    "-fw_cfg".to_string(),
                    format!("name=opt/com.coreos/config,file={file}"),
                ]),
                "s390x" | "ppc64le" => {
                    let bus = if self.arch == "s390x" { "ccw" } else { "pci" };
                    a.extend([
                        "-drive".to_string(),
                        format!("if=none,id=ignition,format=raw,readonly=on,file={file}"),
                        "-device".into(),
                        format!("virtio-blk-{bus},serial=ignition,drive=ignition"),
                    ]);
                }
                other => bail!("no way to pass an Ignition config to a {other} machine"),
            }
        }
        Ok(a)
    }

    /// The QEMU command line. `scratch` holds the UEFI variable store copy
    /// (and, for s390x, the kernel and initramfs read from the disk).
    pub fn command_with(&self, scratch: &Path, console: Console) -> Result<Command> {
        let (qemu, _) = qemu_system(&self.arch)?;
        let mut cmd = Command::new(qemu);
        ensure!(
            !self.secure_boot
                || (["x86_64", "aarch64"].contains(&self.arch.as_str())
                    && self.firmware == Firmware::Uefi),
            "Secure Boot needs UEFI on x86_64 (OVMF) or aarch64 (AAVMF); this is {} with {:?}",
            self.arch,
            self.firmware
        );
        let (machine, cpu, bus, firmware) = match self.arch.as_str() {
            // SMM keeps the variable store out of the OS's reach, which
            // OVMF's Secure Boot build requires.
            "x86_64" if self.secure_boot => ("q35,smm=on", "max", "pci", Some(ovmf_secure_boot()?)),
            "x86_64" => (
                "q35",
                "max",
                "pci",
                (self.firmware == Firmware::Uefi).then(ovmf).transpose()?,
            ),
            "aarch64" => {
                ensure!(
                    self.firmware == Firmware::Uefi,
                    "aarch64 images boot with UEFI only (AAVMF)"
                );
                ("virt", "max", "pci", Some(aavmf(self.secure_boot)?))
            }
            // SLOF is pseries' built-in firmware; the spectre/meltdown
            // capabilities are off because TCG does not emulate them.
            "ppc64le" => {
                ensure!(
                    self.firmware != Firmware::Bios,
                    "ppc64le images boot with SLOF (Open Firmware), not a BIOS"
                );
                (
                    "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off",
                    "power9",
                    "pci",
                    None,
                )
            }
            _ => ("s390-ccw-virtio", "max", "ccw", None),
        };
        cmd.args([
            "-accel", "tcg", "-machine", machine, "-cpu", cpu, "-smp", "2",
        ])
        .arg("-m")
        .arg(self.memory_mib.to_string())
        .args(self.guest_args()?);
        if self.arch == "ppc64le" {
            // Without a graphics card SLOF, and so GRUB, use the hypervisor
            // console (QEMU's serial port) instead of the screen.
            cmd.args(["-vga", "none"]);
        }
        if self.secure_boot && self.arch == "x86_64" {
            cmd.args(["-global", "driver=cfi.pflash01,property=secure,value=on"]);
        }
        if let Some((code, vars)) = firmware {
            let my_vars = scratch.join("UEFI_VARS.fd");
            std::fs::copy(&vars, &my_vars)
                .with_context(|| format!("copying {} to {}", vars.display(), my_vars.display()))?;
            cmd.arg("-drive").arg(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                code.display()
            ));
            cmd.arg("-drive").arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                my_vars.display()
            ));
        }
        self.media_args(&mut cmd, scratch, bus)?;
        for d in &self.disks {
            cmd.args(d.qemu_args(bus)?);
        }
        match console {
            Console::Terminal => {
                cmd.args(["-nographic", "-serial", "mon:stdio"]);
            }
            Console::Stdout => {
                cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
            }
            Console::File(log) => {
                let log = log.to_str().with_context(|| {
                    format!("the console log path {} is not UTF-8", log.display())
                })?;
                cmd.args(["-display", "none", "-monitor", "none", "-serial"])
                    .arg(format!("file:{log}"));
            }
        }
        Ok(cmd)
    }

    /// The arguments that attach the boot medium (for s390x, the direct
    /// boot of the disk's kernel, read into `scratch`) on `bus`.
    fn media_args(&self, cmd: &mut Command, scratch: &Path, bus: &str) -> Result<()> {
        match &self.media {
            Media::Disk {
                path,
                format,
                sector,
            } => {
                if self.arch == "s390x" {
                    let d = direct_boot_from_disk(path, format, scratch)?;
                    cmd.arg("-kernel").arg(&d.kernel);
                    if let Some(i) = &d.initrd {
                        cmd.arg("-initrd").arg(i);
                    }
                    cmd.arg("-append").arg(&d.append);
                }
                cmd.arg("-drive").arg(format!(
                    "if=none,id=disk0,format={format},snapshot=on,file={}",
                    path.display()
                ));
                // s390x: a bootindex would make QEMU IPL the disk instead of -kernel.
                let bootindex = if self.arch == "s390x" {
                    ""
                } else {
                    ",bootindex=1"
                };
                cmd.arg("-device").arg(format!(
                    "virtio-blk-{bus},drive=disk0{bootindex},logical_block_size={sector},physical_block_size={sector}"
                ));
            }
            Media::Cdrom(iso) => {
                cmd.args(["-device", "virtio-scsi-pci,id=scsi0"])
                    .arg("-drive")
                    .arg(format!(
                        "if=none,id=cd0,media=cdrom,format=raw,readonly=on,file={}",
                        iso.display()
                    ))
                    .args(["-device", "scsi-cd,drive=cd0,bus=scsi0.0,bootindex=1"]);
            }
            Media::Kernel {
                kernel,
                initrd,
                append,
            } => {
                cmd.arg("-kernel")
                    .arg(kernel)
                    .arg("-initrd")
                    .arg(initrd)
                    .arg("-append")
                    .arg(append);
            }
        }
        Ok(())
    }

    /// Boot until the guest powers off or `timeout` passes; returns the
    /// serial console output (also written to `log`).
    pub fn boot_capture(
        &self,
        scratch: &Path,
        log: &Path,
        timeout: Duration,
    ) -> Result<(String, Duration)> {
        let (bin, pkg) = qemu_system(&self.arch)?;
        run_capture(
            &self.command(scratch, false)?,
            &format!("{bin} (install Debian's {pkg})"),
            log,
            timeout,
        )
    }
}

/// Run the non-interactive QEMU command `qemu` (serial console on stdout)
/// until the guest powers off or `timeout` passes, then kill it; returns
/// the console output, also written to `log`, and the time it ran. `what`
/// names the program in the error when it cannot start. A console that
/// shows a Secure Boot refusal ([`SECURE_BOOT_REFUSALS`]) stops the
/// machine a few seconds later: the firmware would only wait in its menu.
pub fn run_capture(
    qemu: &Command,
    what: &str,
    log: &Path,
    timeout: Duration,
) -> Result<(String, Duration)> {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    /// Time the console keeps running after a refusal, for its context.
    const GRACE: Duration = Duration::from_secs(3);
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=5")
        .arg(timeout.as_secs().max(1).to_string())
        .arg(qemu.get_program())
        .args(qemu.get_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let out = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let out = Arc::clone(&out);
        let mut stdout = child.stdout.take().context("QEMU's stdout")?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().map(|mut o| o.extend_from_slice(&buf[..n])).ok();
            }
        })
    };
    let err_reader = {
        let mut stderr = child.stderr.take().context("QEMU's stderr")?;
        std::thread::spawn(move || {
            let mut e = Vec::new();
            let _ = stderr.read_to_end(&mut e);
            e
        })
    };
    let mut refused_at: Option<Instant> = None;
    let status = loop {
        if let Some(st) = child.try_wait().context("waiting for QEMU")? {
            break st;
        }
        if refused_at.is_none() {
            let o = out.lock().map(|o| o.clone()).unwrap_or_default();
            let text = String::from_utf8_lossy(&o);
            if SECURE_BOOT_REFUSALS.iter().any(|p| text.contains(p)) {
                refused_at = Some(Instant::now());
            }
        }
        if refused_at.is_some_and(|t| t.elapsed() >= GRACE) {
            // timeout(1) passes TERM on to QEMU.
            // SAFETY: kill(2) on the pid of our own child, not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            break child.wait().context("waiting for QEMU")?;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let elapsed = started.elapsed();
    let _ = reader.join();
    let stderr = err_reader.join().unwrap_or_default();
    let stdout = out.lock().map(|o| o.clone()).unwrap_or_default();
    let console = String::from_utf8_lossy(&stdout).into_owned();
    if let Some(d) = log.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::write(log, &stdout).with_context(|| format!("writing {}", log.display()))?;
    // timeout's status when it had to stop QEMU (TERM, then KILL), or ours.
    let stopped = refused_at.is_some() || matches!(status.code(), Some(124) | Some(137));
    if !stopped && !status.success() {
        bail!(
            "QEMU failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok((console, elapsed))
}

/// One `kola basic` boot, for its verdict.
pub struct BasicBoot<'a> {
    pub build: &'a str,
    pub platform: &'a str,
    /// The firmware, as the log name and messages say it (bios, uefi, direct).
    pub firmware: &'a str,
    /// Secure Boot was enforced: the system must say it is on, with the
    /// kernel locked down.
    pub secure_boot: bool,
    pub console: &'a str,
    pub log: &'a Path,
    pub elapsed: Duration,
}

/// The `kola basic` verdict of `boot` (see [`check_booted`]): the PASS line
/// to print, or an error with what differed and the end of the console.
pub fn basic_verdict(
    boot: &BasicBoot,
    commit: &str,
    version: &str,
    kargs: &[String],
) -> Result<String> {
    let b = check_booted(boot.console, boot.elapsed, commit, version, kargs)
        .and_then(|b| {
            if boot.secure_boot {
                check_secure_boot(&b)?;
            }
            Ok(b)
        })
        .map_err(|why| {
        anyhow::anyhow!(
            "kola basic FAILED on {} {} ({}): {why}\n--- console (last 40 lines; full log {}) ---\n{}",
            boot.build,
            boot.platform,
            boot.firmware,
            boot.log.display(),
            tail(boot.console, 40)
        )
    })?;
    let sb = if boot.secure_boot {
        format!(
            " with Secure Boot on, lockdown {}",
            b.lockdown.as_deref().unwrap_or("?")
        )
    } else {
        String::new()
    };
    Ok(format!(
        "PASS: basic ({} {}) booted {} commit {}{sb} in {:.1}s",
        boot.platform,
        boot.firmware,
        b.version,
        &b.commit[..12.min(b.commit.len())],
        boot.elapsed.as_secs_f64()
    ))
}

/// A Secure Boot run must report Secure Boot on and the kernel locked down
/// (Debian's kernels lock down to `integrity` when booted that way).
pub fn check_secure_boot(b: &Booted) -> std::result::Result<(), String> {
    match b.secure_boot {
        Some(true) => {}
        Some(false) => {
            return Err(
                "the system booted but says Secure Boot is off (SecureBoot EFI variable 0)".into(),
            );
        }
        None => return Err("the booted system does not report Secure Boot (secureboot=)".into()),
    }
    match b.lockdown.as_deref() {
        Some("integrity") | Some("confidentiality") => Ok(()),
        other => Err(format!(
            "Secure Boot is on but the kernel is not locked down (lockdown={})",
            other.unwrap_or("not reported")
        )),
    }
}

/// The console line where the firmware, shim or GRUB refused a binary
/// under Secure Boot, if any.
pub fn secure_boot_refusal(console: &str) -> Option<&str> {
    console
        .lines()
        .find(|l| SECURE_BOOT_REFUSALS.iter().any(|p| l.contains(p)))
        .map(|l| l.trim())
}

/// The verdict of a `basic` boot: the booted system must report `commit`
/// and `version`, and its command line must carry every one of `kargs`.
/// The error says what differed (the caller adds the console).
pub fn check_booted(
    console: &str,
    elapsed: std::time::Duration,
    commit: &str,
    version: &str,
    kargs: &[String],
) -> std::result::Result<Booted, String> {
    let Some(b) = parse_booted(console) else {
        if let Some(l) = console.lines().find(|l| l.contains(FAILED_MARKER)) {
            return Err(format!("the initramfs failed: {}", l.trim()));
        }
        if let Some(l) = secure_boot_refusal(console) {
            return Err(format!(
                "Secure Boot refused to run the boot loader or kernel: {l:?} (is every binary \
                 in the chain signed with a key the firmware or shim trusts?)"
            ));
        }
        return Err(format!(
            "no COSA-BOOTED line on the console after {:.0}s",
            elapsed.as_secs_f64()
        ));
    };
    if b.commit != commit {
        return Err(format!(
            "booted commit {} is not this build's {commit}",
            b.commit
        ));
    }
    if b.version != version {
        return Err(format!(
            "booted version {} is not this build's {version}",
            b.version
        ));
    }
    let args: Vec<&str> = b.cmdline.split_whitespace().collect();
    if let Some(k) = kargs.iter().find(|k| !args.contains(&k.as_str())) {
        return Err(format!("the kernel command line lacks {k}: {}", b.cmdline));
    }
    Ok(b)
}

/// The last `n` lines of a console log, for error messages.
pub fn tail(console: &str, n: usize) -> String {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_booted_line() {
        let log = "junk\r\n[    1.0] x\r\nCOSA-BOOTED version=1.20260101.dev.0 commit=abc cmdline=rw ignition.platform.id=qemu ostree=/ostree/boot.1/x/y/0\r\nreboot: Power down\r\n";
        let b = parse_booted(log).unwrap();
        assert_eq!(b.version, "1.20260101.dev.0");
        assert_eq!(b.commit, "abc");
        assert_eq!(
            b.cmdline,
            "rw ignition.platform.id=qemu ostree=/ostree/boot.1/x/y/0"
        );
        assert_eq!((b.secure_boot, b.lockdown.as_deref()), (None, None));
        let b = parse_booted(
            "COSA-BOOTED version=1 commit=abc secureboot=1 lockdown=integrity cmdline=a b\r\n",
        )
        .unwrap();
        assert_eq!(
            (b.commit.as_str(), b.secure_boot, b.lockdown.as_deref()),
            ("abc", Some(true), Some("integrity"))
        );
        assert_eq!(b.cmdline, "a b");
        assert_eq!(check_secure_boot(&b), Ok(()));
        let off = Booted {
            secure_boot: Some(false),
            ..b.clone()
        };
        assert!(
            check_secure_boot(&off)
                .unwrap_err()
                .contains("Secure Boot is off")
        );
        let open = Booted {
            lockdown: Some("none".into()),
            ..b
        };
        assert!(
            check_secure_boot(&open)
                .unwrap_err()
                .contains("lockdown=none")
        );
        assert!(parse_booted("COSA-BOOT-FAILED: no root\n").is_none());
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
    }

    fn machine(arch: &str) -> Machine {
        Machine {
            arch: arch.into(),
            media: Media::Kernel {
                kernel: "/k".into(),
                initrd: "/i".into(),
                append: "x".into(),
            },
            firmware: Firmware::Bios,
            secure_boot: false,
            memory_mib: 512,
            ssh_port: None,
            ignition: None,
            disks: Vec::new(),
        }
    }

    #[test]
    fn testvm_network_and_ignition_arguments() {
        // Console boots: no network, a reboot ends QEMU.
        assert_eq!(
            machine("x86_64").guest_args().unwrap(),
            ["-nic", "none", "-no-reboot"]
        );
        let m = Machine {
            ssh_port: Some(2222),
            ignition: Some("/w/tmp/kola/t/config.ign".into()),
            ..machine("x86_64")
        };
        let a = m.guest_args().unwrap();
        assert_eq!(
            a,
            [
                "-nic",
                "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:2222-:22",
                "-fw_cfg",
                "name=opt/com.coreos/config,file=/w/tmp/kola/t/config.ign",
            ]
        );
        // Forwarded from the loopback address only, and reboots allowed.
        let fwd = a.iter().find(|x| x.contains("hostfwd")).unwrap();
        assert_eq!(fwd.matches("hostfwd=tcp:127.0.0.1:").count(), 1);
        assert!(!a.iter().any(|x| x == "-no-reboot"));
        // The whole command line carries them once.
        let t = tempfile::tempdir().unwrap();
        let cmd = m
            .command_with(t.path(), Console::File(t.path().join("c.txt")))
            .unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args.iter().filter(|x| *x == "-nic").count(), 1, "{args:?}");
        assert!(
            args.windows(2).any(|w| w[0] == "-serial"
                && w[1] == format!("file:{}", t.path().join("c.txt").display()))
        );
        let aarch64 = Machine {
            ssh_port: None,
            ..m.clone()
        };
        assert!(
            aarch64
                .guest_args()
                .unwrap()
                .contains(&"-fw_cfg".to_string())
        );
        // No fw_cfg on s390x and ppc64le: a virtio disk with serial ignition.
        for (arch, dev) in [("s390x", "virtio-blk-ccw"), ("ppc64le", "virtio-blk-pci")] {
            let m = Machine {
                arch: arch.into(),
                ..m.clone()
            };
            let a = m.guest_args().unwrap();
            assert!(!a.contains(&"-fw_cfg".to_string()), "{a:?}");
            assert!(
                a.contains(
                    &"if=none,id=ignition,format=raw,readonly=on,file=/w/tmp/kola/t/config.ign"
                        .to_string()
                ),
                "{a:?}"
            );
            assert!(
                a.contains(&format!("{dev},serial=ignition,drive=ignition")),
                "{a:?}"
            );
        }
        let comma = Machine {
            ignition: Some("/a,b.ign".into()),
            ..m
        };
        assert!(format!("{:#}", comma.guest_args().unwrap_err()).contains("comma"));
    }

    fn args_of(m: &Machine, scratch: &Path) -> Vec<String> {
        m.command_with(scratch, Console::Stdout)
            .unwrap()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn testvm_extra_disks_and_memory_of_a_test() {
        let meta = TestMeta {
            min_memory: Some(3072),
            additional_disks: vec!["5G".into(), "1G:4k".into(), "2G:serial=data,512e".into()],
            ..TestMeta::default()
        };
        let opts = MachineOptions::from_meta(&meta, "tests/kola/disks/test.sh").unwrap();
        assert_eq!(opts.serials(), ["disk1", "disk2", "data"]);
        // The larger of the run's memory and minMemory.
        assert_eq!(opts.memory_mib(1024), 3072);
        assert_eq!(opts.memory_mib(4096), 4096);
        assert_eq!(MachineOptions::default().memory_mib(1024), 1024);

        let t = tempfile::tempdir().unwrap();
        let disks = opts.create_disks(t.path()).unwrap();
        assert_eq!(disks[1].file, t.path().join("disk2.qcow2"));
        // Sparse: a 5 GiB image takes a few KiB.
        let len = std::fs::metadata(&disks[0].file).unwrap().len();
        assert!(len < 1 << 20, "{len}");
        let base = Machine {
            media: Media::Disk {
                path: "/w/disk.qcow2".into(),
                format: "qcow2".into(),
                sector: 512,
            },
            ..machine("x86_64")
        };
        let m = opts.apply(&base, disks);
        assert_eq!(m.disks.len(), 3);
        let args = args_of(&m, t.path());
        assert!(args.windows(2).any(|w| w == ["-m", "3072"]), "{args:?}");
        let file = |n: &str| t.path().join(n).display().to_string();
        let want = [
            format!(
                "if=none,id=extra-disk1,format=qcow2,cache=unsafe,file={}",
                file("disk1.qcow2")
            ),
            "virtio-blk-pci,drive=extra-disk1,serial=disk1".into(),
            format!(
                "if=none,id=extra-disk2,format=qcow2,cache=unsafe,file={}",
                file("disk2.qcow2")
            ),
            "virtio-blk-pci,drive=extra-disk2,serial=disk2,physical_block_size=4096,\
             logical_block_size=4096"
                .into(),
            format!(
                "if=none,id=extra-data,format=qcow2,cache=unsafe,file={}",
                file("data.qcow2")
            ),
            "virtio-blk-pci,drive=extra-data,serial=data,physical_block_size=4096,\
             logical_block_size=512"
                .into(),
        ];
        // After the boot disk, in order, and the boot disk is unchanged.
        let boot = args.iter().position(|a| a.contains("id=disk0")).unwrap();
        let first = args.iter().position(|a| *a == want[0]).unwrap();
        assert!(boot < first, "{args:?}");
        assert_eq!(args[first - 1], "-drive");
        for (i, w) in want.iter().enumerate() {
            assert_eq!(&args[first + 2 * i], w, "{args:?}");
        }
        assert!(args.contains(&"virtio-blk-pci,drive=disk0,bootindex=1,logical_block_size=512,physical_block_size=512".to_string()));

        // s390x puts them on the channel subsystem.
        let a = ExtraDisk {
            file: "/s/disk1.qcow2".into(),
            serial: "disk1".into(),
            sectors: None,
        }
        .qemu_args("ccw")
        .unwrap();
        assert_eq!(a[3], "virtio-blk-ccw,drive=extra-disk1,serial=disk1");

        // A test without the keys: the run's machine as it is.
        let plain = MachineOptions::default().apply(&base, Vec::new());
        assert_eq!(args_of(&plain, t.path()), args_of(&base, t.path()));
    }

    #[test]
    fn testvm_bad_disk_metadata_names_the_test() {
        let bad = |disks: &[&str]| {
            let meta = TestMeta {
                additional_disks: disks.iter().map(|d| d.to_string()).collect(),
                ..TestMeta::default()
            };
            format!(
                "{:#}",
                MachineOptions::from_meta(&meta, "tests/kola/mp/test.sh").unwrap_err()
            )
        };
        let e = bad(&["5G", "5G:mpath"]);
        assert!(
            e.starts_with("tests/kola/mp/test.sh: ")
                && e.contains("\"5G:mpath\"")
                && e.contains("mpath"),
            "{e}"
        );
        let e = bad(&["five"]);
        assert!(
            e.contains("tests/kola/mp/test.sh") && e.contains("\"five\""),
            "{e}"
        );
        let e = bad(&["1G", "1G:serial=disk1"]);
        assert!(
            e.contains("tests/kola/mp/test.sh") && e.contains("two disks have serial disk1"),
            "{e}"
        );
        let comma = ExtraDisk {
            file: "/a,b/disk1.qcow2".into(),
            serial: "disk1".into(),
            sectors: None,
        };
        assert!(format!("{:#}", comma.qemu_args("pci").unwrap_err()).contains("comma"));
    }

    #[test]
    fn a_secure_boot_refusal_is_named() {
        let console = "BdsDxe: loading Boot0001 \"UEFI Misc Device\"\r\n\
            BdsDxe: failed to load Boot0001 \"UEFI Misc Device\" from PciRoot(0x0): Access Denied\r\n";
        let e = check_booted(console, Duration::from_secs(9), "c", "v", &[]).unwrap_err();
        assert!(
            e.contains("Secure Boot refused") && e.contains("Access Denied"),
            "{e}"
        );
        let e = check_booted("nothing\n", Duration::from_secs(9), "c", "v", &[]).unwrap_err();
        assert!(e.contains("no COSA-BOOTED line"), "{e}");
    }

    #[test]
    fn partitions_are_found_by_name_in_either_sector_size() {
        use crate::image::{gpt, layout::Layout};
        let t = tempfile::tempdir().unwrap();
        for sector in [512u64, 4096] {
            let l = Layout::new("s390x", sector, None, 64 << 20).unwrap();
            let disk = t.path().join(format!("{sector}.raw"));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&disk)
                .unwrap();
            f.set_len(l.total).unwrap();
            let parts = l.gpt_partitions("seed").unwrap();
            gpt::write(
                &f,
                sector,
                l.total / sector,
                gpt::Guid::derived("d"),
                &parts,
            )
            .unwrap();
            for name in ["boot", "root"] {
                let want = l.parts.iter().find(|p| p.name == name).unwrap().offset;
                assert_eq!(
                    partition_offset(&disk, name).unwrap(),
                    want,
                    "{sector} {name}"
                );
            }
            let e = partition_offset(&disk, "EFI-SYSTEM").unwrap_err();
            assert!(
                format!("{e:#}").contains("no GPT partition named EFI-SYSTEM"),
                "{e:#}"
            );
        }
        let blank = t.path().join("blank.raw");
        std::fs::write(&blank, vec![0u8; 8192]).unwrap();
        let e = partition_offset(&blank, "boot").unwrap_err();
        assert!(format!("{e:#}").contains("has no GPT"), "{e:#}");
    }
}
