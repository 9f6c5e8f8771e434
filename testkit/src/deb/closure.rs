//! The dependency closure of some Debian packages, as `apt-get install
//! --download-only` computes it for a system with nothing installed.
//!
//! apt runs on a private state in `cache/apt-closure-<debarch>/`: its own
//! package lists (from the host's sources, read once with `apt-get
//! update`), its own package cache, an empty dpkg status file (so nothing
//! counts as installed, and the host's dpkg database is never read or
//! written), no host pinning, no Recommends or Suggests: the closure is
//! Depends + Pre-Depends, alternatives resolved as apt resolves them (the
//! first installable one, unless another is already in the set, so naming
//! `usr-is-merged` before the packages that depend on `usrmerge |
//! usr-is-merged` keeps the usrmerge script and perl out).
//!
//! Essential packages: apt does **not** add them by itself for `install`
//! (it assumes they are installed; with an empty status file, `apt-get
//! install -s systemd` installs no bash, coreutils or base-files). They come
//! in only when something depends on them (dpkg, tar and perl-base do get
//! pulled that way). The closure is therefore exactly what is asked for; a
//! caller that wants the Essential set names apt's pattern `?essential` in
//! `packages` (apt-get accepts patterns there).
//!
//! The .debs are downloaded into the private archive directory
//! (`cache/apt-closure-<debarch>/cache/archives/`, named as apt names them,
//! so a rerun downloads nothing), and the file list of each closure is
//! recorded (`closure-<key>.txt`), so a rerun does not run apt at all.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use cosa::util::cmd::CommandRunExt;

/// The private apt state for `debarch`: its directory and apt's options.
/// Reads the package lists on first use.
pub fn apt_state(cache: &Path, debarch: &str) -> Result<(PathBuf, Vec<String>)> {
    let state = cache.join(format!("apt-closure-{debarch}"));
    let lists = state.join("lists");
    let status = state.join("status");
    let prefs = state.join("preferences.d");
    for d in [
        lists.join("partial"),
        state.join("cache/archives/partial"),
        prefs.clone(),
        state.join("log"),
    ] {
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    if !status.exists() {
        std::fs::write(&status, "").with_context(|| format!("creating {}", status.display()))?;
    }
    let opts: Vec<String> = [
        format!("APT::Architecture={debarch}"),
        format!("APT::Architectures::={debarch}"),
        format!("Dir::State={}", state.display()),
        format!("Dir::State::Lists={}", lists.display()),
        format!("Dir::State::status={}", status.display()),
        format!("Dir::Cache={}", state.join("cache").display()),
        format!("Dir::Log={}", state.join("log").display()),
        format!(
            "Dir::Etc::Preferences={}",
            state.join("preferences").display()
        ),
        format!("Dir::Etc::PreferencesParts={}", prefs.display()),
        "APT::Install-Recommends=false".to_string(),
        "APT::Install-Suggests=false".to_string(),
        "Acquire::Languages=none".to_string(),
        "Debug::NoLocking=1".to_string(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect();
    let ready = std::fs::read_dir(&lists).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
    });
    if !ready {
        eprintln!(
            "Reading Debian's {debarch} package lists into {}",
            state.display()
        );
        Command::new("apt-get")
            .args(["-q", "update"])
            .args(&opts)
            .run_capture(&format!(
                "apt-get update for {debarch} (is the Debian mirror reachable?)"
            ))?;
    }
    Ok((state, opts))
}

/// An exclusive lock on `path` (created), held until the file is dropped:
/// two processes fetching into one apt state wait for each other.
fn lock(path: &Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("locking {}", path.display()));
    }
    Ok(f)
}

/// The .deb file names of the closure of `packages`, from `apt-get install
/// --print-uris` (lines `'URI' FILE SIZE HASH`). apt leaves out what its
/// archive directory already holds, so it is shown an empty one here.
fn closure_files(state: &Path, opts: &[String], packages: &[&str]) -> Result<Vec<String>> {
    let empty = state.join("no-archives");
    if empty.exists() {
        std::fs::remove_dir_all(&empty).with_context(|| format!("clearing {}", empty.display()))?;
    }
    std::fs::create_dir_all(empty.join("partial"))
        .with_context(|| format!("creating {}", empty.display()))?;
    let out = Command::new("apt-get")
        .args(opts)
        .arg("-o")
        .arg(format!("Dir::Cache::archives={}/", empty.display()))
        .args(["install", "--print-uris", "-qq", "-y"])
        .args(packages)
        .run_capture(&format!("asking apt for the closure of {packages:?}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut files = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('\'')) {
        let file = line
            .split_whitespace()
            .nth(1)
            .with_context(|| format!("no file name in apt's line {line:?}"))?;
        if !file.ends_with(".deb") {
            bail!("apt names {file:?}, not a .deb, in {line:?}");
        }
        files.push(file.to_string());
    }
    if files.is_empty() {
        bail!("apt-get install --print-uris {packages:?} names no package:\n{text}");
    }
    Ok(files)
}

/// Fetch the Depends + Pre-Depends closure of `packages` (names, or apt
/// patterns such as `?essential`) for `debarch` (`amd64`, `arm64`...) and
/// return the .deb paths, in apt's order. See the module documentation.
pub fn fetch_closure(cache: &Path, packages: &[&str], debarch: &str) -> Result<Vec<PathBuf>> {
    use sha2::Digest;
    if packages.is_empty() {
        bail!("no packages to fetch the closure of");
    }
    let (state, opts) = apt_state(cache, debarch)?;
    let _lock = lock(&state.join("closure.lock"))?;
    let archives = state.join("cache/archives");
    let key = {
        let mut h = sha2::Sha256::new();
        // The record's format: a new one makes old records unused.
        h.update(b"closure-v2\0");
        h.update(debarch.as_bytes());
        for p in packages {
            h.update([0u8]);
            h.update(p.as_bytes());
        }
        hex::encode(h.finalize())[..24].to_string()
    };
    let record = state.join(format!("closure-{key}.txt"));
    if let Ok(text) = std::fs::read_to_string(&record) {
        let paths: Vec<PathBuf> = text.lines().map(|f| archives.join(f)).collect();
        if !paths.is_empty() && paths.iter().all(|p| p.is_file()) {
            return Ok(paths);
        }
    }
    let files = closure_files(&state, &opts, packages)?;
    let missing = files.iter().filter(|f| !archives.join(f).is_file()).count();
    if missing > 0 {
        eprintln!(
            "Downloading {missing} of the {} .debs of {packages:?} ({debarch}) from the Debian mirror",
            files.len()
        );
        Command::new("apt-get")
            .args(&opts)
            .args(["install", "--download-only", "-qq", "-y"])
            .args(packages)
            .run_capture(&format!(
                "downloading the closure of {packages:?} for {debarch} (is the Debian mirror reachable?)"
            ))?;
    }
    let paths: Vec<PathBuf> = files.iter().map(|f| archives.join(f)).collect();
    if let Some(p) = paths.iter().find(|p| !p.is_file()) {
        bail!("apt-get install --download-only left no {}", p.display());
    }
    let tmp = state.join(format!(".closure-{key}.tmp"));
    std::fs::write(&tmp, files.join("\n") + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &record)
        .with_context(|| format!("moving {} to {}", tmp.display(), record.display()))?;
    Ok(paths)
}
