//! Reaching a test machine over SSH, as upstream kola does: an ed25519 key
//! pair made for the run with `ssh-keygen`, and the system OpenSSH client
//! (`ssh`) for every command, with host keys neither checked nor recorded
//! (each guest is new) and no password prompt (`BatchMode`).
//!
//! The guest is reached on the loopback address only: QEMU forwards a
//! port of 127.0.0.1 to the guest's port 22 ([`super::Machine::ssh_port`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::cmd::{CommandRunExt, tail};

/// The SSH key pair the harness logs in with.
#[derive(Clone, Debug)]
pub struct SshKey {
    /// The private key file (mode 0600, as `ssh` requires).
    pub private: PathBuf,
    /// The public key line (`ssh-ed25519 AAAA... cosa-kola`).
    pub public: String,
}

impl SshKey {
    /// Make a new ed25519 key pair without a passphrase in `dir`
    /// (`dir/id_ed25519` and `dir/id_ed25519.pub`).
    pub fn generate(dir: &Path) -> Result<SshKey> {
        let private = dir.join("id_ed25519");
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "cosa-kola", "-f"])
            .arg(&private)
            .run_capture(&format!(
                "making an SSH key in {} (install Debian's openssh-client)",
                dir.display()
            ))?;
        let pub_path = private.with_extension("pub");
        let public = std::fs::read_to_string(&pub_path)
            .with_context(|| format!("reading {}", pub_path.display()))?
            .trim()
            .to_string();
        Ok(SshKey { private, public })
    }
}

/// Where and as whom to log in.
#[derive(Clone, Debug)]
pub struct Ssh {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key: PathBuf,
    /// How long one connection attempt may take (`ConnectTimeout`).
    pub connect_timeout: Duration,
}

/// What a command run in the guest did.
#[derive(Clone, Debug)]
pub struct SshOutput {
    /// The remote command's exit code; 255 is also ssh's own failure
    /// (connection refused, authentication), None: killed by a signal.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl SshOutput {
    fn from_output(o: Output) -> SshOutput {
        SshOutput {
            code: o.status.code(),
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Quote `s` for a POSIX shell (the remote side of ssh runs the command
/// through the user's shell).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Ssh {
    /// A login to the guest whose port 22 QEMU forwards to `port` of
    /// 127.0.0.1.
    pub fn local(port: u16, user: &str, key: &Path) -> Ssh {
        Ssh {
            host: "127.0.0.1".into(),
            port,
            user: user.into(),
            key: key.to_path_buf(),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The options every connection takes.
    fn options(&self) -> Vec<String> {
        let mut o = vec!["-i".to_string(), self.key.display().to_string()];
        for opt in [
            "StrictHostKeyChecking=no".to_string(),
            "UserKnownHostsFile=/dev/null".into(),
            "BatchMode=yes".into(),
            "IdentitiesOnly=yes".into(),
            "LogLevel=ERROR".into(),
            format!("ConnectTimeout={}", self.connect_timeout.as_secs().max(1)),
            // A guest that stops answering (kernel panic, reboot) ends
            // the session instead of hanging it.
            "ServerAliveInterval=5".into(),
            "ServerAliveCountMax=6".into(),
        ] {
            o.push("-o".into());
            o.push(opt);
        }
        o
    }

    /// The `ssh` command that runs `remote` (a shell command line) in the guest.
    pub fn command(&self, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.options())
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{}@{}", self.user, self.host))
            .arg("--")
            .arg(remote);
        c
    }

    /// The command line a person types to log in (for `cosa run --ssh`).
    pub fn login_hint(&self) -> String {
        let mut words = vec!["ssh".to_string()];
        words.extend(self.options().iter().map(|o| shell_quote(o)));
        words.push("-p".into());
        words.push(self.port.to_string());
        words.push(format!("{}@{}", self.user, self.host));
        words.join(" ")
    }

    /// Run `remote` in the guest; its exit status and output, whatever
    /// they are. An error only when `ssh` cannot start.
    pub fn output(&self, remote: &str) -> Result<SshOutput> {
        self.output_with(remote, None, None)
    }

    /// [`Ssh::output`] with stdin from `stdin`, stopped after `timeout`
    /// (then `code` is 124, as timeout(1) says).
    pub fn output_with(
        &self,
        remote: &str,
        stdin: Option<&Path>,
        timeout: Option<Duration>,
    ) -> Result<SshOutput> {
        let ssh = self.command(remote);
        let mut cmd = match timeout {
            Some(t) => {
                let mut c = Command::new("timeout");
                c.arg("--kill-after=10")
                    .arg(t.as_secs().max(1).to_string())
                    .arg(ssh.get_program())
                    .args(ssh.get_args());
                c
            }
            None => ssh,
        };
        let what = format!(
            "running {remote:?} on {}@{}:{} with ssh (install Debian's openssh-client)",
            self.user, self.host, self.port
        );
        Ok(SshOutput::from_output(cmd.run_unchecked(&what, stdin)?))
    }

    /// Run `remote` in the guest; its stdout when it exits 0, else an error
    /// with the command, the exit status and the end of its stderr.
    pub fn run(&self, remote: &str) -> Result<String> {
        let out = self.output(remote)?;
        if !out.success() {
            bail!(
                "{remote:?} on {}@{}:{} failed ({}): {}",
                self.user,
                self.host,
                self.port,
                describe_code(out.code),
                tail(&out.stderr_text(), 1024)
            );
        }
        Ok(out.stdout_text())
    }

    /// Wait until the guest accepts a login and runs `true`, trying again
    /// every second until `deadline` passes; `alive` is asked between
    /// tries and ends the wait with its error (QEMU exited). `console`
    /// names the log to read when it never answers.
    pub fn wait_ready(
        &self,
        deadline: Duration,
        console: &Path,
        alive: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let out = self.output_with("true", None, Some(self.connect_timeout * 2))?;
            if out.success() {
                return Ok(started.elapsed());
            }
            let last = out.stderr_text().trim().to_string();
            alive().with_context(|| {
                format!(
                    "the machine stopped before SSH answered (console log {}){}",
                    console.display(),
                    super::console_excerpt(console)
                )
            })?;
            if started.elapsed() >= deadline {
                bail!(
                    "SSH on {}:{} did not answer within {}s (last ssh error: {}); see the \
                     console log {}{}",
                    self.host,
                    self.port,
                    deadline.as_secs(),
                    if last.is_empty() { "none" } else { &last },
                    console.display(),
                    super::console_excerpt(console)
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Copy the file or directory `local` to `remote` in the guest (a
    /// directory's content goes into the directory `remote`, made if
    /// missing; modes are kept). The guest needs `tar`. `scratch` holds
    /// the archive while it is sent.
    pub fn copy_in(&self, local: &Path, remote: &str, scratch: &Path) -> Result<()> {
        let meta =
            std::fs::metadata(local).with_context(|| format!("reading {}", local.display()))?;
        let archive = tempfile::Builder::new()
            .prefix("copy-in-")
            .suffix(".tar")
            .tempfile_in(scratch)
            .with_context(|| format!("making a temp file in {}", scratch.display()))?;
        let (dir, unpack_in) = if meta.is_dir() {
            (remote.to_string(), remote.to_string())
        } else {
            let parent = match remote.rsplit_once('/') {
                Some(("", _)) => "/".to_string(),
                Some((p, _)) => p.to_string(),
                None => ".".to_string(),
            };
            (parent.clone(), parent)
        };
        {
            let mut b = tar::Builder::new(archive.as_file());
            b.follow_symlinks(true);
            if meta.is_dir() {
                b.append_dir_all(".", local)
            } else {
                let name = remote.rsplit('/').next().unwrap_or(remote);
                b.append_path_with_name(local, name)
            }
            .and_then(|_| b.finish())
            .with_context(|| format!("archiving {}", local.display()))?;
        }
        let script = format!(
            "mkdir -p {d} && tar -x -f - -C {u} --no-same-owner",
            d = shell_quote(&dir),
            u = shell_quote(&unpack_in)
        );
        let out = self.output_with(&script, Some(archive.path()), None)?;
        if !out.success() {
            bail!(
                "copying {} to {remote} on {}:{} failed ({}): {}",
                local.display(),
                self.host,
                self.port,
                describe_code(out.code),
                tail(&out.stderr_text(), 1024)
            );
        }
        Ok(())
    }
}

/// An exit code for messages.
pub fn describe_code(code: Option<i32>) -> String {
    match code {
        Some(255) => "exit status 255: ssh could not connect, or the command exited 255".into(),
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".into(),
    }
}
