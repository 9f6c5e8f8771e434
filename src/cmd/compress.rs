//! `cosa compress` and `cosa uncompress`: compress a build's images in place
//! and record it in meta.json, as coreos-assembler's `src/cmd-compress` does.
//!
//! One artifact at a time, under the working-directory lock: compress into
//! `.tmp-compress-<file>` beside it, sync, rename to `<file>.<ext>`, write
//! meta.json (atomically, schema-checked), then delete the original. A crash
//! at any point leaves meta.json naming a complete file: before the meta.json
//! write it still names the original (the next run starts that artifact
//! again), after it the compressed file (the next run deletes the leftover
//! original). `uncompress` mirrors this.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use crate::cli::{CompressOpts, GlobalOpts, UncompressOpts};
use crate::config::image::ImageConfig;
use crate::config::workdir::Workdir;
use crate::image::compress::{self, Compressor, DEFAULT_COMPRESSOR, Plan, Settings};
use crate::store::builds::{self, BuildsJson};
use crate::store::lock::WorkdirLock;
use crate::store::meta::{self, Meta};

/// Prefix of the temp files this module writes in a build dir.
const TMP_PREFIX: &str = ".tmp-compress-";

/// The build and arches a run works on.
struct Target {
    wd: Workdir,
    _lock: WorkdirLock,
    id: String,
    arches: Vec<String>,
}

fn target(global: &GlobalOpts, build: Option<&str>, arch: Option<&str>) -> Result<Target> {
    let wd = Workdir::open(&global.workdir)?;
    let lock = WorkdirLock::acquire(&wd.root)?;
    let builds = BuildsJson::load(&wd.builds_dir())?;
    let id = builds.resolve(build)?;
    let all = builds
        .get(&id)
        .map(|b| b.arches.clone())
        .unwrap_or_default();
    let arches = match arch {
        Some(a) => {
            ensure!(
                all.iter().any(|x| x == a),
                "build {id} has no {a} part (it has {}); `cosa list` shows the builds and their arches",
                all.join(", ")
            );
            vec![a.to_string()]
        }
        None => all,
    };
    eprintln!("Targeting build: {id}");
    Ok(Target {
        wd,
        _lock: lock,
        id,
        arches,
    })
}

/// The build dir and meta.json of one arch, or None when this machine does
/// not hold that arch's part (multi-arch builds are made on several hosts).
fn arch_dir(t: &Target, arch: &str) -> Option<(PathBuf, PathBuf)> {
    let builds_dir = t.wd.builds_dir();
    let meta_path = meta::meta_path(&builds_dir, &t.id, arch);
    if !meta_path.exists() {
        eprintln!("No meta.json for {arch} of build {}: skipping it", t.id);
        return None;
    }
    Some((builds::build_dir(&builds_dir, &t.id, arch), meta_path))
}

/// Remove temp files of an interrupted run.
fn remove_leftovers(build_dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(build_dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn tmp_path(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!("{TMP_PREFIX}{name}"))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            eprintln!("Removed leftover {}", path.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Every `--artifact` must name an image of the build.
fn check_artifacts(m: &Meta, only: &[String], arch: &str) -> Result<()> {
    for a in only {
        if !m.images.contains_key(a) {
            bail!(
                "build {} ({arch}) has no artifact {a:?}; it has: {}",
                m.buildid,
                m.images.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(())
}

/// The compressor for every artifact: `--compressor`, else (with `--fast`)
/// gzip, else image.yaml's `compressor`, else gzip; image.yaml's
/// `platform-compressor` wins per artifact, as upstream.
struct Choice {
    default: Compressor,
    per_artifact: BTreeMap<String, Compressor>,
    fast: bool,
}

impl Choice {
    fn new(opts: &CompressOpts, image: &ImageConfig) -> Result<Choice> {
        let default = match (&opts.compressor, opts.fast, &image.compressor) {
            (Some(c), _, _) => Compressor::from_name(c)?,
            (None, true, _) => Compressor::Gzip,
            (None, false, Some(c)) => Compressor::from_name(c).context("image.yaml: compressor")?,
            (None, false, None) => DEFAULT_COMPRESSOR,
        };
        let per_artifact = image
            .platform_compressor
            .iter()
            .map(|(k, v)| {
                Compressor::from_name(v)
                    .with_context(|| format!("image.yaml: platform-compressor.{k}"))
                    .map(|c| (k.clone(), c))
            })
            .collect::<Result<_>>()?;
        Ok(Choice {
            default,
            per_artifact,
            fast: opts.fast,
        })
    }

    fn settings(&self, artifact: &str) -> Settings {
        let c = self
            .per_artifact
            .get(artifact)
            .copied()
            .unwrap_or(self.default);
        Settings::new(c, self.fast)
    }
}

/// `cosa compress`.
pub fn compress(global: &GlobalOpts, opts: CompressOpts) -> Result<()> {
    let t = target(
        global,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
    )?;
    let image = ImageConfig::load(&t.wd.config_dir())?;
    let choice = Choice::new(&opts, &image)?;
    let mut changed = false;
    for arch in &t.arches {
        if let Some((dir, meta_path)) = arch_dir(&t, arch) {
            changed |= compress_arch(&dir, &meta_path, arch, &opts.artifact, &choice)?;
        }
    }
    if !changed {
        eprintln!("All artifacts already compressed");
    }
    Ok(())
}

fn compress_arch(
    dir: &Path,
    meta_path: &Path,
    arch: &str,
    only: &[String],
    choice: &Choice,
) -> Result<bool> {
    eprintln!("Compressing: {}", dir.display());
    remove_leftovers(dir);
    let mut m = Meta::read(meta_path)?;
    check_artifacts(&m, only, arch)?;
    let names: Vec<String> = m.images.keys().cloned().collect();
    let mut skipped = Vec::new();
    let mut changed = false;
    for name in names {
        let art = m.images[&name].clone();
        let plan = compress::plan_compress(&name, &art);
        if matches!(plan, Plan::SkipFlagged | Plan::SkipNever) {
            skipped.push(name);
            continue;
        }
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let src = dir.join(&art.path);
        if plan == Plan::Done {
            // Compressed in an earlier run that may have died before
            // deleting the original.
            if let Some(c) = Compressor::from_path(&art.path) {
                let orig = art.path.strip_suffix(&format!(".{}", c.ext()));
                if let Some(orig) = orig {
                    remove_if_present(&dir.join(orig))?;
                }
            }
            continue;
        }
        let s = choice.settings(&name);
        let out_name = format!("{}.{}", art.path, s.compressor.ext());
        let out = dir.join(&out_name);
        let tmp = tmp_path(&out);
        ensure!(
            src.exists(),
            "images.{name} of build {} ({arch}) is missing: {} does not exist",
            m.buildid,
            src.display()
        );
        let what = format!("Compressing {} ({})", art.path, s.describe());
        let o = into_place(&tmp, &out, || {
            let o = compress::compress(&src, &tmp, &s, &what)?;
            if o.input.sha256 != art.sha256 || art.size.is_some_and(|n| n != o.input.size) {
                bail!(
                    "{} changed since it was recorded in meta.json (sha256 {} size {}, recorded {} size {:?}); \
                     not compressing it",
                    src.display(),
                    o.input.sha256,
                    o.input.size,
                    art.sha256,
                    art.size
                );
            }
            Ok(o)
        })?;
        let entry = m.images.get_mut(&name).context("artifact vanished")?;
        entry.uncompressed_sha256 = Some(art.sha256.clone());
        entry.uncompressed_size = Some(o.input.size);
        entry.path = out_name.clone();
        entry.sha256 = o.output.sha256;
        entry.size = Some(o.output.size);
        m.write(meta_path)?;
        std::fs::remove_file(&src).with_context(|| format!("removing {}", src.display()))?;
        eprintln!("Compressed: {out_name}");
        changed = true;
    }
    if !skipped.is_empty() {
        eprintln!("Skipped compressing artifacts: {}", skipped.join(" "));
    }
    if changed {
        eprintln!("Updated: {}", meta_path.display());
    }
    Ok(changed)
}

/// `cosa uncompress`.
pub fn uncompress(global: &GlobalOpts, opts: UncompressOpts) -> Result<()> {
    let t = target(
        global,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
    )?;
    let mut changed = false;
    for arch in &t.arches {
        if let Some((dir, meta_path)) = arch_dir(&t, arch) {
            changed |= uncompress_arch(&dir, &meta_path, arch, &opts.artifact)?;
        }
    }
    if !changed {
        eprintln!("All artifacts already uncompressed");
    }
    Ok(())
}

fn uncompress_arch(dir: &Path, meta_path: &Path, arch: &str, only: &[String]) -> Result<bool> {
    eprintln!("Uncompressing: {}", dir.display());
    remove_leftovers(dir);
    let mut m = Meta::read(meta_path)?;
    check_artifacts(&m, only, arch)?;
    let names: Vec<String> = m.images.keys().cloned().collect();
    let (mut skipped, mut missing) = (Vec::new(), Vec::new());
    let mut changed = false;
    for name in names {
        let art = m.images[&name].clone();
        if art.skip_compression == Some(true) {
            skipped.push(name);
            continue;
        }
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let Some(c) = compress::plan_uncompress(&art)
            .with_context(|| format!("images.{name} of build {} ({arch})", m.buildid))?
        else {
            // Uncompressed in an earlier run that may have died before
            // deleting the compressed file.
            if !compress::NEVER_COMPRESSED.contains(&name.as_str()) {
                for c in Compressor::ALL {
                    remove_if_present(&dir.join(format!("{}.{}", art.path, c.ext())))?;
                }
            }
            continue;
        };
        let src = dir.join(&art.path);
        if !src.exists() {
            ensure!(
                only.is_empty(),
                "images.{name} of build {} ({arch}) is missing: {} does not exist",
                m.buildid,
                src.display()
            );
            missing.push(name);
            continue;
        }
        let out_name = art
            .path
            .strip_suffix(&format!(".{}", c.ext()))
            .context("compressed path without its extension")?
            .to_string();
        let out = dir.join(&out_name);
        let tmp = tmp_path(&out);
        let want_sha = art.uncompressed_sha256.clone().unwrap_or_default();
        let what = format!("Uncompressing {} ({})", art.path, c.name());
        let o = into_place(&tmp, &out, || {
            let o = compress::decompress(&src, &tmp, c, &what)?;
            if o.output.sha256 != want_sha
                || art.uncompressed_size.is_some_and(|n| n != o.output.size)
            {
                bail!(
                    "{} does not decompress to what meta.json recorded (sha256 {} size {}, \
                     recorded uncompressed-sha256 {want_sha} uncompressed-size {:?}); nothing changed",
                    src.display(),
                    o.output.sha256,
                    o.output.size,
                    art.uncompressed_size
                );
            }
            Ok(o)
        })?;
        let entry = m.images.get_mut(&name).context("artifact vanished")?;
        entry.path = out_name.clone();
        entry.sha256 = want_sha;
        entry.size = Some(o.output.size);
        entry.uncompressed_sha256 = None;
        entry.uncompressed_size = None;
        m.write(meta_path)?;
        std::fs::remove_file(&src).with_context(|| format!("removing {}", src.display()))?;
        eprintln!("Uncompressed: {out_name}");
        changed = true;
    }
    if !skipped.is_empty() {
        eprintln!("Skipped uncompressing artifacts: {}", skipped.join(" "));
    }
    if !missing.is_empty() {
        eprintln!("Skipped missing artifacts: {}", missing.join(" "));
    }
    if changed {
        eprintln!("Updated: {}", meta_path.display());
    }
    Ok(changed)
}

/// Make a file at `tmp` with `make`, then rename it to `out`; on any error
/// `tmp` is removed and `out` is left as it was.
fn into_place<T>(tmp: &Path, out: &Path, make: impl FnOnce() -> Result<T>) -> Result<T> {
    let r = make().and_then(|v| {
        std::fs::rename(tmp, out)
            .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
        Ok(v)
    });
    if r.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    r
}
