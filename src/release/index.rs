//! `release.json` for one build and the stream's `releases.json` index.
//!
//! `release.json` (as coreos-assembler's `cmd-generate-release-meta` writes
//! it) merges every arch's `meta.json`:
//!
//! ```json
//! {"release": "39.20231101.3.0", "stream": "stable",
//!  "metadata": {"last-modified": "2023-11-01T00:00:00Z"},
//!  "architectures": {"x86_64": {"commit": "<ostree commit>",
//!    "media": {"qemu": {"artifacts": {"qcow2.xz": {"disk": {
//!      "location": "...", "signature": "....sig", "sha256": "...",
//!      "uncompressed-sha256": "..."}}}}}}}}
//! ```
//!
//! Image names map to platforms as upstream does: `<name>` gives platform
//! `<name>` with the format the file name's suffix after `<name>.<arch>.`;
//! `metal4k` is `metal` format `4k.<ext>`; `live-iso` is `metal` `iso`;
//! `live-kernel`/`live-initramfs`/`live-rootfs` are `metal` `pxe`
//! `kernel`/`initramfs`/`rootfs`. `ostree` (the OCI archive) is not media.
//!
//! `releases.json` follows plume's rules: a new release is appended; an
//! identical entry for the version is a no-op; if the stream's latest entry
//! has the version with a subset of the new commits (fewer arches) it is
//! replaced; anything else with the same version is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::streams::Stream;
use crate::store::meta;
use crate::util;

/// The `note` plume writes into `releases.json`.
pub const INDEX_NOTE: &str = "For use only by Fedora CoreOS internal tooling.  All other applications should obtain release info from stream metadata endpoints.";

/// `metadata` of release.json, releases.json and stream metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LastModified {
    pub last_modified: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl LastModified {
    pub fn new(now: &str) -> LastModified {
        LastModified {
            last_modified: now.to_string(),
            extra: Map::new(),
        }
    }
}

/// One published file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReleaseArtifact {
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_sha256: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// format -> role (`disk`, `kernel`, ...) -> file
pub type Formats = BTreeMap<String, BTreeMap<String, ReleaseArtifact>>;

/// `architectures.<arch>.media.<platform>`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Media {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: Formats,
    /// Cloud images (e.g. AWS regions), kept as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `architectures.<arch>`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseArch {
    pub commit: String,
    #[serde(default)]
    pub media: BTreeMap<String, Media>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A build's `release.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub release: String,
    pub stream: String,
    pub metadata: LastModified,
    pub architectures: BTreeMap<String, ReleaseArch>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `releases[].commits[]`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IndexCommit {
    pub architecture: String,
    pub checksum: String,
}

/// `releases[]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexRelease {
    pub commits: Vec<IndexCommit>,
    pub version: String,
    /// URL of the release's release.json.
    pub metadata: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A stream's `releases.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseIndex {
    #[serde(default)]
    pub note: String,
    pub stream: String,
    pub metadata: LastModified,
    #[serde(default)]
    pub releases: Vec<IndexRelease>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What [`ReleaseIndex::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Appended,
    Unchanged,
    Replaced,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

impl Release {
    pub fn read(path: &Path) -> Result<Release> {
        read_json(path)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        util::write_json_atomic(path, self).with_context(|| format!("writing {}", path.display()))
    }

    /// The index entry for this release: one commit per arch.
    pub fn index_entry(&self, stream: &Stream) -> IndexRelease {
        IndexRelease {
            commits: self
                .architectures
                .iter()
                .map(|(a, r)| IndexCommit {
                    architecture: a.clone(),
                    checksum: r.commit.clone(),
                })
                .collect(),
            version: self.release.clone(),
            metadata: stream.release_json_url(&self.release),
            extra: Map::new(),
        }
    }
}

impl ReleaseIndex {
    /// An empty index for `stream`.
    pub fn new(stream: &str, now: &str) -> ReleaseIndex {
        ReleaseIndex {
            note: INDEX_NOTE.to_string(),
            stream: stream.to_string(),
            metadata: LastModified::new(now),
            releases: Vec::new(),
            extra: Map::new(),
        }
    }

    pub fn read(path: &Path) -> Result<ReleaseIndex> {
        read_json(path)
    }

    /// Read `path`, or a new empty index if it does not exist.
    pub fn read_or_new(path: &Path, stream: &str, now: &str) -> Result<ReleaseIndex> {
        if path.exists() {
            let idx = Self::read(path)?;
            if idx.stream != stream {
                bail!(
                    "{} is the index of stream {:?}, not {stream:?}",
                    path.display(),
                    idx.stream
                );
            }
            Ok(idx)
        } else {
            Ok(Self::new(stream, now))
        }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        util::write_json_atomic(path, self).with_context(|| format!("writing {}", path.display()))
    }

    /// Add a release following plume's rules (see the module doc);
    /// `last-modified` becomes `now` unless nothing changed.
    pub fn add(&mut self, new: IndexRelease, now: &str) -> Result<AddOutcome> {
        let new_commits: BTreeSet<&IndexCommit> = new.commits.iter().collect();
        if new_commits.len() != new.commits.len() {
            bail!("release {}: the same commit is listed twice", new.version);
        }
        let last = self.releases.len().checked_sub(1);
        let found = self.releases.iter().position(|r| r.version == new.version);
        let outcome = match found {
            None => {
                self.releases.push(new);
                AddOutcome::Appended
            }
            Some(i) => {
                let old = &self.releases[i];
                let old_commits: BTreeSet<&IndexCommit> = old.commits.iter().collect();
                if old_commits == new_commits && old.metadata == new.metadata {
                    return Ok(AddOutcome::Unchanged);
                }
                if Some(i) != last {
                    bail!(
                        "release {} is already in the {} index and is not its latest release; refusing to change it",
                        new.version,
                        self.stream
                    );
                }
                if old.metadata != new.metadata || !old_commits.is_subset(&new_commits) {
                    bail!(
                        "release {} is already in the {} index with different content (commits {:?}, metadata {}); refusing to replace it",
                        new.version,
                        self.stream,
                        old.commits,
                        old.metadata
                    );
                }
                self.releases[i] = new;
                AddOutcome::Replaced
            }
        };
        self.note = INDEX_NOTE.to_string();
        self.metadata.last_modified = now.to_string();
        Ok(outcome)
    }
}

/// Where an image of meta.json goes in release.json: (platform, format, role).
fn placement(name: &str, path: &str, arch: &str) -> Result<Option<(String, String, String)>> {
    let ext = |modifier: &str| -> Result<String> {
        let pat = format!("{modifier}.{arch}.");
        match path.rfind(&pat) {
            Some(i) if i + pat.len() < path.len() => Ok(path[i + pat.len()..].to_string()),
            _ => bail!("image {name}: file name {path:?} does not contain \"{pat}<format>\""),
        }
    };
    let disk = "disk".to_string();
    Ok(Some(match name {
        "ostree" | "legacy-oscontainer" => return Ok(None),
        "metal4k" => ("metal".into(), format!("4k.{}", ext("metal4k")?), disk),
        "live-iso" => ("metal".into(), "iso".into(), disk),
        "live-kernel" => ("metal".into(), "pxe".into(), "kernel".into()),
        "live-initramfs" => ("metal".into(), "pxe".into(), "initramfs".into()),
        "live-rootfs" => ("metal".into(), "pxe".into(), "rootfs".into()),
        _ => (name.to_string(), ext(name)?, disk),
    }))
}

/// Build the release.json of build `build_id` in `builds_dir` for `stream`:
/// every `builds/<id>/<arch>/meta.json` is merged. Refused when an arch the
/// stream requires is missing, when the arches disagree on the build id, or
/// when a file's sha256 does not match its meta.json entry.
pub fn release_from_build(
    builds_dir: &Path,
    build_id: &str,
    stream: &Stream,
    now: &str,
) -> Result<Release> {
    let build_root = builds_dir.join(build_id);
    let mut arches = Vec::new();
    for entry in std::fs::read_dir(&build_root)
        .with_context(|| format!("listing build {build_id} in {}", build_root.display()))?
    {
        let entry = entry.with_context(|| format!("listing {}", build_root.display()))?;
        let arch = entry.file_name().to_string_lossy().to_string();
        if entry.path().join(meta::META_JSON).is_file() {
            arches.push(arch);
        }
    }
    arches.sort();
    for req in &stream.required_arches {
        if !arches.contains(req) {
            bail!(
                "build {build_id} has no {req} meta.json, which stream {} requires (has: {})",
                stream.name,
                if arches.is_empty() {
                    "none".to_string()
                } else {
                    arches.join(", ")
                }
            );
        }
    }
    let mut architectures = BTreeMap::new();
    for arch in &arches {
        let path = meta::meta_path(builds_dir, build_id, arch);
        let raw = meta::read_value(&path)?;
        let m: meta::Meta = serde_json::from_value(raw)
            .with_context(|| format!("parsing {} as meta.json", path.display()))?;
        if m.buildid != build_id {
            bail!(
                "{}: buildid is {:?}, expected {build_id:?}",
                path.display(),
                m.buildid
            );
        }
        if let Some(b) = &m.basearch
            && b != arch
        {
            bail!(
                "{}: coreos-assembler.basearch is {b:?} but the file is under {arch}",
                path.display()
            );
        }
        let dir = path
            .parent()
            .with_context(|| format!("{} has no parent", path.display()))?;
        let mut media: BTreeMap<String, Media> = BTreeMap::new();
        for (name, img) in &m.images {
            let Some((platform, format, role)) =
                placement(name, &img.path, arch).with_context(|| format!("{}", path.display()))?
            else {
                continue;
            };
            let file = dir.join(&img.path);
            let (actual, _) = crate::util::digest::sha256_file(&file)
                .with_context(|| format!("build {build_id} {arch} image {name}"))?;
            if actual != img.sha256 {
                bail!(
                    "build {build_id} {arch} image {name}: {} has sha256 {actual} but meta.json says {}",
                    file.display(),
                    img.sha256
                );
            }
            let location = stream.artifact_url(build_id, arch, &img.path);
            let art = ReleaseArtifact {
                signature: Some(format!("{location}.sig")),
                location,
                sha256: img.sha256.clone(),
                uncompressed_sha256: img.uncompressed_sha256.clone(),
                extra: Map::new(),
            };
            let slot = media
                .entry(platform.clone())
                .or_default()
                .artifacts
                .entry(format.clone())
                .or_default();
            if slot.insert(role.clone(), art).is_some() {
                bail!("build {build_id} {arch}: two images give {platform} {format} {role}");
            }
        }
        architectures.insert(
            arch.clone(),
            ReleaseArch {
                commit: m.ostree_commit.clone(),
                media,
                extra: Map::new(),
            },
        );
    }
    Ok(Release {
        release: build_id.to_string(),
        stream: stream.name.clone(),
        metadata: LastModified::new(now),
        architectures,
        extra: Map::new(),
    })
}
