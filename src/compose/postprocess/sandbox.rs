//! Run a program in bubblewrap rooted at the tree, with the same sandbox as
//! RPM scriptlets (see [`crate::compose::scripts`]): the tree bound
//! read-write at `/`, fresh /dev and /proc, a tmpfs /tmp, new pid, ipc, uts,
//! net and cgroup namespaces. Extra binds come after /tmp, so they may be
//! placed under it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Number of output lines kept for the error message of a failing program.
const TAIL_LINES: usize = 20;

/// `PATH` inside the sandbox.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// A bind mount: (host path, path inside, writable).
pub type Bind = (PathBuf, String, bool);

fn bwrap_args(tree: &Path, binds: &[Bind], env: &[(&str, String)]) -> Vec<OsString> {
    let mut a: Vec<OsString> = crate::compose::scripts::sandbox_args(tree);
    if let Ok(sde) = std::env::var("SOURCE_DATE_EPOCH") {
        a.extend(["--setenv".into(), "SOURCE_DATE_EPOCH".into(), sde.into()]);
    }
    // After the inherited one: bwrap applies --setenv in order, so an
    // explicit SOURCE_DATE_EPOCH (a rebuild's) wins.
    for (k, v) in env {
        a.extend(["--setenv".into(), (*k).into(), v.into()]);
    }
    for (host, inside, rw) in binds {
        a.push(if *rw { "--bind" } else { "--ro-bind" }.into());
        a.push(host.as_os_str().to_owned());
        a.push(inside.into());
    }
    a
}

/// Mount point directories bwrap makes in the tree; removed afterwards when
/// they are still empty, so the tree holds only what it held before. After
/// the OSTree layout is made, /tmp is a link to sysroot/tmp, which bwrap
/// needs to exist to mount its tmpfs there: it is made here, and removed too.
struct MountPoints(Vec<PathBuf>);

impl MountPoints {
    fn note(tree: &Path) -> MountPoints {
        let mut made = Vec::new();
        for d in ["dev", "proc", "tmp"] {
            let p = tree.join(d);
            match std::fs::read_link(&p) {
                Ok(target) if target.is_relative() => {
                    let t = tree.join(&target);
                    let inside = target
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)));
                    if inside
                        && std::fs::symlink_metadata(&t).is_err()
                        && std::fs::create_dir_all(&t).is_ok()
                    {
                        made.push(t);
                    }
                }
                Ok(_) => {}
                Err(_) if std::fs::symlink_metadata(&p).is_err() => made.push(p),
                Err(_) => {}
            }
        }
        MountPoints(made)
    }
}

impl Drop for MountPoints {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// Run `argv` in the sandbox; its output goes to stderr prefixed with
/// `label`. A failure names `label` and carries the last lines of output.
pub fn run(
    tree: &Path,
    argv: &[String],
    binds: &[Bind],
    env: &[(&str, String)],
    label: &str,
) -> Result<()> {
    let _cleanup = MountPoints::note(tree);
    let mut cmd = Command::new("bwrap");
    cmd.env_clear()
        .env("PATH", PATH)
        .args(bwrap_args(tree, binds, env))
        .arg("--")
        .args(argv)
        .stdin(Stdio::null());
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    cmd.stdout(writer.try_clone().context("duplicating a pipe")?)
        .stderr(writer);
    tracing::debug!("running {label}: {cmd:?}");
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {label} (is bwrap installed?)"))?;
    drop(cmd);
    let mut tail: VecDeque<String> = VecDeque::new();
    for line in BufReader::new(reader).split(b'\n') {
        let line = line.with_context(|| format!("reading the output of {label}"))?;
        let line = String::from_utf8_lossy(&line).into_owned();
        eprintln!("{label}: {line}");
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {label}"))?;
    if !status.success() {
        let out: Vec<String> = tail.into();
        bail!(
            "{label} failed ({status}); last output:\n{}",
            out.join("\n")
        );
    }
    Ok(())
}
