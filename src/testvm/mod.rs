//! Boot a disk image in QEMU (TCG: no KVM needed) with the serial console
//! captured, and read what the booted system reports. The sample OS's init
//! prints one line:
//!
//! `COSA-BOOTED version=<version> commit=<commit> cmdline=<kernel command line>`
//!
//! and its initramfs prints `COSA-BOOT-FAILED: <reason>` when it cannot
//! find or enter the deployment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::Firmware;

pub const BOOTED_MARKER: &str = "COSA-BOOTED ";
pub const FAILED_MARKER: &str = "COSA-BOOT-FAILED";

/// What the booted system said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booted {
    pub version: String,
    pub commit: String,
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
    let (commit, cmdline) = rest.split_once(" cmdline=")?;
    Some(Booted {
        version: version.to_string(),
        commit: commit.to_string(),
        cmdline: cmdline.trim().to_string(),
    })
}

/// A QEMU machine for one disk.
#[derive(Clone, Debug)]
pub struct Machine {
    pub arch: String,
    pub disk: PathBuf,
    /// `qcow2` or `raw`.
    pub format: String,
    /// Logical sector size the disk is attached with.
    pub sector: u64,
    pub firmware: Firmware,
    pub memory_mib: u32,
}

/// OVMF's code and variable store templates (Debian's `ovmf`).
fn ovmf() -> Result<(PathBuf, PathBuf)> {
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

impl Machine {
    /// The QEMU command line. `scratch` holds the UEFI variable store copy.
    pub fn command(&self, scratch: &Path, interactive: bool) -> Result<Command> {
        if self.arch != "x86_64" {
            bail!(
                "booting {} images is not supported yet (x86_64 only)",
                self.arch
            );
        }
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-accel", "tcg", "-machine", "q35", "-cpu", "max", "-smp", "2",
        ])
        .arg("-m")
        .arg(self.memory_mib.to_string())
        .arg("-no-reboot")
        .args(["-nic", "none"]);
        if self.firmware == Firmware::Uefi {
            let (code, vars) = ovmf()?;
            let my_vars = scratch.join("OVMF_VARS.fd");
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
        cmd.arg("-drive").arg(format!(
            "if=none,id=disk0,format={},snapshot=on,file={}",
            self.format,
            self.disk.display()
        ));
        cmd.arg("-device").arg(format!(
            "virtio-blk-pci,drive=disk0,bootindex=1,logical_block_size={0},physical_block_size={0}",
            self.sector
        ));
        if interactive {
            cmd.args(["-nographic", "-serial", "mon:stdio"]);
        } else {
            cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
        }
        Ok(cmd)
    }

    /// Boot until the guest powers off or `timeout` passes; returns the
    /// serial console output (also written to `log`).
    pub fn boot_capture(
        &self,
        scratch: &Path,
        log: &Path,
        timeout: Duration,
    ) -> Result<(String, Duration)> {
        let qemu = self.command(scratch, false)?;
        let mut cmd = Command::new("timeout");
        cmd.arg("--kill-after=5")
            .arg(timeout.as_secs().max(1).to_string())
            .arg(qemu.get_program())
            .args(qemu.get_args());
        let started = Instant::now();
        let out = cmd
            .output()
            .context("starting qemu-system-x86_64 (install Debian's qemu-system-x86)")?;
        let elapsed = started.elapsed();
        let console = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(d) = log.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        std::fs::write(log, &out.stdout).with_context(|| format!("writing {}", log.display()))?;
        if out.status.code() == Some(124) || out.status.code() == Some(137) {
            return Ok((console, elapsed));
        }
        if !out.status.success() {
            bail!(
                "QEMU failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok((console, elapsed))
    }
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
        assert!(parse_booted("COSA-BOOT-FAILED: no root\n").is_none());
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
    }
}
