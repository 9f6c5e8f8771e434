//! A test machine as a test sees it: an SSH session, a way to reboot, and
//! the logs to keep when it fails. [`QemuGuest`] is a QEMU machine booted
//! with an Ignition config that lets the harness in as `core`; the
//! [`Guest`] trait is what tests (built-in ones and the external-test
//! runner) are written against, so the runner can also be exercised on
//! any host with an sshd.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::ignition;
use super::instance::{Instance, free_port};
use super::ssh::{Ssh, SshKey};
use super::{Machine, MachineOptions};

/// A machine tests run on.
pub trait Guest: Send {
    /// The login session.
    fn ssh(&self) -> &Ssh;

    /// Reboot the machine and return once SSH answers on the new boot.
    fn reboot(&mut self) -> Result<()>;

    /// The serial console log, if the machine has one.
    fn console_log(&self) -> Option<PathBuf> {
        None
    }

    /// `cmd` as root: through `sudo` unless the login is root already.
    fn as_root(&self, cmd: &str) -> String {
        if self.ssh().user == "root" {
            cmd.to_string()
        } else {
            format!("sudo {cmd}")
        }
    }

    /// The journal of the current boot (`journalctl -b --no-pager`).
    fn journal(&self) -> Result<String> {
        self.ssh()
            .run(&self.as_root("journalctl -b --no-pager"))
            .context("reading the journal over SSH")
    }
}

/// A QEMU machine reached over SSH.
pub struct QemuGuest {
    pub instance: Instance,
    pub ssh: Ssh,
    /// How long a boot may take until SSH answers.
    pub boot_timeout: Duration,
    /// The test's extra disks, removed with the guest (declared after
    /// `instance`, so QEMU is stopped first).
    _disks: tempfile::TempDir,
}

impl QemuGuest {
    /// Boot `machine` (its network and Ignition settings are replaced,
    /// its memory and disks as the test's `options` ask, the disks made
    /// in `scratch`) with `config` plus `key` for user `core`, the console
    /// and the config kept in `outdir`; return once SSH answers or fail
    /// after `boot_timeout` naming the console log.
    pub fn boot(
        machine: &Machine,
        options: &MachineOptions,
        scratch: &Path,
        outdir: &Path,
        config: Option<&Value>,
        key: &SshKey,
        boot_timeout: Duration,
    ) -> Result<QemuGuest> {
        std::fs::create_dir_all(outdir)
            .with_context(|| format!("creating {}", outdir.display()))?;
        let text = config.map(|c| c.to_string());
        let merged =
            ignition::with_ssh_key(text.as_deref(), "the test's Ignition config", &key.public)?;
        let ign = outdir.join("config.ign");
        ignition::write(&merged, &ign)?;
        let disk_dir = tempfile::Builder::new()
            .prefix("disks")
            .tempdir_in(scratch)
            .with_context(|| format!("making a directory for disks in {}", scratch.display()))?;
        let disks = options.create_disks(disk_dir.path())?;
        let port = free_port()?;
        let m = Machine {
            ssh_port: Some(port),
            ignition: Some(ign),
            ..options.apply(machine, disks)
        };
        let console = outdir.join("console.txt");
        let mut instance = m.spawn(scratch, &console)?;
        let ssh = Ssh::local(port, ignition::USER, &key.private);
        let waited = ssh.wait_ready(boot_timeout, &console, &mut || instance.check_running())?;
        tracing::info!("SSH answered after {:.1}s", waited.as_secs_f64());
        Ok(QemuGuest {
            instance,
            ssh,
            boot_timeout,
            _disks: disk_dir,
        })
    }

    /// Stop the machine.
    pub fn stop(&mut self) -> Result<()> {
        self.instance.stop()
    }
}

/// The kernel's id of the running boot.
pub fn boot_id(ssh: &Ssh) -> Result<String> {
    Ok(ssh
        .run("cat /proc/sys/kernel/random/boot_id")
        .context("reading the boot id")?
        .trim()
        .to_string())
}

impl Guest for QemuGuest {
    fn ssh(&self) -> &Ssh {
        &self.ssh
    }

    fn console_log(&self) -> Option<PathBuf> {
        Some(self.instance.console.clone())
    }

    fn reboot(&mut self) -> Result<()> {
        let before = boot_id(&self.ssh)?;
        // The connection may drop before ssh sees the exit status.
        let _ = self.ssh.output(&self.as_root("systemctl reboot"))?;
        let started = Instant::now();
        loop {
            self.instance.check_running()?;
            let left = self.boot_timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                bail!(
                    "the machine did not come back from its reboot within {}s (console log {})",
                    self.boot_timeout.as_secs(),
                    self.instance.console.display()
                );
            }
            let console = self.instance.console.clone();
            let instance = &mut self.instance;
            self.ssh
                .wait_ready(left, &console, &mut || instance.check_running())?;
            if boot_id(&self.ssh).is_ok_and(|id| id != before) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}
