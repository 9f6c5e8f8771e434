//! Running the external tools cosa wraps (mkfs, qemu-img, grub-mkimage,
//! xorriso, tar, dpkg-deb, ...): one runner, built on duct, that logs the
//! command, captures its output, and on failure names what was being done,
//! the command line, the exit status and the tail of its stderr.
//!
//! Callers build a `std::process::Command` as usual; its program,
//! arguments, working directory and environment changes carry over. Stdin
//! is closed and stdout and stderr are captured, as `Command::output` does.
//! Programs that need a terminal, streamed output or a sandboxed
//! environment (`env_clear`) are spawned directly, not through this.

use std::process::{Command, Output};

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;

/// How much of stderr an error keeps, in bytes.
const STDERR_TAIL: usize = 1024;

/// The runner, as a method on `Command` (bootc's `CommandRunExt`).
pub trait CommandRunExt {
    /// Run to completion; the output when the command succeeds. `what`
    /// says what the command does, for the log and the error.
    fn run_capture(&mut self, what: &str) -> Result<Output>;

    /// Run to completion with stdin read from `stdin` (None: closed) and
    /// stdout and stderr captured; the output whatever the exit status,
    /// for programs whose failure is a result the caller reads (a command
    /// run in a test guest over ssh). An error only when it cannot start.
    fn run_unchecked(&mut self, what: &str, stdin: Option<&std::path::Path>) -> Result<Output>;

    /// [`CommandRunExt::run_capture`], then stdout as text.
    fn run_stdout(&mut self, what: &str) -> Result<String> {
        let out = self.run_capture(what)?;
        String::from_utf8(out.stdout).with_context(|| format!("{what}: stdout is not UTF-8"))
    }

    /// [`CommandRunExt::run_capture`], then stdout parsed as JSON.
    fn run_json<T: DeserializeOwned>(&mut self, what: &str) -> Result<T> {
        let out = self.run_capture(what)?;
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("{what}: parsing the JSON it printed"))
    }
}

impl CommandRunExt for Command {
    fn run_capture(&mut self, what: &str) -> Result<Output> {
        let out = self.run_unchecked(what, None)?;
        if !out.status.success() {
            bail!(
                "{what}: {self:?} failed ({}): {}",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), STDERR_TAIL)
            );
        }
        Ok(out)
    }

    fn run_unchecked(&mut self, what: &str, stdin: Option<&std::path::Path>) -> Result<Output> {
        tracing::debug!("{what}: {self:?}");
        let mut e = duct::cmd(self.get_program(), self.get_args());
        if let Some(dir) = self.get_current_dir() {
            e = e.dir(dir);
        }
        for (k, v) in self.get_envs() {
            e = match v {
                Some(v) => e.env(k, v),
                None => e.env_remove(k),
            };
        }
        e = match stdin {
            Some(p) => e.stdin_path(p),
            None => e.stdin_null(),
        };
        e.stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .with_context(|| format!("{what}: starting {:?}", self.get_program()))
    }
}

/// The last `max` bytes of `s` (trailing whitespace dropped), cut at a
/// character boundary.
pub fn tail(s: &str, max: usize) -> &str {
    let s = s.trim_end();
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn output_environment_and_directory_carry_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sh("printf '%s %s ' \"$COSA_T\" \"${HOME-unset}\"; pwd; cat");
        c.env("COSA_T", "x y")
            .env_remove("HOME")
            .current_dir(dir.path());
        let out = c.run_stdout("printing").unwrap();
        let want = format!(
            "x y unset {}\n",
            dir.path().canonicalize().unwrap().display()
        );
        // stdin is closed: `cat` ends at once.
        assert_eq!(out, want);
    }

    #[test]
    fn failure_names_what_the_command_and_the_stderr_tail() {
        let e = sh("yes stdout-line | head -n 100; echo 'the reason' >&2; exit 3")
            .run_capture("doing the thing")
            .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.starts_with("doing the thing: "), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.ends_with("the reason"), "{msg}");
        assert!(
            !msg.contains("stdout-line\n"),
            "stdout leaked into the error"
        );

        let noisy = "printf 'é%.0s' $(seq 1 2000) >&2; echo; echo last >&2; exit 1";
        let msg = format!("{:#}", sh(noisy).run_capture("noisy").unwrap_err());
        let stderr = msg.split("): ").last().unwrap();
        assert!(
            stderr.len() <= STDERR_TAIL && stderr.ends_with("last"),
            "{stderr}"
        );

        let e = Command::new("/nonexistent/cosa-tool")
            .run_capture("running a missing tool")
            .unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("running a missing tool: starting") && msg.contains("cosa-tool"),
            "{msg}"
        );
    }

    #[test]
    fn json_output_is_parsed() {
        let v: serde_json::Value = sh(r#"echo '{"a": [1, 2]}'"#).run_json("json").unwrap();
        assert_eq!(v["a"][1], 2);
        let e = sh("echo not json").run_json::<serde_json::Value>("bad json");
        let msg = format!("{:#}", e.unwrap_err());
        assert!(msg.contains("bad json: parsing the JSON"), "{msg}");
    }
}
