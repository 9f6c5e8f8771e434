//! Helpers for tests that run the real `cosa` binary.
#![allow(dead_code)]

pub mod kill;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `cosa` with `--workdir WD` and a clean environment for CI-like output.
pub fn cosa(wd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cosa"));
    c.env("COSA_WORKDIR", wd)
        .env("CI", "true")
        .env_remove("RUST_LOG");
    c
}

/// Run and return output; panics with both streams when the exit status is not `ok`.
pub fn run(cmd: &mut Command, ok: bool) -> Output {
    let out = cmd.output().expect("running cosa");
    if out.status.success() != ok {
        panic!(
            "{:?} exited {} (wanted success={ok})\nstdout:\n{}\nstderr:\n{}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Debian's ostree on the workdir's repo; its stdout (panics on failure).
pub fn ostree(wd: &Path, args: &[&str]) -> String {
    let o = run(
        Command::new("ostree")
            .arg(format!("--repo={}", wd.join("tmp/repo").display()))
            .args(args),
        true,
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The SPDX reference validator scripts/install-deps.sh puts in a venv.
pub fn pyspdxtools() -> PathBuf {
    let candidates = [
        std::env::var_os("COSA_SPDX_VENV").map(PathBuf::from),
        Some(PathBuf::from("/opt/cosa-venv")),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/cosa-venv")),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|v| v.join("bin/pyspdxtools"))
        .find(|p| p.is_file())
        .expect("pyspdxtools (run scripts/install-deps.sh)")
}

/// Run a tool that must succeed; its stdout as bytes. `what` names the step.
pub fn sh_bytes(what: &str, cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// [`sh_bytes`], as text.
pub fn sh(what: &str, cmd: &mut Command) -> String {
    String::from_utf8_lossy(&sh_bytes(what, cmd)).into_owned()
}

/// `rpm --dbpath DB -qa --qf QF`, one line per package, sorted.
pub fn rpm_qa(dbpath: &Path, qf: &str) -> Vec<String> {
    let out = sh(
        "rpm -qa",
        Command::new("rpm")
            .arg("--dbpath")
            .arg(dbpath)
            .args(["-qa", "--qf", qf]),
    );
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config dir with `manifest.yaml` (given text) and `test.repo` pointing at `repo`.
pub fn config_dir(root: &Path, manifest: &str, repo: &Path) -> PathBuf {
    let cfg = root.join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("manifest.yaml"), manifest).unwrap();
    std::fs::write(
        cfg.join("test.repo"),
        format!(
            "[test]\nname=test\nbaseurl=file://{}\ngpgcheck=0\n",
            repo.display()
        ),
    )
    .unwrap();
    cfg
}

/// `cosa init --transient CONFIG` in `root/wd`; returns the workdir.
pub fn init_transient(root: &Path, cfg: &Path) -> PathBuf {
    let wd = root.join("wd");
    run(cosa(&wd).arg("init").arg("--transient").arg(cfg), true);
    wd
}

/// The query of an installed tree by Debian's rpm is not possible (no rpmdb),
/// so compare trees by listing: relative path, type, mode, owner, link target, size.
pub fn list_tree(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut v = Vec::new();
    fn walk(root: &Path, dir: &Path, v: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let kind = if md.is_dir() {
                "d".to_string()
            } else if md.file_type().is_symlink() {
                format!("l->{}", std::fs::read_link(&p).unwrap().display())
            } else {
                format!("f{}", md.len())
            };
            let mode = if md.file_type().is_symlink() {
                0
            } else {
                md.mode() & 0o7777
            };
            v.push(format!("{rel} {kind} {mode:o} {}:{}", md.uid(), md.gid()));
            if md.is_dir() {
                walk(root, &p, v);
            }
        }
    }
    walk(root, root, &mut v);
    v
}

/// A scratch dir for the current test process under cargo's test tmp dir,
/// `<name>-<pid>`, made empty. nextest runs each test in its own process, so
/// a per-process copy keeps them from rebuilding each other's workdirs;
/// copies left by processes that are gone are removed.
pub fn process_dir(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let prefix = format!("{name}-");
    if let Ok(rd) = std::fs::read_dir(tmp) {
        for e in rd.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = file.strip_prefix(&prefix)
                && pid.bytes().all(|b| b.is_ascii_digit())
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = tmp.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Regular files of a FAT file system, as `EFI/...`, sorted. `image` is
/// mtools' image spec: a file, or `FILE@@OFFSET` for one inside a disk.
pub fn fat_files(image: &str) -> Vec<String> {
    let out = sh_bytes(
        "mdir",
        Command::new("mdir")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(image)
            .args(["-/", "-b", "::/"]),
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.ends_with('/'))
        .filter_map(|l| l.strip_prefix("::/"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Regular files under `dir` in `commit` of the working directory's repo
/// (`ostree ls -R`), relative to `dir`, sorted.
pub fn commit_files(wd: &Path, commit: &str, dir: &str) -> Vec<String> {
    let out = sh_bytes(
        "ostree ls -R",
        Command::new("ostree")
            .arg(format!("--repo={}", wd.join("tmp/repo").display()))
            .args(["ls", "-R"])
            .arg(commit)
            .arg(dir),
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .filter_map(|p| p.strip_prefix(&format!("{dir}/")))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}
