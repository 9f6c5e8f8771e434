//! `cosa buildfetch`: a build from a remote (or another local) build store
//! into this working directory, ready for `cosa buildextend-*`.
//!
//! Steps, under the workdir lock:
//! 1. read the source's builds.json and pick the build and arches;
//! 2. per arch, fetch into a staging dir (or into the existing arch dir when
//!    the build is already here: files with the right sha256 are kept),
//!    meta.json last, and publish it into builds.json (the commit point);
//! 3. merge the source's builds.json into the local one (its order wins);
//! 4. import each fetched commit into tmp/repo from its ostree artifact.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use futures_util::StreamExt;
use indicatif::HumanBytes;

use crate::cli::{BuildfetchOpts, GlobalOpts};
use crate::config::workdir::Workdir;
use crate::ostree::ObjectType;
use crate::publish::fetch::Source;
use crate::publish::merge;
use crate::store::builds::{self, BuildsJson, StagedBuild};
use crate::store::lock::WorkdirLock;
use crate::store::meta::{self, Meta};
use crate::util::{self, progress::Progress};

/// Downloads in flight at once.
const JOBS: usize = 4;

pub fn run(global: &GlobalOpts, opts: BuildfetchOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    wd.ensure_dirs()?;
    let lock = WorkdirLock::acquire(&wd.root)?;
    let builds_dir = wd.builds_dir();
    builds::init(&builds_dir)?;
    builds::recover(&builds_dir, &lock)?.report();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(JOBS)
        .thread_name("cosa-fetch")
        .enable_all()
        .build()
        .context("starting the download runtime")?;
    let fetched = rt.block_on(fetch(&builds_dir, &opts, &lock))?;
    // 4. The commits, so that images can be made from the fetched build.
    let repo = crate::ostree::Repo::open_or_init(&wd.repo_dir())?;
    for f in &fetched {
        if repo.has_object(&f.commit, ObjectType::Commit) {
            continue;
        }
        let Some(tar) = &f.ostree else { continue };
        eprintln!("Importing commit {} from {}", f.commit, tar.display());
        let got = crate::publish::oci::import_artifact(&repo, tar)?;
        ensure!(
            got == f.commit,
            "{} holds commit {got}, but meta.json says {}",
            tar.display(),
            f.commit
        );
    }
    Ok(())
}

/// One fetched build arch.
struct Fetched {
    commit: String,
    /// Its ostree artifact, if the build has one.
    ostree: Option<PathBuf>,
}

async fn fetch(
    builds_dir: &Path,
    opts: &BuildfetchOpts,
    lock: &WorkdirLock,
) -> Result<Vec<Fetched>> {
    let src = Source::open(&opts.url, opts.endpoint_url.clone()).await?;
    // 1. The remote list.
    let bj_rel = "builds/builds.json";
    let text = src.get_bytes(bj_rel).await?.with_context(|| {
        format!(
            "{} does not exist: no build store there",
            src.describe(bj_rel)
        )
    })?;
    let remote = BuildsJson::parse(&String::from_utf8_lossy(&text))
        .with_context(|| format!("parsing {}", src.describe(bj_rel)))?;
    let id = match opts.build.as_str() {
        "latest" => remote
            .latest()
            .with_context(|| format!("{} lists no builds", src.describe(bj_rel)))?
            .to_string(),
        id => id.to_string(),
    };
    builds::check_build_id(&id)?;
    let entry = remote
        .get(&id)
        .with_context(|| format!("{} does not list build {id}", src.describe(bj_rel)))?;
    let arches = match opts.arch.as_deref() {
        Some("all") => entry.arches.clone(),
        a => {
            let a = util::target_arch(a)?;
            if !entry.arches.contains(&a) {
                bail!(
                    "build {id} has no {a} part in {} (it has {}); pass --arch",
                    src.describe(bj_rel),
                    entry.arches.join(", ")
                );
            }
            vec![a]
        }
    };
    // 2. Each arch.
    let mut fetched = Vec::new();
    for arch in &arches {
        fetched.push(fetch_arch(&src, builds_dir, &id, arch, &opts.artifact, lock).await?);
    }
    // 3. The list: the source's order and entries, ours merged in.
    let local = BuildsJson::load(builds_dir)?;
    let mut merged = merge::merge(&remote, &local);
    merged.bump_timestamp_and_write(builds_dir)?;
    builds::set_latest(builds_dir, merged.latest())?;
    eprintln!(
        "Merged {} into builds/builds.json ({} build(s) listed)",
        src.describe(bj_rel),
        merged.builds.len()
    );
    Ok(fetched)
}

async fn fetch_arch(
    src: &Source,
    builds_dir: &Path,
    id: &str,
    arch: &str,
    wanted: &[String],
    lock: &WorkdirLock,
) -> Result<Fetched> {
    let rel = |name: &str| format!("builds/{id}/{arch}/{name}");
    let meta_rel = rel(meta::META_JSON);
    let meta_bytes = src
        .get_bytes(&meta_rel)
        .await?
        .with_context(|| format!("{} does not exist", src.describe(&meta_rel)))?;
    let m = Meta::parse(&meta_bytes, &src.describe(&meta_rel))?;
    ensure!(
        m.buildid == id,
        "{} is for build {}, not {id}",
        src.describe(&meta_rel),
        m.buildid
    );
    // What to bring: the ostree artifact and the chosen ones (with .sig if any).
    let mut names: Vec<&str> = Vec::new();
    if m.images.contains_key("ostree") {
        names.push("ostree");
    } else {
        eprintln!(
            "warning: build {id} {arch} has no ostree artifact; its commit cannot be imported"
        );
    }
    // The build's SBOM and provenance are small and describe it: they come
    // along like commitmeta.json.
    for k in ["sbom", "provenance"] {
        if m.images.contains_key(k) {
            names.push(k);
        }
    }
    for w in wanted {
        if w == "all" {
            names.extend(m.images.keys().map(String::as_str));
        } else if m.images.contains_key(w.as_str()) {
            names.push(w);
        } else {
            bail!(
                "build {id} {arch} has no artifact {w:?} (it has: {})",
                m.images.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    names.sort();
    names.dedup();
    let mut files: Vec<(String, Option<String>, bool)> = Vec::new(); // name, sha256, required
    for n in &names {
        let art = &m.images[*n];
        if art.path.contains('/') || art.path.starts_with('.') {
            bail!("images.{n} has path {:?}, not a file name", art.path);
        }
        files.push((art.path.clone(), Some(art.sha256.clone()), true));
        files.push((format!("{}.sig", art.path), None, false));
    }
    files.push(("commitmeta.json".into(), None, false));
    files.push((format!("manifest-lock.generated.{arch}.json"), None, false));

    let listed = BuildsJson::load(builds_dir)?.has_arch(id, arch);
    let staged = if listed {
        None
    } else {
        Some(StagedBuild::new(builds_dir, lock)?)
    };
    let final_dir = builds::build_dir(builds_dir, id, arch);
    let dir = staged
        .as_ref()
        .map(|s| s.path().to_path_buf())
        .unwrap_or_else(|| final_dir.clone());
    let total: u64 = names.iter().filter_map(|n| m.images[*n].size).sum();
    let progress = Progress::new(&format!("Fetching {id} {arch}"), total, true);
    let results: Vec<Result<(u64, bool)>> = futures_util::stream::iter(files.iter())
        .map(|(name, sha256, required)| {
            let dest = dir.join(name);
            let r = rel(name);
            let progress = &progress;
            async move {
                if let Some(want) = sha256
                    && dest.is_file()
                {
                    let d = dest.clone();
                    let (have, size) =
                        tokio::task::spawn_blocking(move || crate::util::digest::sha256_file(&d))
                            .await
                            .context("hashing task")??;
                    if have.eq_ignore_ascii_case(want) {
                        progress.inc(size);
                        return Ok((0, true));
                    }
                }
                match src
                    .get_file(&r, &dest, sha256.as_deref(), &|n| progress.inc(n))
                    .await?
                {
                    Some(n) => Ok((n, false)),
                    None if *required => bail!("{} does not exist", src.describe(&r)),
                    None => Ok((0, false)),
                }
            }
        })
        .buffer_unordered(JOBS)
        .collect()
        .await;
    let (mut got, mut bytes, mut kept) = (0, 0, 0);
    for r in results {
        let (n, k) = r?;
        if k {
            kept += 1;
        } else if n > 0 {
            got += 1;
            bytes += n;
        }
    }
    // meta.json last: byte for byte as the source has it.
    util::write_atomic(&dir.join(meta::META_JSON), &meta_bytes)?;
    progress.finish(&format!(
        "{} file(s) fetched ({}), {kept} already here",
        got + 1,
        HumanBytes(bytes + meta_bytes.len() as u64)
    ));
    if let Some(s) = staged {
        s.publish(builds_dir, id, arch, lock)?;
    }
    let ostree = m.images.get("ostree").map(|a| final_dir.join(&a.path));
    Ok(Fetched {
        commit: m.ostree_commit.clone(),
        ostree,
    })
}
