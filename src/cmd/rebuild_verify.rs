//! `cosa rebuild-verify`: make a recorded build again from its recorded
//! inputs and compare every artifact (src/supply/rebuild.rs tells the
//! result).
//!
//! Steps:
//! 1. the recorded build: a local one, read under the workdir lock, or one
//!    fetched from a build store (`--from-release`, as `cosa buildfetch`)
//!    into the scratch directory `tmp/rebuild-<id>-*/`;
//! 2. a scratch working directory in it: the config at the recorded commit,
//!    this working directory's cache and overrides, and a repository holding
//!    the recorded commit (imported from its ostree artifact);
//! 3. the build, pinned to the recorded inputs ([`super::build::Pinned`]),
//!    then the images and live media the recorded build has, by the code of
//!    `cosa build`, `cosa osbuild` and `cosa buildextend-live`;
//! 4. compare, print, attest; remove the scratch directory unless `--keep`.
//!
//! Nothing of the recorded build, builds.json, the refs or tmp/repo is
//! written; the statement `--attest` writes beside the build is the one
//! exception, and meta.json does not list it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cli::{
    BuildOpts, BuildSelector, BuildfetchOpts, GlobalOpts, LiveOpts, OsbuildOpts, RebuildVerifyOpts,
    ResolveOpts,
};
use crate::config::workdir::Workdir;
use crate::ostree::Repo;
use crate::rpm::lockfile::Lockfile;
use crate::sign::PgpSigner;
use crate::store::builds;
use crate::store::lock::WorkdirLock;
use crate::store::meta::{self, Meta};
use crate::supply::rebuild::{self, Report};
use crate::util::{self, time};

/// The build being verified, as recorded.
struct Recorded {
    id: String,
    arch: String,
    /// Its directory: meta.json, the lockfile, the ostree artifact.
    dir: PathBuf,
    meta: Meta,
    lockfile: Lockfile,
    /// Built with `--skip-scripts` (its compose report says so).
    skip_scripts: bool,
    /// A repository that may hold the commit's parent (the workdir's own).
    parent_repo: Option<PathBuf>,
    /// Where it came from, for messages and the statement.
    source: String,
}

pub fn run(global: &GlobalOpts, opts: RebuildVerifyOpts) -> Result<()> {
    let started = Instant::now();
    let wd = Workdir::open(&global.workdir)?;
    // A bad key or passphrase fails now, not after the rebuild.
    let signer = opts
        .attest
        .as_deref()
        .map(|key| -> Result<PgpSigner> {
            let pass = crate::sign::passphrase(opts.passphrase_file.as_deref())?;
            PgpSigner::load(key, pass)
        })
        .transpose()?;
    std::fs::create_dir_all(wd.tmp_dir())
        .with_context(|| format!("creating {}", wd.tmp_dir().display()))?;
    // Named after the build when it is known here already.
    let label = match &opts.from_release {
        None => {
            super::resolve_part(
                &wd,
                opts.target.build.as_deref(),
                opts.target.arch.as_deref(),
            )?
            .0
        }
        Some(_) => opts.target.build.clone().unwrap_or_else(|| "latest".into()),
    };
    let scratch = tempfile::Builder::new()
        .prefix(&format!("rebuild-{label}-"))
        .tempdir_in(wd.tmp_dir())
        .context("creating a scratch directory in tmp/")?;
    let result = verify(&wd, &opts, scratch.path(), started);
    if opts.keep {
        let kept = scratch.keep();
        eprintln!("Kept the scratch directory {}", kept.display());
    }
    let (rec, mut report) = match result {
        Err(e) if !opts.keep => {
            return Err(e.context("the rebuild failed (--keep keeps its scratch directory)"));
        }
        r => r?,
    };
    report.seconds = started.elapsed().as_secs_f64();

    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    if let Some(signer) = &signer {
        attest(&wd, &opts, &rec, &report, signer)?;
    }
    if !report.passed() {
        bail!(
            "build {} ({}) did not rebuild identically: {}",
            rec.id,
            rec.arch,
            report.failure_summary()
        );
    }
    eprintln!(
        "Build {} ({}) rebuilt identically: {} item(s) compared in {:.1}s",
        rec.id,
        rec.arch,
        report.rows.len(),
        report.seconds
    );
    Ok(())
}

/// Steps 1 to 3 and the comparison.
fn verify(
    wd: &Workdir,
    opts: &RebuildVerifyOpts,
    scratch: &Path,
    started: Instant,
) -> Result<(Recorded, Report)> {
    let root = scratch.join("wd");
    std::fs::create_dir_all(root.join("tmp"))?;
    let repo = Repo::open_or_init(&root.join("tmp/repo"))?;
    let rec = match &opts.from_release {
        Some(url) => fetch_release(wd, opts, url, scratch, &repo)?,
        None => local_build(wd, &opts.target, &repo)?,
    };
    eprintln!(
        "Rebuilding build {} ({}) from {} in {}",
        rec.id,
        rec.arch,
        rec.source,
        scratch.display()
    );
    let mut report = Report::new(&rec.id, &rec.arch, &rec.source);
    let pinned = pin(&rec, &repo, &mut report)?;
    let scratch_wd = scratch_workdir(wd, &rec, scratch, &root, &mut report)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }

    // 3. The build, then what the recorded build has besides. The images
    // are made in the runs the usual pipeline makes them in: qemu by `cosa
    // build`, the other platforms by one `cosa osbuild` (the disks of one
    // run share a base disk, whose aleph file names the run's first image).
    let platforms: Vec<String> = rec
        .meta
        .images
        .keys()
        .filter(|k| crate::image::target(k).is_ok())
        .cloned()
        .collect();
    let (with_build, later): (Vec<String>, Vec<String>) =
        platforms.into_iter().partition(|p| p == "qemu");
    let mut targets = vec!["ostree".to_string()];
    targets.extend(with_build);
    let build = BuildOpts {
        resolve: ResolveOpts {
            arch: Some(rec.arch.clone()),
            strict: true,
            jobs: opts.jobs,
        },
        targets,
        force: true,
        version: Some(rec.id.clone()),
        stream: None,
        skip_prune: true,
        skip_scripts: false,
    };
    super::build::build(&scratch_wd.root, build, Some(&pinned))
        .with_context(|| format!("rebuilding build {} ({})", rec.id, rec.arch))?;
    let global = GlobalOpts {
        workdir: scratch_wd.root.clone(),
    };
    let selector = BuildSelector {
        build: Some(rec.id.clone()),
        arch: Some(rec.arch.clone()),
    };
    if !later.is_empty() {
        let osbuild = OsbuildOpts {
            platforms: later,
            all: false,
            target: selector.clone(),
        };
        super::image::osbuild(&global, osbuild)
            .with_context(|| format!("rebuilding the images of build {}", rec.id))?;
    }
    if rec.meta.images.keys().any(|k| k.starts_with("live-")) {
        let live = LiveOpts { target: selector };
        super::live::buildextend_live(&global, live)
            .with_context(|| format!("rebuilding the live media of build {}", rec.id))?;
    }

    // 4. Compare.
    let dir = builds::build_dir(&scratch_wd.builds_dir(), &rec.id, &rec.arch);
    let rebuilt = Meta::read(&dir.join(meta::META_JSON))?;
    let diff = if rebuilt.ostree_commit == rec.meta.ostree_commit {
        None
    } else {
        let d = crate::ostree::diff::diff_commits(
            &repo,
            &rec.meta.ostree_commit,
            &rebuilt.ostree_commit,
        )?;
        Some(d)
    };
    report.rows.push(rebuild::commit_row(
        &rec.meta.ostree_commit,
        &rebuilt.ostree_commit,
        diff.as_ref(),
    ));
    if let Some(d) = diff {
        report.set_commit_diff(d);
    }
    report.rows.extend(rebuild::image_rows(&rec.meta, &rebuilt));
    let lock_name = format!("manifest-lock.generated.{}.json", rec.arch);
    report.rows.push(rebuild::lockfile_row(
        &lock_name,
        &rec.dir.join(&lock_name),
        &dir.join(&lock_name),
    )?);
    eprintln!(
        "Rebuilt and compared in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok((rec, report))
}

/// Step 1 for a build of this working directory, read under its lock (so
/// that no prune removes it meanwhile); its commit goes into `repo`.
fn local_build(wd: &Workdir, target: &BuildSelector, repo: &Repo) -> Result<Recorded> {
    let _lock = WorkdirLock::acquire(&wd.root)?;
    let (id, arch) = super::resolve_part(wd, target.build.as_deref(), target.arch.as_deref())?;
    let dir = builds::build_dir(&wd.builds_dir(), &id, &arch);
    let rec = recorded(&id, &arch, &dir, Some(wd.repo_dir()), repo)?;
    Ok(Recorded {
        source: dir.display().to_string(),
        ..rec
    })
}

/// Step 1 for a build of a build store, fetched as `cosa buildfetch` does
/// into a working directory of its own under `scratch`.
fn fetch_release(
    wd: &Workdir,
    opts: &RebuildVerifyOpts,
    url: &str,
    scratch: &Path,
    repo: &Repo,
) -> Result<Recorded> {
    let store = scratch.join("release");
    std::fs::create_dir_all(store.join("src"))?;
    // buildfetch needs a working directory, which has a config.
    std::os::unix::fs::symlink(
        std::fs::canonicalize(wd.config_dir())?,
        store.join("src/config"),
    )?;
    let arch = util::target_arch(opts.target.arch.as_deref())?;
    let fetch = BuildfetchOpts {
        url: url.to_string(),
        build: opts
            .target
            .build
            .clone()
            .unwrap_or_else(|| "latest".to_string()),
        arch: Some(arch.clone()),
        artifact: Vec::new(),
        endpoint_url: opts.endpoint_url.clone(),
    };
    let global = GlobalOpts {
        workdir: store.clone(),
    };
    super::buildfetch::run(&global, fetch).with_context(|| format!("fetching from {url}"))?;
    let store_wd = Workdir::open(&store)?;
    let (id, arch) = super::resolve_part(&store_wd, opts.target.build.as_deref(), Some(&arch))?;
    let dir = builds::build_dir(&store_wd.builds_dir(), &id, &arch);
    let rec = recorded(&id, &arch, &dir, None, repo)?;
    Ok(Recorded {
        source: format!("{}/builds/{id}/{arch}", url.trim_end_matches('/')),
        ..rec
    })
}

/// What the build in `dir` recorded; its commit is imported into `repo`.
fn recorded(
    id: &str,
    arch: &str,
    dir: &Path,
    parent_repo: Option<PathBuf>,
    repo: &Repo,
) -> Result<Recorded> {
    let meta = Meta::read(&dir.join(meta::META_JSON))?;
    let lock_path = dir.join(format!("manifest-lock.generated.{arch}.json"));
    if !lock_path.exists() {
        bail!(
            "build {id} ({arch}) has no {}: without the packages it used, it cannot be rebuilt",
            lock_path.display()
        );
    }
    let lockfile = Lockfile::read(&lock_path)?;
    crate::publish::oci::ensure_build_commit(repo, &meta, dir)?;
    let skip_scripts = match std::fs::read(dir.join("compose-report.json")) {
        Ok(data) => serde_json::from_slice::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| v["scripts_skipped"].as_array().cloned())
            .is_some_and(|s| s.iter().any(|e| e[1] == "--skip-scripts")),
        Err(_) => false,
    };
    Ok(Recorded {
        id: id.to_string(),
        arch: arch.to_string(),
        dir: dir.to_path_buf(),
        meta,
        lockfile,
        skip_scripts,
        parent_repo,
        source: String::new(),
    })
}

/// The inputs the rebuild takes from the recorded commit (in `repo`) and
/// build rather than from the clock and the working directory.
fn pin(rec: &Recorded, repo: &Repo, report: &mut Report) -> Result<super::build::Pinned> {
    let commit = repo.read_commit(&rec.meta.ostree_commit)?;
    let previous = |file: &str| -> Result<Option<String>> {
        let from = |r: &Repo, c: &str| -> Result<Option<String>> {
            Ok(r.read_commit_file(c, file)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        if let (Some(parent), Some(p)) = (&commit.parent, &rec.parent_repo)
            && let Ok(r) = Repo::open(p)
            && r.has_object(parent, crate::ostree::ObjectType::Commit)
        {
            return from(&r, parent);
        }
        // Without the parent, the commit's own: the ids the build kept are
        // all in it, so the rebuild keeps the same ones.
        from(repo, &rec.meta.ostree_commit)
    };
    if let Some(parent) = &commit.parent {
        let here = rec
            .parent_repo
            .as_ref()
            .and_then(|p| Repo::open(p).ok())
            .is_some_and(|r| r.has_object(parent, crate::ostree::ObjectType::Commit));
        if !here {
            eprintln!(
                "Note: the parent commit {parent} is not here; users and groups keep the ids \
                 of the build's own /usr/lib/passwd and /usr/lib/group"
            );
        }
    }
    let repo_timestamps = commit
        .metadata
        .get("rpmostree.rpmmd-repos")
        .and_then(|v| v.as_array())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            let d = e.as_dict()?;
            Some((
                d.get("id")?.as_str()?.to_string(),
                d.get("timestamp")?.as_u64_be()?,
            ))
        })
        .collect();
    let gitrev = rec.meta.config_gitrev.clone();
    if rec.skip_scripts {
        report
            .warnings
            .push("the build ran with --skip-scripts; so does the rebuild".to_string());
    }
    Ok(super::build::Pinned {
        timestamp: commit.timestamp,
        parent: commit.parent.clone(),
        previous_passwd: previous("usr/lib/passwd")?,
        previous_group: previous("usr/lib/group")?,
        lockfile: rec.lockfile.clone(),
        config_gitrev: gitrev,
        config_dirty: rec.meta.config_dirty.unwrap_or(true),
        repo_timestamps,
        skip_scripts: rec.skip_scripts,
    })
}

/// Step 2: the rebuild's working directory `root`: `src/config` the config
/// as the build had it, `cache` and `overrides/*` this working directory's.
fn scratch_workdir(
    wd: &Workdir,
    rec: &Recorded,
    scratch: &Path,
    root: &Path,
    report: &mut Report,
) -> Result<Workdir> {
    std::fs::create_dir_all(root.join("src"))?;
    let config = config_source(wd, rec, scratch, report)?;
    std::os::unix::fs::symlink(&config, root.join("src/config"))
        .with_context(|| format!("linking {} into {}", config.display(), root.display()))?;
    if wd.cache_dir().is_dir() {
        std::os::unix::fs::symlink(wd.cache_dir(), root.join("cache"))?;
    }
    std::fs::create_dir_all(root.join("overrides"))?;
    for (dir, what) in [
        (wd.overrides_rpm(), "rpm"),
        (wd.overrides_rootfs(), "rootfs"),
    ] {
        if !dir.is_dir() {
            continue;
        }
        std::os::unix::fs::symlink(&dir, root.join("overrides").join(what))?;
        if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
            report.warnings.push(format!(
                "{} is not empty: the rebuild uses it as it is now (a build records only \
                 whether overrides were active)",
                dir.display()
            ));
        }
    }
    Workdir::open(root)
}

/// The config directory to rebuild from: this working directory's as it
/// is, or the recorded commit of its repository checked out under
/// `scratch` when the config has moved on since a clean build.
fn config_source(
    wd: &Workdir,
    rec: &Recorded,
    scratch: &Path,
    report: &mut Report,
) -> Result<PathBuf> {
    let current = std::fs::canonicalize(wd.config_dir())
        .with_context(|| format!("resolving {}", wd.config_dir().display()))?;
    let (head, dirty_now) = crate::config::git::state(&current);
    let Some(recorded) = rec.meta.config_gitrev.as_deref() else {
        report.warnings.push(format!(
            "build {} recorded no config commit: rebuilding from the config as it is now ({})",
            rec.id,
            current.display()
        ));
        return Ok(current);
    };
    let dirty_then = rec.meta.config_dirty.unwrap_or(true);
    if head.as_deref() == Some(recorded) && !dirty_now {
        if dirty_then {
            report.warnings.push(format!(
                "build {} was made from config commit {recorded} with uncommitted changes; the \
                 rebuild uses that commit as it is, without them",
                rec.id
            ));
        }
        return Ok(current);
    }
    if dirty_then && head.as_deref() == Some(recorded) {
        report.warnings.push(format!(
            "build {} was made from config commit {recorded} with uncommitted changes, which no \
             commit holds: the rebuild uses the config as it is now ({}, with uncommitted changes)",
            rec.id,
            current.display()
        ));
        return Ok(current);
    }
    let co = crate::config::git::checkout(&current, recorded, &scratch.join("config"))?;
    eprintln!(
        "The config is at {} now{}; checked out the build's commit {recorded}",
        head.as_deref().unwrap_or("no commit"),
        if dirty_now {
            " with uncommitted changes"
        } else {
            ""
        }
    );
    if dirty_then {
        report.warnings.push(format!(
            "build {} was made from config commit {recorded} with uncommitted changes; the \
             rebuild uses that commit without them",
            rec.id
        ));
    }
    if !co.submodules.is_empty() {
        report.warnings.push(format!(
            "the config commit has submodules, which are not checked out: {}",
            co.submodules.join(", ")
        ));
    }
    Ok(co.config)
}

/// Write the signed statement: beside a local build (under the workdir
/// lock), in the working directory for a fetched one.
fn attest(
    wd: &Workdir,
    opts: &RebuildVerifyOpts,
    rec: &Recorded,
    report: &Report,
    signer: &PgpSigner,
) -> Result<()> {
    let st = rebuild::statement(
        report,
        &rec.meta,
        &rec.source,
        &time::format_rfc3339(time::now_secs()),
    );
    let env = crate::supply::dsse::sign(&st, signer, "rebuild statement")?;
    let name = builds::rebuild_statement_name(&rec.meta.name, &rec.id, &rec.arch);
    let (path, _lock) = if opts.from_release.is_some() {
        (wd.root.join(&name), None)
    } else {
        let lock = WorkdirLock::acquire(&wd.root)?;
        if !rec.dir.join(meta::META_JSON).exists() {
            bail!(
                "build {} ({}) was removed while it was rebuilt; no statement written",
                rec.id,
                rec.arch
            );
        }
        (rec.dir.join(&name), Some(lock))
    };
    util::write_json_atomic(&path, &env)?;
    eprintln!(
        "Wrote the rebuild statement ({}, signed by {}) to {}",
        st["predicate"]["verificationResult"]
            .as_str()
            .unwrap_or_default(),
        signer.fingerprint,
        path.display()
    );
    Ok(())
}
