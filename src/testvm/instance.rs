//! A QEMU machine running in the background: its serial console goes to a
//! log file, and the caller stops it, or waits for the guest to power
//! off. Dropping an [`Instance`] kills QEMU, so a failing test never
//! leaves a machine behind.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Console, Machine, qemu_system};

/// A free TCP port of 127.0.0.1, found by binding port 0 and letting the
/// socket go. Another process may take it before QEMU binds it; QEMU then
/// fails at once and [`Instance::check_running`] says so with its stderr.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a port of 127.0.0.1")?;
    Ok(l.local_addr().context("reading the bound address")?.port())
}

/// A running QEMU.
#[derive(Debug)]
pub struct Instance {
    child: Option<Child>,
    /// The serial console log.
    pub console: PathBuf,
    /// QEMU's own messages (bad options, a port already taken).
    pub qemu_log: PathBuf,
    started: Instant,
}

impl Machine {
    /// Start the machine in the background with its serial console
    /// written to `console` (and QEMU's stderr beside it, `*.qemu.txt`).
    pub fn spawn(&self, scratch: &Path, console: &Path) -> Result<Instance> {
        if let Some(d) = console.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let qemu_log = console.with_extension("qemu.txt");
        let err = std::fs::File::create(&qemu_log)
            .with_context(|| format!("creating {}", qemu_log.display()))?;
        let (bin, pkg) = qemu_system(&self.arch)?;
        let mut cmd = self.command_with(scratch, Console::File(console.to_path_buf()))?;
        tracing::debug!("starting {cmd:?}");
        // A long-running child with its console in a file: spawned
        // directly, not through CommandRunExt (which runs to completion).
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {bin} (install Debian's {pkg})"))?;
        Ok(Instance {
            child: Some(child),
            console: console.to_path_buf(),
            qemu_log,
            started: Instant::now(),
        })
    }
}

impl Instance {
    fn child(&mut self) -> Result<&mut Child> {
        self.child
            .as_mut()
            .context("the machine was already stopped")
    }

    /// QEMU's messages, for errors.
    fn qemu_messages(&self) -> String {
        std::fs::read_to_string(&self.qemu_log)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// Ok while QEMU runs; an error with its exit status and messages once
    /// it has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(st) = self.child()?.try_wait().context("checking on QEMU")? {
            bail!(
                "QEMU exited ({st}) after {:.0}s: {} (console log {})",
                self.started.elapsed().as_secs_f64(),
                self.qemu_messages(),
                self.console.display()
            );
        }
        Ok(())
    }

    /// Wait up to `timeout` for the guest to power off (QEMU exits);
    /// QEMU's exit status, or an error naming the console log when it is
    /// still running (it is left running: [`Instance::stop`] ends it).
    pub fn wait_poweroff(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child()?.try_wait().context("waiting for QEMU")? {
                self.child = None;
                return Ok(st);
            }
            if Instant::now() >= until {
                bail!(
                    "the machine did not power off within {}s (console log {})",
                    timeout.as_secs(),
                    self.console.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stop QEMU: SIGTERM (QEMU closes its files and exits), SIGKILL five
    /// seconds later if it has not.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait().context("checking on QEMU")?.is_some() {
            return Ok(());
        }
        // SAFETY: kill(2) on the pid of our own child, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if child.try_wait().context("waiting for QEMU")?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().context("killing QEMU")?;
        child.wait().context("waiting for QEMU")?;
        Ok(())
    }

    /// How long the machine has run.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
