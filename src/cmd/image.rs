//! `cosa buildextend-{qemu,metal,metal4k}` and the image step of `cosa
//! build`: make disk images from a build's commit and record them in its
//! meta.json.

use anyhow::{Result, ensure};

use crate::cli::{BuildextendOpts, GlobalOpts, OsbuildOpts};
use crate::config::workdir::Workdir;
use crate::image::{self, ImageBuild};
use crate::store::builds::{self, BuildsJson};
use crate::store::lock::WorkdirLock;
use crate::store::meta::{self, Artifact, Meta};
use crate::util::{self, time};

pub fn buildextend(global: &GlobalOpts, opts: BuildextendOpts) -> Result<()> {
    extend(
        global,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
        &[opts.platform],
    )
}

pub fn osbuild(global: &GlobalOpts, opts: OsbuildOpts) -> Result<()> {
    let platforms: Vec<String> = if opts.all {
        image::platforms_for_arch(&util::target_arch(opts.target.arch.as_deref())?)
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        opts.platforms
    };
    extend(
        global,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
        &platforms,
    )
}

fn extend(
    global: &GlobalOpts,
    build: Option<&str>,
    arch: Option<&str>,
    platforms: &[String],
) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    let lock = WorkdirLock::acquire(&wd.root)?;
    let builds = BuildsJson::load(&wd.builds_dir())?;
    let arch = util::target_arch(arch)?;
    let id = builds.resolve(build)?;
    ensure!(
        builds.has_arch(&id, &arch),
        "build {id} has no {arch} part; `cosa list` shows the builds and their arches"
    );
    let mut unique: Vec<String> = Vec::new();
    for p in platforms {
        if !unique.contains(p) {
            unique.push(p.clone());
        }
    }
    add_images(&wd, &lock, &id, &arch, &unique)
}

/// Make `platforms` for build `id` of `arch` and record them in its meta.json.
pub(crate) fn add_images(
    wd: &Workdir,
    _lock: &WorkdirLock,
    id: &str,
    arch: &str,
    platforms: &[String],
) -> Result<()> {
    if platforms.is_empty() {
        return Ok(());
    }
    let builds_dir = wd.builds_dir();
    let build_dir = builds::build_dir(&builds_dir, id, arch);
    let meta_path = meta::meta_path(&builds_dir, id, arch);
    let m = Meta::read(&meta_path)?;
    for p in builds::remove_partial_artifacts(&build_dir, &m) {
        eprintln!("Removed leftover of an interrupted run: {}", p.display());
    }
    let repo = crate::ostree::Repo::open_or_init(&wd.repo_dir())?;
    crate::publish::oci::ensure_build_commit(&repo, &m, &build_dir)?;
    let scratch = image::scratch_dir(&wd.tmp_dir())?;
    let timestamp = time::parse_rfc3339(&m.ostree_timestamp).unwrap_or(0);
    let ostree_ref = m
        .ostree_ref
        .clone()
        .unwrap_or_else(|| m.ostree_commit.clone());
    let ostree_archive = m
        .images
        .get("ostree")
        .map(|a| a.path.clone())
        .unwrap_or_default();
    let made = image::build_images(
        &ImageBuild {
            repo: &repo,
            commit: &m.ostree_commit,
            name: &m.name,
            buildid: id,
            ostree_ref: &ostree_ref,
            ostree_archive: &ostree_archive,
            arch,
            config_dir: &wd.config_dir(),
            build_dir: &build_dir,
            work: scratch.path(),
            timestamp,
        },
        platforms,
    )?;
    // Re-read: the meta.json on disk is the truth, we only add images.
    let mut m = Meta::read(&meta_path)?;
    // Digests of big disks, on every core.
    use rayon::prelude::*;
    let digests: Vec<(String, u64)> = made
        .par_iter()
        .map(|img| crate::util::digest::sha256_file(&build_dir.join(&img.file)))
        .collect::<Result<_>>()?;
    for (img, (sha256, size)) in made.iter().zip(digests) {
        let old = m.images.insert(
            img.platform.clone(),
            Artifact {
                path: img.file.clone(),
                sha256,
                size: Some(size),
                skip_compression: img.skip_compression.then_some(true),
                extra: img.extra.clone(),
                ..Default::default()
            },
        );
        if let Some(old) = old
            && old.path != img.file
        {
            let _ = std::fs::remove_file(build_dir.join(&old.path));
        }
    }
    m.write(&meta_path)?;
    for img in &made {
        eprintln!("Recorded images.{} = {}", img.platform, img.file);
    }
    Ok(())
}
