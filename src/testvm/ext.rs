//! Running one external test (see [`crate::config::kola`]) in a [`Guest`]
//! over SSH, with the environment upstream gives it (`KOLA_EXT_DATA`,
//! `KOLA_TEST`, `KOLA_TEST_EXE`, `KOLA_UNIT`) and the autopkgtest reboot
//! API (Debian's `README.package-tests`, "Reboot during a test"):
//!
//! - `/tmp/autopkgtest-reboot MARK` records MARK and ends the test at
//!   once (its process group gets SIGTERM); `/tmp/autopkgtest-reboot-prepare
//!   MARK` records it and lets the test finish.
//! - The harness then reboots the machine and runs the test again with
//!   `AUTOPKGTEST_REBOOT_MARK=MARK`, until a run ends without a mark.
//!
//! Upstream runs the test as a systemd unit through its `kolet` helper;
//! here a small shell wrapper runs it directly over SSH (as root), in its
//! own session so the reboot script can end the whole test. The test, its
//! `data/` and the wrapper live in a directory that survives reboots
//! (`/var/opt/kola/ext/<test>` on a real machine).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::guest::Guest;
use super::ssh::{describe_code, shell_quote};
use crate::config::kola::{DATA_DIR, ExtTest};

/// Where tests are installed in a machine.
pub const GUEST_ROOT: &str = "/var/opt/kola/ext";
/// How long a test may run when its metadata does not say (minutes).
pub const DEFAULT_TIMEOUT_MIN: u32 = 10;
/// How many reboots one test may ask for.
pub const MAX_REBOOTS: usize = 20;
/// The line the wrapper prints last when the test asked for a reboot.
const REBOOT_LINE: &str = "KOLA-AUTOPKGTEST-REBOOT:";

/// The wrapper: `runext.sh STATE_DIR EXE` runs EXE in its own session
/// (`setsid`, so `kill -- -PGID` reaches it and its children), from `/`,
/// and reports a recorded reboot mark on its last line.
const WRAPPER: &str = r#"#!/bin/sh
# cosa kola: run one external test; see src/testvm/ext.rs
state=$1; exe=$2
rm -f "$state/reboot-mark"
cd /
setsid "$exe" &
wait $!
rc=$?
if [ -s "$state/reboot-mark" ]; then
    printf '\n%s%s\n' "KOLA-AUTOPKGTEST-REBOOT:" "$(cat "$state/reboot-mark")"
    exit 0
fi
exit $rc
"#;

/// `/tmp/autopkgtest-reboot` (`@KILL@` 1) and `-prepare` (0): record the
/// mark in `@STATE@`, then end the test's process group or return.
const REBOOT_SCRIPT: &str = r#"#!/bin/sh
# cosa kola: the autopkgtest reboot API; see src/testvm/ext.rs
mark=$1
if [ -z "$mark" ]; then echo "usage: $0 MARK" >&2; exit 1; fi
printf '%s' "$mark" > "@STATE@/reboot-mark.tmp" && mv "@STATE@/reboot-mark.tmp" "@STATE@/reboot-mark" || exit 1
if [ @KILL@ = 1 ]; then
    read -r stat < /proc/$$/stat
    set -- ${stat##*) }
    kill -s TERM -- -"$3"
    sleep 600
fi
"#;

/// What one test did.
#[derive(Clone, Debug, Default)]
pub struct ExtOutcome {
    /// Its output (stdout and stderr together), all runs one after the other.
    pub output: String,
    /// The reboot marks it asked for, in order.
    pub reboots: Vec<String>,
    /// None when it passed; else why it failed.
    pub failure: Option<String>,
}

/// Install `test` under `root/<name>` in `guest` and run it until it ends
/// without asking for a reboot. `scratch` holds what is sent. Errors are
/// harness failures (copying, SSH); a test that fails is an outcome.
pub fn run(
    guest: &mut dyn Guest,
    test: &ExtTest,
    root: &str,
    scratch: &Path,
) -> Result<ExtOutcome> {
    let dir = format!("{root}/{}", test.name);
    let exe_name = test
        .exe
        .file_name()
        .context("the test executable has no file name")?
        .to_string_lossy()
        .into_owned();
    install(guest, test, &dir, &exe_name, scratch)
        .with_context(|| format!("installing {} in the machine", test.name))?;
    let timeout =
        Duration::from_secs(60 * u64::from(test.meta.timeout_min.unwrap_or(DEFAULT_TIMEOUT_MIN)));
    let mut out = ExtOutcome::default();
    let mut mark: Option<String> = None;
    loop {
        let mut env = vec![
            format!("KOLA_TEST={}", test.name),
            format!("KOLA_TEST_EXE={exe_name}"),
            format!("KOLA_UNIT=kola-runext-{exe_name}"),
            format!("KOLA_EXT_DATA={dir}/{DATA_DIR}"),
        ];
        if let Some(m) = &mark {
            env.push(format!("AUTOPKGTEST_REBOOT_MARK={m}"));
        }
        let run = format!(
            "{}env {} sh {} {} {} 2>&1",
            reboot_api_script(&dir),
            env.iter()
                .map(|e| shell_quote(e))
                .collect::<Vec<_>>()
                .join(" "),
            shell_quote(&format!("{dir}/runext.sh")),
            shell_quote(&dir),
            shell_quote(&format!("{dir}/{exe_name}")),
        );
        let cmd = guest.as_root(&format!("sh -c {}", shell_quote(&run)));
        let res = guest.ssh().output_with(&cmd, None, Some(timeout))?;
        let text = res.stdout_text();
        let (text, asked) = split_reboot_line(&text);
        out.output.push_str(text);
        if res.code == Some(124) {
            out.failure = Some(format!(
                "timed out after {} minutes (timeoutMin)",
                timeout.as_secs() / 60
            ));
            return Ok(out);
        }
        if !res.success() {
            out.output.push_str(&res.stderr_text());
            out.failure = Some(format!("the test failed ({})", describe_code(res.code)));
            return Ok(out);
        }
        let Some(next) = asked else {
            return Ok(out);
        };
        if out.reboots.len() >= MAX_REBOOTS {
            out.failure = Some(format!("asked for more than {MAX_REBOOTS} reboots"));
            return Ok(out);
        }
        out.reboots.push(next.clone());
        out.output
            .push_str(&format!("--- kola: rebooting for mark {next:?} ---\n"));
        guest
            .reboot()
            .with_context(|| format!("rebooting for mark {next:?} of {}", test.name))?;
        mark = Some(next);
    }
}

/// The output without the wrapper's reboot line, and the mark it named.
fn split_reboot_line(text: &str) -> (&str, Option<String>) {
    let trimmed = text.trim_end_matches('\n');
    if let Some(i) = trimmed.rfind(REBOOT_LINE) {
        let line_start = trimmed[..i].rfind('\n').map_or(0, |n| n + 1);
        if line_start == i {
            let mark = trimmed[i + REBOOT_LINE.len()..].to_string();
            // The wrapper put a newline before its line.
            let body = trimmed[..i].strip_suffix('\n').unwrap_or(&trimmed[..i]);
            return (body, Some(mark));
        }
    }
    (text, None)
}

/// Send the executable, `data/` and the wrapper into a fresh `dir`, in
/// one tar stream over one connection (each SSH login costs a key
/// exchange, slow in an emulated machine).
fn install(
    guest: &mut dyn Guest,
    test: &ExtTest,
    dir: &str,
    exe_name: &str,
    scratch: &Path,
) -> Result<()> {
    let archive = scratch.join("install.tar");
    {
        let f = std::fs::File::create(&archive)
            .with_context(|| format!("creating {}", archive.display()))?;
        let mut b = tar::Builder::new(f);
        b.follow_symlinks(true);
        let mut exe = std::fs::File::open(&test.exe)
            .with_context(|| format!("opening {}", test.exe.display()))?;
        b.append_file(exe_name, &mut exe)
            .with_context(|| format!("archiving {}", test.exe.display()))?;
        if let Some(data) = &test.data {
            b.append_dir_all(DATA_DIR, data)
                .with_context(|| format!("archiving {}", data.display()))?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(WRAPPER.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        b.append_data(&mut h, "runext.sh", WRAPPER.as_bytes())
            .and_then(|_| b.into_inner().map(drop))
            .context("archiving the test wrapper")?;
    }
    let user = shell_quote(&guest.ssh().user);
    let d = shell_quote(dir);
    let script = format!(
        "rm -rf {d} && mkdir -p {d} && tar -x -f - -C {d} --no-same-owner && \
         chmod a+x {d}/{} && chown -R {user} {d}",
        shell_quote(exe_name)
    );
    let out = guest.ssh().output_with(
        &guest.as_root(&format!("sh -c {}", shell_quote(&script))),
        Some(&archive),
        None,
    )?;
    if !out.success() {
        anyhow::bail!(
            "unpacking into {dir} failed ({}): {}",
            describe_code(out.code),
            out.stderr_text().trim()
        );
    }
    Ok(())
}

/// The shell commands that put `/tmp/autopkgtest-reboot` and `-prepare`
/// in place (before every run: /tmp does not survive a reboot).
fn reboot_api_script(dir: &str) -> String {
    let mut script = String::new();
    for (name, kill) in [
        ("autopkgtest-reboot", "1"),
        ("autopkgtest-reboot-prepare", "0"),
    ] {
        let body = REBOOT_SCRIPT
            .replace("@STATE@", dir)
            .replace("@KILL@", kill);
        script.push_str(&format!(
            "printf '%s' {} > /tmp/{name} && chmod a+x /tmp/{name} && ",
            shell_quote(&body)
        ));
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kola_ext_reboot_line_is_split_off() {
        let (t, m) = split_reboot_line("a\nb\n\nKOLA-AUTOPKGTEST-REBOOT:mark1\n");
        assert_eq!((t, m.as_deref()), ("a\nb\n", Some("mark1")));
        let (t, m) = split_reboot_line("a\nb\n");
        assert_eq!((t, m), ("a\nb\n", None));
        // Only a line of its own counts.
        let (t, m) = split_reboot_line("x KOLA-AUTOPKGTEST-REBOOT:m\n");
        assert_eq!((t, m), ("x KOLA-AUTOPKGTEST-REBOOT:m\n", None));
    }
}
