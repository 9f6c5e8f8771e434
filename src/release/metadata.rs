//! Stream metadata `streams/<stream>.json`, generated from the stream's
//! newest release.json, in the shape Fedora CoreOS publishes (and the
//! `coreos-stream-metadata` crate reads):
//!
//! ```json
//! {"stream": "stable", "metadata": {"last-modified": "...", "generator": "..."},
//!  "architectures": {"x86_64": {
//!    "artifacts": {"qemu": {"release": "39.20231101.3.0",
//!      "formats": {"qcow2.xz": {"disk": {"location": "...", "signature": "...",
//!        "sha256": "...", "uncompressed-sha256": "..."}}}}},
//!    "images": {"aws": {"regions": {"us-east-1": {"release": "...", "image": "ami-..."}}}}}}}
//! ```
//!
//! Fields not typed here are kept as read, so a published file round-trips
//! unchanged.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::index::{Formats, LastModified, Release, ReleaseIndex};
use crate::util;

/// What `metadata.generator` says for files cosa writes.
pub const GENERATOR: &str = concat!("cosa ", env!("CARGO_PKG_VERSION"));

/// `architectures.<arch>.artifacts.<platform>`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformArtifacts {
    pub release: String,
    pub formats: Formats,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `architectures.<arch>`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamArch {
    #[serde(default)]
    pub artifacts: BTreeMap<String, PlatformArtifacts>,
    /// Cloud images (`aws.regions`, `gcp`, `kubevirt`...), optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A stream metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamMetadata {
    pub stream: String,
    pub metadata: LastModified,
    pub architectures: BTreeMap<String, StreamArch>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StreamMetadata {
    pub fn read(path: &Path) -> Result<StreamMetadata> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        util::write_json_atomic(path, self).with_context(|| format!("writing {}", path.display()))
    }
}

/// `streams/<stream>.json` relative to the publish root.
pub fn stream_metadata_path(stream: &str) -> String {
    format!("streams/{stream}.json")
}

/// The newest release of an index (plume appends, so the last entry).
pub fn newest(index: &ReleaseIndex) -> Option<&super::index::IndexRelease> {
    index.releases.last()
}

/// Stream metadata for `release` (the stream's newest release.json).
/// AWS region images and the GCP image of release.json become `images`.
pub fn generate(release: &Release, now: &str) -> StreamMetadata {
    let mut architectures = BTreeMap::new();
    for (arch, ra) in &release.architectures {
        let mut sa = StreamArch::default();
        let mut images = Map::new();
        for (platform, media) in &ra.media {
            if !media.artifacts.is_empty() {
                sa.artifacts.insert(
                    platform.clone(),
                    PlatformArtifacts {
                        release: release.release.clone(),
                        formats: media.artifacts.clone(),
                        extra: Map::new(),
                    },
                );
            }
            if platform == "aws"
                && let Some(Value::Object(regions)) = media.extra.get("images")
            {
                let regions: Map<String, Value> = regions
                    .iter()
                    .filter_map(|(r, v)| {
                        let image = v.get("image")?.clone();
                        Some((
                            r.clone(),
                            json!({"release": release.release, "image": image}),
                        ))
                    })
                    .collect();
                images.insert("aws".into(), json!({ "regions": regions }));
            }
            if platform == "gcp"
                && let Some(Value::Object(img)) = media.extra.get("image")
            {
                let mut g = Map::new();
                g.insert("release".into(), json!(release.release));
                for k in ["project", "family", "name"] {
                    if let Some(v) = img.get(k) {
                        g.insert(k.into(), v.clone());
                    }
                }
                images.insert("gcp".into(), Value::Object(g));
            }
        }
        sa.images = Some(images);
        architectures.insert(arch.clone(), sa);
    }
    let mut metadata = LastModified::new(now);
    metadata
        .extra
        .insert("generator".into(), Value::String(GENERATOR.into()));
    StreamMetadata {
        stream: release.stream.clone(),
        metadata,
        architectures,
        extra: Map::new(),
    }
}
