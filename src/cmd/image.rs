//! `cosa buildextend-{qemu,metal,metal4k}` and the image step of `cosa
//! build`: make disk images from a build's commit and record them in its
//! meta.json.

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{BuildextendOpts, GlobalOpts, OsbuildOpts};
use crate::config::workdir::Workdir;
use crate::image::{self, ImageBuild, MadeImage};
use crate::ostree::Repo;
use crate::store::builds;
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
    let (id, arch) = super::resolve_part(&wd, build, arch)?;
    let mut unique: Vec<String> = Vec::new();
    for p in platforms {
        if !unique.contains(p) {
            unique.push(p.clone());
        }
    }
    add_images(&wd, &lock, &id, &arch, &unique)
}

/// One arch of a build, opened to add artifacts made from its commit:
/// leftovers of an interrupted run removed, the commit in the repo, a
/// scratch directory.
pub(crate) struct OpenBuild {
    id: String,
    arch: String,
    build_dir: PathBuf,
    meta_path: PathBuf,
    meta: Meta,
    repo: Repo,
    scratch: crate::util::scratch::ScratchDir,
    ostree_ref: String,
    ostree_archive: String,
    config_dir: PathBuf,
    timestamp: i64,
}

impl OpenBuild {
    pub(crate) fn open(wd: &Workdir, _lock: &WorkdirLock, id: &str, arch: &str) -> Result<Self> {
        let builds_dir = wd.builds_dir();
        let build_dir = builds::build_dir(&builds_dir, id, arch);
        let meta_path = meta::meta_path(&builds_dir, id, arch);
        let meta = Meta::read(&meta_path)?;
        for p in builds::remove_partial_artifacts(&build_dir, &meta) {
            eprintln!("Removed leftover of an interrupted run: {}", p.display());
        }
        let repo = Repo::open_or_init(&wd.repo_dir())?;
        crate::publish::oci::ensure_build_commit(&repo, &meta, &build_dir)?;
        Ok(OpenBuild {
            id: id.to_string(),
            arch: arch.to_string(),
            scratch: image::scratch_dir(&wd.tmp_dir())?,
            timestamp: time::parse_rfc3339(&meta.ostree_timestamp).unwrap_or(0),
            ostree_ref: meta
                .ostree_ref
                .clone()
                .unwrap_or_else(|| meta.ostree_commit.clone()),
            ostree_archive: meta
                .images
                .get("ostree")
                .map(|a| a.path.clone())
                .unwrap_or_default(),
            config_dir: wd.config_dir(),
            build_dir,
            meta_path,
            meta,
            repo,
        })
    }

    /// What the image stage needs to make artifacts of this build.
    pub(crate) fn image_build(&self) -> ImageBuild<'_> {
        ImageBuild {
            repo: &self.repo,
            commit: &self.meta.ostree_commit,
            name: &self.meta.name,
            buildid: &self.id,
            ostree_ref: &self.ostree_ref,
            ostree_archive: &self.ostree_archive,
            arch: &self.arch,
            config_dir: &self.config_dir,
            build_dir: &self.build_dir,
            work: self.scratch.path(),
            timestamp: self.timestamp,
        }
    }

    /// Record `made` in meta.json (digests on every core), replacing an
    /// artifact of the same key (listed, or `withdrawn` from meta.json by
    /// [`OpenBuild::replace`]) and deleting its old file if it had another
    /// name (a compressed image).
    fn record(&self, made: &[MadeImage], withdrawn: &[(String, Artifact)]) -> Result<()> {
        use rayon::prelude::*;
        let digests: Vec<(String, u64)> = made
            .par_iter()
            .map(|img| crate::util::digest::sha256_file(&self.build_dir.join(&img.file)))
            .collect::<Result<_>>()?;
        // Re-read: the meta.json on disk is the truth, we only add images.
        let mut m = Meta::read(&self.meta_path)?;
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
            let old = old.or_else(|| {
                withdrawn
                    .iter()
                    .find(|(k, _)| k == &img.platform)
                    .map(|(_, a)| a.clone())
            });
            if let Some(old) = old
                && old.path != img.file
            {
                let _ = std::fs::remove_file(self.build_dir.join(&old.path));
            }
        }
        m.write(&self.meta_path)?;
        for img in made {
            eprintln!("Recorded images.{} = {}", img.platform, img.file);
        }
        Ok(())
    }
}

impl OpenBuild {
    /// Run `make`, which makes (and renames into the build dir) the
    /// artifacts `keys`, then record what it made. Artifacts meta.json
    /// already lists under those keys are withdrawn from meta.json first:
    /// a new image is renamed over the old file as soon as it is made, and
    /// a kill before the record would otherwise leave meta.json naming the
    /// old digest for the new bytes. After a kill the withdrawn images are
    /// unlisted (the next run removes them, the rerun makes them again);
    /// after an error, each one whose file is still the recorded one is
    /// listed again, so a failed run loses nothing it did not replace.
    pub(crate) fn replace(
        &self,
        keys: &[String],
        make: impl FnOnce() -> Result<Vec<MadeImage>>,
    ) -> Result<()> {
        let mut m = Meta::read(&self.meta_path)?;
        let withdrawn: Vec<(String, Artifact)> = keys
            .iter()
            .filter_map(|k| m.images.remove(k).map(|a| (k.clone(), a)))
            .collect();
        if !withdrawn.is_empty() {
            m.write(&self.meta_path)?;
        }
        match make() {
            Ok(made) => self.record(&made, &withdrawn),
            Err(e) => {
                let mut m = Meta::read(&self.meta_path)?;
                let mut restored = false;
                for (key, old) in withdrawn {
                    let p = self.build_dir.join(&old.path);
                    let same = crate::util::digest::sha256_file(&p)
                        .is_ok_and(|(sha, size)| sha == old.sha256 && Some(size) == old.size);
                    if same {
                        m.images.insert(key, old);
                        restored = true;
                    }
                }
                if restored {
                    m.write(&self.meta_path)?;
                }
                Err(e)
            }
        }
    }
}

/// Make `platforms` for build `id` of `arch` and record them in its meta.json.
pub(crate) fn add_images(
    wd: &Workdir,
    lock: &WorkdirLock,
    id: &str,
    arch: &str,
    platforms: &[String],
) -> Result<()> {
    if platforms.is_empty() {
        return Ok(());
    }
    let b = OpenBuild::open(wd, lock, id, arch)?;
    b.replace(platforms, || {
        image::build_images(&b.image_build(), platforms)
    })
}
