//! `builds/builds.json` as coreos-assembler writes it (`src/cosalib/builds.py`):
//!
//! ```json
//! {"schema-version": "1.0.0",
//!  "builds": [{"id": "41.20240520.dev.1", "arches": ["x86_64"]}, ...],
//!  "timestamp": "2024-05-20T01:02:03Z",
//!  "tags": [{"name": "smoketested", "created": "...", "target": "41.20240520.dev.0"}]}
//! ```
//!
//! Builds are newest first; a new id goes to the front, an existing id gains
//! an arch (upstream's `insert_build`). Fields we do not know (per-build
//! `policy-cleanup`, top-level keys of newer tools) are kept on rewrite.
//! See the module doc of [`crate::store`] for the crash-safety rules.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lock::WorkdirLock;
use crate::util::{self, time};

/// The builds.json schema version we write; any 1.x is read.
pub const SCHEMA_VERSION: &str = "1.0.0";
/// Name of the build list inside `builds/`.
pub const BUILDS_JSON: &str = "builds.json";
/// Name of the symlink to the newest build inside `builds/`.
pub const LATEST: &str = "latest";
/// Prefix of every temp file and staging dir we create under `builds/`
/// (tempfile's default prefix is `.tmp` too); startup recovery removes them.
pub const TMP_PREFIX: &str = ".tmp";

/// One build: its id and the arches built for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildEntry {
    pub id: String,
    pub arches: Vec<String>,
    /// Anything else (e.g. `policy-cleanup`), kept as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A named pointer to a build, as `cosa tag update` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub name: String,
    pub created: String,
    pub target: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The whole of builds.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildsJson {
    #[serde(rename = "schema-version")]
    pub schema_version: String,
    #[serde(default)]
    pub builds: Vec<BuildEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for BuildsJson {
    fn default() -> Self {
        BuildsJson {
            schema_version: SCHEMA_VERSION.to_string(),
            builds: Vec::new(),
            timestamp: None,
            tags: None,
            extra: Map::new(),
        }
    }
}

/// `builds/<id>/<arch>`
pub fn build_dir(builds_dir: &Path, id: &str, arch: &str) -> PathBuf {
    builds_dir.join(id).join(arch)
}

/// The signed statement `cosa rebuild-verify --attest` writes beside a
/// build. It is about the build, not one of its artifacts: meta.json does
/// not list it, and cleaning up leftovers keeps it.
pub fn rebuild_statement_name(name: &str, id: &str, arch: &str) -> String {
    format!("{name}-{id}-{REBUILD_STATEMENT}.{arch}.intoto.json")
}

const REBUILD_STATEMENT: &str = "rebuild-verify";

/// Remove what an interrupted writer left in `build_dir`: its temp files
/// ([`TMP_PREFIX`]: artifacts and every other file are renamed into place
/// only when complete), and complete artifacts of this build (named
/// `<name>-<buildid>-…`, as cosa names them) that meta.json does not list,
/// because the run was killed between renaming the file and recording it,
/// with their `.sig`. Run under the workdir lock. Returns what was removed.
pub fn remove_partial_artifacts(build_dir: &Path, meta: &super::meta::Meta) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    roll_forward_replacements(build_dir, meta);
    let Ok(rd) = std::fs::read_dir(build_dir) else {
        return removed;
    };
    let prefix = format!("{}-{}-", meta.name, meta.buildid);
    let statement = format!("{prefix}{REBUILD_STATEMENT}.");
    let listed: BTreeSet<&str> = meta.images.values().map(|a| a.path.as_str()).collect();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let base = name.strip_suffix(".sig").unwrap_or(&name);
        let unlisted =
            name.starts_with(&prefix) && !name.starts_with(&statement) && !listed.contains(base);
        if (name.starts_with(TMP_PREFIX) || unlisted) && std::fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

/// The temp name of a complete replacement for the artifact `path`, which
/// meta.json records before the replacement is renamed over it
/// ([`roll_forward_replacements`]).
pub fn replacement_name(path: &str) -> String {
    format!("{TMP_PREFIX}-replace-{path}")
}

/// Finish a replacement a kill interrupted: a writer that replaces a
/// listed artifact in place (`cosa sign --ostree` re-exporting the ostree
/// artifact) writes the new file as [`replacement_name`], records its
/// digest in meta.json, and only then renames it over the old one. If
/// meta.json's digest is the temp file's and not the listed file's, the
/// rename is done here; otherwise the temp file is left for the cleaning.
fn roll_forward_replacements(build_dir: &Path, meta: &super::meta::Meta) {
    for art in meta.images.values() {
        let tmp = build_dir.join(replacement_name(&art.path));
        let Ok(md) = std::fs::metadata(&tmp) else {
            continue;
        };
        if art.size.is_some_and(|s| s != md.len()) {
            continue;
        }
        let file = build_dir.join(&art.path);
        let listed_ok =
            crate::util::digest::sha256_file(&file).is_ok_and(|(sha, _)| sha == art.sha256);
        if !listed_ok
            && crate::util::digest::sha256_file(&tmp).is_ok_and(|(sha, _)| sha == art.sha256)
            && std::fs::rename(&tmp, &file).is_ok()
        {
            eprintln!(
                "Finished replacing {} that an interrupted run left",
                file.display()
            );
        }
    }
}

impl BuildsJson {
    /// Parse builds.json text, refusing a schema major version other than 1.
    pub fn parse(text: &str) -> Result<BuildsJson> {
        let b: BuildsJson = serde_json::from_str(text)?;
        let major = b.schema_version.split('.').next().unwrap_or("");
        if major != "1" {
            bail!(
                "unsupported builds.json schema-version {:?} (this cosa reads 1.x)",
                b.schema_version
            );
        }
        // Ids and arch names become paths: check them where they enter.
        for (i, e) in b.builds.iter().enumerate() {
            super::names::build_id(&e.id).with_context(|| format!("builds[{i}]"))?;
            for a in &e.arches {
                super::names::arch(a).with_context(|| format!("builds[{i}] ({}): arches", e.id))?;
            }
        }
        Ok(b)
    }

    /// Read `builds_dir/builds.json`; a missing file is an empty store.
    pub fn load(builds_dir: &Path) -> Result<BuildsJson> {
        let path = builds_dir.join(BUILDS_JSON);
        match fs::read_to_string(&path) {
            Ok(text) => {
                BuildsJson::parse(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BuildsJson::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Write builds.json atomically as it is (no timestamp change).
    pub fn write(&self, builds_dir: &Path) -> Result<()> {
        let path = builds_dir.join(BUILDS_JSON);
        util::write_json_atomic(&path, self)
            .with_context(|| format!("writing {}", path.display()))?;
        sync_dir(builds_dir)
    }

    /// Set `timestamp` to now (SOURCE_DATE_EPOCH honoured) and write, as
    /// upstream's `bump_timestamp`.
    pub fn bump_timestamp_and_write(&mut self, builds_dir: &Path) -> Result<()> {
        self.timestamp = Some(time::format_rfc3339(time::now_secs()));
        self.write(builds_dir)
    }

    pub fn is_empty(&self) -> bool {
        self.builds.is_empty()
    }

    pub fn has(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    pub fn get(&self, id: &str) -> Option<&BuildEntry> {
        self.builds.iter().find(|b| b.id == id)
    }

    /// Whether `id` is listed with `arch`.
    pub fn has_arch(&self, id: &str, arch: &str) -> bool {
        self.get(id)
            .is_some_and(|b| b.arches.iter().any(|a| a == arch))
    }

    /// The newest build's id.
    pub fn latest(&self) -> Option<&str> {
        self.builds.first().map(|b| b.id.as_str())
    }

    /// The newest build built for `arch`.
    pub fn latest_for_arch(&self, arch: &str) -> Option<&str> {
        self.builds
            .iter()
            .find(|b| b.arches.iter().any(|a| a == arch))
            .map(|b| b.id.as_str())
    }

    /// Resolve `latest` (or `None`) to the newest build id; check any other id exists.
    pub fn resolve(&self, id: Option<&str>) -> Result<String> {
        match id {
            None | Some("latest") => self
                .latest()
                .map(str::to_string)
                .context("there are no builds yet: run `cosa build` first"),
            Some(id) if self.has(id) => Ok(id.to_string()),
            Some(id) => bail!("no build {id:?} in builds.json; `cosa list` shows the builds"),
        }
    }

    /// Record `arch` of build `id`: a new id goes to the front (newest), an
    /// existing id gains the arch; the same id and arch twice is an error.
    pub fn insert_build(&mut self, id: &str, arch: &str) -> Result<()> {
        if let Some(b) = self.builds.iter_mut().find(|b| b.id == id) {
            if b.arches.iter().any(|a| a == arch) {
                bail!("build {id} for {arch} already exists");
            }
            b.arches.push(arch.to_string());
        } else {
            self.builds.insert(
                0,
                BuildEntry {
                    id: id.to_string(),
                    arches: vec![arch.to_string()],
                    extra: Map::new(),
                },
            );
        }
        Ok(())
    }

    /// Drop build `id` (all arches); returns the entry if it was listed.
    pub fn remove_build(&mut self, id: &str) -> Option<BuildEntry> {
        let i = self.builds.iter().position(|b| b.id == id)?;
        Some(self.builds.remove(i))
    }

    /// Drop one arch of `id`, and the build when no arch is left.
    pub fn remove_arch(&mut self, id: &str, arch: &str) -> bool {
        let Some(i) = self.builds.iter().position(|b| b.id == id) else {
            return false;
        };
        let before = self.builds[i].arches.len();
        self.builds[i].arches.retain(|a| a != arch);
        let removed = self.builds[i].arches.len() != before;
        if self.builds[i].arches.is_empty() {
            self.builds.remove(i);
        }
        removed
    }

    /// Names of the tags that point at `id`.
    pub fn tags_of(&self, id: &str) -> Vec<&str> {
        self.tags
            .iter()
            .flatten()
            .filter(|t| t.target == id)
            .map(|t| t.name.as_str())
            .collect()
    }
}

/// Create `builds/` and an empty builds.json if missing, as upstream's
/// `Builds()` does, so that recovery always has a list to trust.
pub fn init(builds_dir: &Path) -> Result<BuildsJson> {
    fs::create_dir_all(builds_dir).with_context(|| format!("creating {}", builds_dir.display()))?;
    if builds_dir.join(BUILDS_JSON).exists() {
        return BuildsJson::load(builds_dir);
    }
    let mut b = BuildsJson::default();
    b.bump_timestamp_and_write(builds_dir)?;
    Ok(b)
}

/// Point `builds/latest` at `id` (a relative symlink), or remove it for
/// `None`. Atomic: the new link is made under a temp name and renamed over.
pub fn set_latest(builds_dir: &Path, id: Option<&str>) -> Result<()> {
    let link = builds_dir.join(LATEST);
    match id {
        Some(id) => {
            let tmp = builds_dir.join(format!("{TMP_PREFIX}-latest-{}", std::process::id()));
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(id, &tmp)
                .with_context(|| format!("creating symlink {}", tmp.display()))?;
            fs::rename(&tmp, &link)
                .with_context(|| format!("renaming {} to {}", tmp.display(), link.display()))?;
        }
        None => match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", link.display())),
        },
    }
    sync_dir(builds_dir)
}

/// Where `builds/latest` points, if it is a symlink.
pub fn read_latest(builds_dir: &Path) -> Option<String> {
    fs::read_link(builds_dir.join(LATEST))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// fsync a directory so the renames in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// Check that `id` can name a directory under builds/ (see [`super::names`]).
pub fn check_build_id(id: &str) -> Result<()> {
    super::names::build_id(id)
}

/// A build being written: a staging directory `builds/.tmp-build-*` that
/// becomes `builds/<id>/<arch>` on [`StagedBuild::publish`]. Dropped
/// unpublished (the build failed), it is removed.
#[derive(Debug)]
pub struct StagedBuild {
    dir: tempfile::TempDir,
}

impl StagedBuild {
    /// Make a staging dir under `builds_dir` (same filesystem, so the final
    /// rename is atomic). Needs the workdir lock.
    pub fn new(builds_dir: &Path, _lock: &WorkdirLock) -> Result<StagedBuild> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{TMP_PREFIX}-build-"))
            .tempdir_in(builds_dir)
            .with_context(|| format!("creating a staging directory in {}", builds_dir.display()))?;
        Ok(StagedBuild { dir })
    }

    /// The directory to write the build's files into.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Move the staged files to `builds/<id>/<arch>`, then list the build in
    /// builds.json (the commit point), then point `latest` at the newest build.
    pub fn publish(
        self,
        builds_dir: &Path,
        id: &str,
        arch: &str,
        _lock: &WorkdirLock,
    ) -> Result<()> {
        check_build_id(id)?;
        let mut builds = BuildsJson::load(builds_dir)?;
        if builds.has_arch(id, arch) {
            bail!(
                "build {id} for {arch} already exists in {}; pass another --version",
                builds_dir.display()
            );
        }
        let id_dir = builds_dir.join(id);
        // Markers say "made by cosa, not listed yet": recovery removes a
        // marked directory that builds.json does not list, and nothing else.
        if !id_dir.exists() {
            // Made marked under a temp name and renamed in, so a kill never
            // leaves an unmarked directory that recovery must keep.
            let tmp = builds_dir.join(format!("{TMP_PREFIX}-id-{id}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            write_marker(&tmp)?;
            fs::rename(&tmp, &id_dir)
                .with_context(|| format!("renaming {} to {}", tmp.display(), id_dir.display()))?;
        }
        let dest = id_dir.join(arch);
        if dest.exists() {
            if !dest.join(UNPUBLISHED).exists() {
                bail!(
                    "{} exists but builds.json does not list it, and cosa did not leave it \
                     (no {UNPUBLISHED} marker); move it away or pass another --version",
                    dest.display()
                );
            }
            remove_marked_dir(&dest)?;
        }
        let staged = self.dir.keep();
        write_marker(&staged)?;
        fs::rename(&staged, &dest)
            .with_context(|| format!("renaming {} to {}", staged.display(), dest.display()))?;
        sync_dir(&id_dir)?;
        sync_dir(builds_dir)?;
        builds.insert_build(id, arch)?;
        builds.bump_timestamp_and_write(builds_dir)?;
        // Listed: `latest` follows at once, then the markers, which have
        // done their job, go (recovery removes them from listed builds).
        set_latest(builds_dir, builds.latest())?;
        remove_marker(&dest)?;
        remove_marker(&id_dir)
    }
}

/// The marker in a build or arch directory that cosa has put in place but
/// not yet listed in builds.json, or is about to delete (prune): recovery
/// may remove such a directory when builds.json does not list it.
pub const UNPUBLISHED: &str = ".cosa-unpublished";

pub(crate) fn write_marker(dir: &Path) -> Result<()> {
    let p = dir.join(UNPUBLISHED);
    fs::write(&p, b"").with_context(|| format!("writing {}", p.display()))?;
    fs::File::open(&p)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", p.display()))
}

/// Delete a directory cosa marked with [`UNPUBLISHED`] so that a kill at
/// any moment leaves something recovery removes: `remove_dir_all` may take
/// the marker before the rest, so the directory is first renamed to a
/// [`TMP_PREFIX`] name in the same parent (atomic), which recovery removes
/// whatever is left in it. A directory already gone is not an error.
pub(crate) fn remove_marked_dir(dir: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        bail!("{} is not a directory to remove", dir.display());
    };
    let doomed = parent.join(format!(
        "{TMP_PREFIX}-removing-{}-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    match fs::rename(dir, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("moving {} aside to delete it", dir.display()));
        }
    }
    sync_dir(parent)?;
    fs::remove_dir_all(&doomed).with_context(|| format!("removing {}", doomed.display()))
}

fn remove_marker(dir: &Path) -> Result<()> {
    match fs::remove_file(dir.join(UNPUBLISHED)) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing the marker in {}", dir.display())),
    }
}

/// What [`recover`] removed, and what it found and left alone.
#[derive(Debug, Default, PartialEq)]
pub struct Recovery {
    /// Paths removed (temp files, staging dirs, build dirs an interrupted
    /// run put in place without listing them).
    pub removed: Vec<PathBuf>,
    /// Directories under builds/ that builds.json does not list and cosa did
    /// not make (no marker): reported, never deleted.
    pub kept: Vec<PathBuf>,
    /// Whether `builds/latest` was rewritten or removed.
    pub latest_fixed: bool,
}

impl Recovery {
    /// Tell the user what recovery did and what it left alone.
    pub fn report(&self) {
        for p in &self.removed {
            eprintln!("Removed leftover of an interrupted run: {}", p.display());
        }
        for p in &self.kept {
            eprintln!(
                "warning: {} is not listed in builds.json and was not made by cosa; left alone",
                p.display()
            );
        }
    }
}

/// Startup recovery after a killed run, under the workdir lock: remove temp
/// files and staging dirs under builds/, build and arch dirs that builds.json
/// does not list and that carry cosa's [`UNPUBLISHED`] marker (renamed into
/// place by a run killed before it listed them), and point `latest` at
/// builds.json's newest build. Unlisted directories without the marker are
/// not cosa's: they are reported in [`Recovery::kept`] and left alone.
/// Without a builds.json only temp entries are removed.
pub fn recover(builds_dir: &Path, _lock: &WorkdirLock) -> Result<Recovery> {
    let mut rec = Recovery::default();
    if !builds_dir.is_dir() {
        return Ok(rec);
    }
    let have_list = builds_dir.join(BUILDS_JSON).exists();
    let builds = BuildsJson::load(builds_dir)?;
    for entry in read_dir_sorted(builds_dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let ft = entry
            .file_type()
            .with_context(|| format!("reading {}", path.display()))?;
        if name.starts_with(TMP_PREFIX) {
            remove_any(&path, ft.is_dir())?;
            rec.removed.push(path);
            continue;
        }
        if !ft.is_dir() || !have_list {
            continue;
        }
        match builds.get(&name) {
            None if path.join(UNPUBLISHED).exists() => {
                remove_marked_dir(&path)?;
                rec.removed.push(path);
            }
            None => rec.kept.push(path),
            Some(b) => recover_build_dir(&path, b, &mut rec)?,
        }
    }
    if have_list && read_latest(builds_dir).as_deref() != builds.latest() {
        set_latest(builds_dir, builds.latest())?;
        rec.latest_fixed = true;
    }
    if !rec.removed.is_empty() {
        sync_dir(builds_dir)?;
    }
    Ok(rec)
}

/// Inside a listed `builds/<id>/`: remove arch dirs not listed for it, and
/// temp files left by atomic writes in it and in its arch dirs.
fn recover_build_dir(dir: &Path, build: &BuildEntry, rec: &mut Recovery) -> Result<()> {
    let arches: BTreeSet<&str> = build.arches.iter().map(String::as_str).collect();
    // A listed build: a marker left by a run killed just after listing it.
    remove_marker(dir)?;
    for entry in read_dir_sorted(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let unlisted_arch = is_dir && !arches.contains(name.as_str());
        if unlisted_arch && !path.join(UNPUBLISHED).exists() {
            rec.kept.push(path);
        } else if unlisted_arch {
            remove_marked_dir(&path)?;
            rec.removed.push(path);
        } else if name.starts_with(TMP_PREFIX) {
            remove_any(&path, is_dir)?;
            rec.removed.push(path);
        } else if is_dir {
            remove_marker(&path)?;
            for e in read_dir_sorted(&path)? {
                if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    let d = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                    remove_any(&e.path(), d)?;
                    rec.removed.push(e.path());
                }
            }
        }
    }
    Ok(())
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let mut v = fs::read_dir(dir)
        .and_then(|it| it.collect::<std::io::Result<Vec<_>>>())
        .with_context(|| format!("listing {}", dir.display()))?;
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

fn remove_any(path: &Path, is_dir: bool) -> Result<()> {
    let r = if is_dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    r.with_context(|| format!("removing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_puts_new_ids_first_and_adds_arches() {
        let mut b = BuildsJson::default();
        b.insert_build("1", "x86_64").unwrap();
        b.insert_build("2", "x86_64").unwrap();
        b.insert_build("1", "aarch64").unwrap();
        assert_eq!(b.latest(), Some("2"));
        assert_eq!(b.get("1").unwrap().arches, ["x86_64", "aarch64"]);
        assert!(b.insert_build("2", "x86_64").is_err());
        assert_eq!(b.latest_for_arch("aarch64"), Some("1"));
        assert!(b.remove_arch("1", "x86_64"));
        assert!(b.remove_arch("1", "aarch64"));
        assert!(!b.has("1"));
        assert_eq!(b.remove_build("2").unwrap().id, "2");
        assert!(b.is_empty());
    }

    /// A replacement killed between its record and its rename is renamed
    /// in by the next run; one meta.json does not record is removed.
    #[test]
    fn a_recorded_replacement_is_rolled_forward_an_unrecorded_one_removed() {
        use super::super::meta::{Artifact, Meta};
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let (old, new) = (b"old bytes".as_slice(), b"new bytes!".as_slice());
        let mut m = Meta {
            name: "os".into(),
            buildid: "1".into(),
            ..Default::default()
        };
        for (k, data) in [("ostree", new), ("qemu", old)] {
            let path = format!("os-1-{k}.x86_64.img");
            std::fs::write(d.join(&path), old).unwrap();
            std::fs::write(d.join(replacement_name(&path)), new).unwrap();
            m.images.insert(
                k.into(),
                Artifact {
                    path,
                    sha256: crate::util::digest::sha256_hex(data),
                    size: Some(data.len() as u64),
                    ..Default::default()
                },
            );
        }
        let removed = remove_partial_artifacts(d, &m);
        // ostree: meta.json records the new bytes, so they went in.
        assert_eq!(
            std::fs::read(d.join("os-1-ostree.x86_64.img")).unwrap(),
            new
        );
        // qemu: meta.json records the old bytes; the replacement is a
        // leftover.
        assert_eq!(std::fs::read(d.join("os-1-qemu.x86_64.img")).unwrap(), old);
        assert_eq!(
            removed,
            vec![d.join(replacement_name("os-1-qemu.x86_64.img"))]
        );
    }

    #[test]
    fn schema_major_other_than_1_is_refused() {
        let e = BuildsJson::parse(r#"{"schema-version":"2.0.0","builds":[]}"#).unwrap_err();
        assert!(e.to_string().contains("2.0.0"));
        BuildsJson::parse(r#"{"schema-version":"1.2.0","builds":[]}"#).unwrap();
    }

    #[test]
    fn build_ids_are_checked() {
        for bad in ["", "a/b", "latest", ".tmp1", "a b", "..", "x\n"] {
            assert!(check_build_id(bad).is_err(), "{bad:?}");
        }
        check_build_id("41.20240520.dev.0").unwrap();
    }

    #[test]
    fn resolve_latest_and_unknown() {
        let mut b = BuildsJson::default();
        assert!(b.resolve(None).is_err());
        b.insert_build("a", "x86_64").unwrap();
        assert_eq!(b.resolve(Some("latest")).unwrap(), "a");
        assert!(b.resolve(Some("zz")).is_err());
    }
}
