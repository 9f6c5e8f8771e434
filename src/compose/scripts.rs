//! Run RPM scriptlets inside the tree with bubblewrap, as rpm-ostree does
//! (rpmostree-scripts.cxx): the tree is bind-mounted as `/`, with fresh
//! /dev, /proc and a tmpfs /tmp, in new pid/ipc/uts/net namespaces.
//!
//! Order, as in rpm-ostree: every %pre in install order, then every %post,
//! then (after file owners are applied) every %posttrans. `$1` is 1 for
//! %pre/%post and 0 for %posttrans (rpm's values on a fresh install).
//!
//! Lua scriptlets (`<lua>`) cannot run outside rpm's embedded interpreter.
//! rpm-ostree replaces a fixed table of known Lua scripts and fails on the
//! rest; we have no such table, so a Lua scriptlet is recorded as skipped
//! with the reason "lua scriptlets unsupported" (and a warning) instead of
//! failing the whole compose.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::install::ScriptPolicy;

/// Which scriptlet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Pre,
    Post,
    PostTrans,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Pre => "%pre",
            Kind::Post => "%post",
            Kind::PostTrans => "%posttrans",
        }
    }

    /// rpm's `$1` on a fresh install.
    pub fn arg(self) -> &'static str {
        match self {
            Kind::Pre | Kind::Post => "1",
            Kind::PostTrans => "0",
        }
    }
}

/// One scriptlet of one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scriptlet {
    /// Package name (used as the output prefix and in reports).
    pub package: String,
    pub kind: Kind,
    /// Interpreter and its arguments (`-p` in the spec); `/bin/sh` by default.
    pub program: Vec<String>,
    /// The script text; empty for `%post -p /sbin/ldconfig` style scriptlets.
    pub body: String,
}

/// Number of output lines kept for the error message of a failing scriptlet.
const TAIL_LINES: usize = 20;

impl Scriptlet {
    /// "name %post", as recorded in the install report.
    pub fn id(&self) -> String {
        format!("{} {}", self.package, self.kind.label())
    }

    pub fn is_lua(&self) -> bool {
        self.program.first().map(|p| p.as_str()) == Some("<lua>")
    }
}

/// Read %pre, %post and %posttrans from a package header.
pub fn from_header(package: &str, md: &rpm::PackageMetadata) -> Result<Vec<Scriptlet>> {
    use rpm::IndexTag as T;
    let tags = [
        (Kind::Pre, T::RPMTAG_PREIN, T::RPMTAG_PREINPROG),
        (Kind::Post, T::RPMTAG_POSTIN, T::RPMTAG_POSTINPROG),
        (
            Kind::PostTrans,
            T::RPMTAG_POSTTRANS,
            T::RPMTAG_POSTTRANSPROG,
        ),
    ];
    let mut out = Vec::new();
    for (kind, body_tag, prog_tag) in tags {
        let body = match md.header.get_entry_data_as_string(body_tag) {
            Ok(s) => Some(s.to_string()),
            Err(rpm::Error::TagNotFound(_)) => None,
            Err(e) => {
                return Err(e).with_context(|| format!("reading {} of {package}", kind.label()));
            }
        };
        let program = match md.header.get_entry_data_as_string_array(prog_tag) {
            Ok(v) => Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            Err(_) => match md.header.get_entry_data_as_string(prog_tag) {
                Ok(s) => Some(vec![s.to_string()]),
                Err(_) => None,
            },
        };
        if body.is_none() && program.is_none() {
            continue;
        }
        let program = program
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".to_string()]);
        out.push(Scriptlet {
            package: package.to_string(),
            kind,
            program,
            body: body.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Resolve `path` (absolute, inside the tree) following symlinks as if
/// `root` were `/`; returns the host path of the final target, if it exists.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut todo: VecDeque<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let host = root.join(cur.join("/")).join(&c);
        let md = std::fs::symlink_metadata(&host).ok()?;
        if md.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            let mut comps: Vec<String> = target
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                })
                .collect();
            if target.is_absolute() {
                cur.clear();
            }
            comps.extend(todo.drain(..));
            todo = comps.into();
        } else {
            cur.push(c);
        }
    }
    Some(root.join(cur.join("/")))
}

/// Why every scriptlet is skipped, if it is: the policy says so, or the
/// target arch is not the host's (no qemu-user here).
pub fn skip_reason(policy: &ScriptPolicy, basearch: &str) -> Option<String> {
    if let ScriptPolicy::Skip(reason) = policy {
        return Some(reason.clone());
    }
    let host = crate::util::host_arch();
    if basearch != host {
        return Some(format!(
            "target arch {basearch} is not the host arch {host} (scriptlets cannot run without qemu-user)"
        ));
    }
    None
}

/// Outcome of one scriptlet, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ran,
    Skipped(String),
}

/// Run (or skip) each scriptlet in order; the first failure stops.
pub fn run_all(
    dest: &Path,
    scripts: &[&Scriptlet],
    skip: Option<&str>,
) -> Result<Vec<(String, Outcome)>> {
    // bwrap makes mount points for /dev, /proc and /tmp in the tree; remove
    // the ones it created so the tree holds only what the packages shipped.
    let _cleanup = MountPoints::note(dest);
    let mut out = Vec::new();
    for s in scripts {
        let outcome = if let Some(reason) = skip {
            Outcome::Skipped(reason.to_string())
        } else if s.is_lua() {
            tracing::warn!("{}: lua scriptlets unsupported, skipped", s.id());
            Outcome::Skipped("lua scriptlets unsupported".into())
        } else {
            run(dest, s)?;
            Outcome::Ran
        };
        out.push((s.id(), outcome));
    }
    Ok(out)
}

/// Mount point directories that did not exist before the sandbox ran.
struct MountPoints(Vec<std::path::PathBuf>);

impl MountPoints {
    fn note(dest: &Path) -> MountPoints {
        MountPoints(
            ["dev", "proc", "tmp"]
                .iter()
                .map(|d| dest.join(d))
                .filter(|p| std::fs::symlink_metadata(p).is_err())
                .collect(),
        )
    }
}

impl Drop for MountPoints {
    fn drop(&mut self) {
        for p in &self.0 {
            // Only an empty directory is removed: anything a scriptlet put there stays.
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// The sandbox every program run inside a tree gets, as rpm-ostree's
/// bubblewrap: the tree as `/`, fresh `/dev`, `/proc` and `/tmp`, no network,
/// its own pid/ipc/uts namespaces, a fixed PATH and locale.
pub(crate) fn sandbox_args(tree: &Path) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> =
        vec!["--bind".into(), tree.as_os_str().to_owned(), "/".into()];
    for s in [
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--chdir",
        "/",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--setenv",
        "PATH",
        "/usr/sbin:/usr/bin:/sbin:/bin",
        "--setenv",
        "LANG",
        "C.UTF-8",
    ] {
        a.push(s.into());
    }
    a
}

/// The bubblewrap arguments of a scriptlet (everything before the interpreter).
fn bwrap_args(dest: &Path, script_in_sandbox: Option<(&Path, &str)>) -> Vec<std::ffi::OsString> {
    let mut a = sandbox_args(dest);
    for s in ["--setenv", "RPM_INSTALL_PREFIX", "/usr"] {
        a.push(s.into());
    }
    if let Some((host, inside)) = script_in_sandbox {
        a.push("--ro-bind".into());
        a.push(host.as_os_str().to_owned());
        a.push(inside.into());
    }
    a
}

/// Run one scriptlet in a bubblewrap container rooted at `dest`, streaming
/// its output to stderr prefixed with the package name.
pub fn run(dest: &Path, s: &Scriptlet) -> Result<()> {
    let interp = &s.program[0];
    if resolve_in_root(dest, interp).is_none_or(|p| !p.is_file()) {
        bail!(
            "package {}: {} interpreter {interp} is not in the tree",
            s.package,
            s.kind.label()
        );
    }
    const INSIDE: &str = "/tmp/.cosa-scriptlet";
    let tmp = tempfile::NamedTempFile::new().context("creating a scriptlet temp file")?;
    let mut argv: Vec<String> = s.program.clone();
    let with_body = !s.body.is_empty();
    if with_body {
        tmp.as_file()
            .write_all(s.body.as_bytes())
            .context("writing scriptlet temp file")?;
        argv.push(INSIDE.into());
        argv.push(s.kind.arg().into());
    }
    let mut cmd = Command::new("bwrap");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .args(bwrap_args(dest, with_body.then_some((tmp.path(), INSIDE))))
        .arg("--")
        .args(&argv)
        .stdin(Stdio::null());
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    cmd.stdout(writer.try_clone().context("duplicating a pipe")?)
        .stderr(writer);
    tracing::debug!("running {}: {cmd:?}", s.id());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {} (is bwrap installed?)", s.id()))?;
    // The parent's copies of the write end are gone with `cmd`.
    drop(cmd);
    let mut tail: VecDeque<String> = VecDeque::new();
    for line in BufReader::new(reader).split(b'\n') {
        let line = line.context("reading scriptlet output")?;
        let line = String::from_utf8_lossy(&line).into_owned();
        eprintln!("{}: {line}", s.package);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait().context("waiting for scriptlet")?;
    if !status.success() {
        let out: Vec<String> = tail.into();
        bail!(
            "package {}: {} scriptlet failed ({status}); last output:\n{}",
            s.package,
            s.kind.label(),
            out.join("\n")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_symlinks_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::write(r.join("usr/bin/busybox"), "x").unwrap();
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/busybox", r.join("usr/bin/sh")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/bin/sh"),
            Some(r.join("usr/bin/busybox"))
        );
        assert_eq!(resolve_in_root(r, "/bin/bash"), None);
        // An absolute link never leaves the root.
        std::os::unix::fs::symlink("/../../etc", r.join("esc")).unwrap();
        assert_eq!(resolve_in_root(r, "/esc"), None);
    }

    #[test]
    fn skip_reasons() {
        let host = crate::util::host_arch();
        assert_eq!(skip_reason(&ScriptPolicy::Run, host), None);
        assert_eq!(
            skip_reason(&ScriptPolicy::Skip("no".into()), host),
            Some("no".into())
        );
        let other = if host == "s390x" { "x86_64" } else { "s390x" };
        assert!(
            skip_reason(&ScriptPolicy::Run, other)
                .unwrap()
                .contains("not the host arch")
        );
    }
}
