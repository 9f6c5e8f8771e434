//! Release streams: `streams.yaml` at the top of the config repository.
//!
//! Every stream has a name, a numeric code (the `Z` of `X.YYYYMMDD.Z.N`,
//! see [`super::version`]), a type, optionally the stream it is promoted
//! from, a bake time, the URL prefix it publishes under and the arches a
//! release of it must have. When the file is absent, or a stream is not
//! listed in it, the Fedora CoreOS defaults apply:
//!
//! | stream                | code | type        | promoted from  | bake days |
//! |-----------------------|------|-------------|----------------|-----------|
//! | next                  | 1    | production  | next-devel     | 0         |
//! | testing               | 2    | production  | testing-devel  | 14        |
//! | stable                | 3    | production  | testing        | 0         |
//! | next-devel            | 10   | development |                | 0         |
//! | testing-devel         | 20   | development |                | 0         |
//! | rawhide               | 91   | mechanical  |                | 0         |
//! | branched              | 92   | mechanical  |                | 0         |
//! | bodhi-updates-testing | 93   | mechanical  |                | 0         |
//! | bodhi-updates         | 94   | mechanical  |                | 0         |
//!
//! Default publish prefix: `https://builds.coreos.fedoraproject.org/prod/streams/<name>`;
//! default required arches: `x86_64`, `aarch64`, `ppc64le`, `s390x` for
//! production streams, `x86_64` otherwise.
//!
//! Schema (unknown keys are refused; errors name the file and the key):
//!
//! ```yaml
//! streams:
//!   stable:                      # the stream's name
//!     code: 3                    # required, unique, the Z of X.YYYYMMDD.Z.N
//!     type: production           # required: production | development | mechanical
//!     promoted-from: testing     # optional: a stream name (listed or default)
//!     bake-days: 0               # optional, default 0: days a release must sit
//!                                #   in THIS stream before the streams promoted
//!                                #   from it may take it (testing: 14)
//!     publish: https://example.com/streams/stable  # optional URL prefix
//!     required-arches: [x86_64, aarch64]           # optional, non-empty
//!     publish-dir: /srv/publish                    # optional local publish root
//!                                #   (relative: to the working directory)
//! ```
//!
//! A listed stream replaces the default of the same name entirely.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// `streams.yaml`
pub const STREAMS_YAML: &str = "streams.yaml";

/// Where Fedora CoreOS publishes; a stream's default prefix is this plus `/<name>`.
pub const DEFAULT_PUBLISH_BASE: &str = "https://builds.coreos.fedoraproject.org/prod/streams";

/// The kind of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamType {
    /// Promoted releases users follow (stable, testing, next).
    Production,
    /// Where development happens (testing-devel, next-devel).
    Development,
    /// Built automatically from a package snapshot (rawhide, bodhi-updates...).
    Mechanical,
}

/// One entry of `streams.yaml`, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StreamEntry {
    pub code: u64,
    #[serde(rename = "type")]
    pub kind: StreamType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_arches: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_dir: Option<String>,
}

/// `streams.yaml`, as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsFile {
    #[serde(default)]
    pub streams: BTreeMap<String, StreamEntry>,
}

/// A stream with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub name: String,
    pub code: u64,
    pub kind: StreamType,
    pub promoted_from: Option<String>,
    pub bake_days: u32,
    /// URL prefix: a build's files are under `<publish>/builds/<version>/<arch>/`.
    pub publish: String,
    pub required_arches: Vec<String>,
    /// Local publish root from streams.yaml, if set (see [`super::publish`]).
    pub publish_dir: Option<String>,
}

impl Stream {
    fn from_entry(name: &str, e: &StreamEntry) -> Stream {
        Stream {
            name: name.to_string(),
            code: e.code,
            kind: e.kind,
            promoted_from: e.promoted_from.clone(),
            bake_days: e.bake_days.unwrap_or(0),
            publish: e
                .publish
                .clone()
                .unwrap_or_else(|| format!("{DEFAULT_PUBLISH_BASE}/{name}")),
            required_arches: e
                .required_arches
                .clone()
                .unwrap_or_else(|| default_arches(e.kind)),
            publish_dir: e.publish_dir.clone(),
        }
    }

    /// `<publish>/builds/<version>/<arch>/<path>`
    pub fn artifact_url(&self, version: &str, arch: &str, path: &str) -> String {
        format!(
            "{}/builds/{version}/{arch}/{path}",
            self.publish.trim_end_matches('/')
        )
    }

    /// `<publish>/builds/<version>/release.json`
    pub fn release_json_url(&self, version: &str) -> String {
        format!(
            "{}/builds/{version}/release.json",
            self.publish.trim_end_matches('/')
        )
    }
}

fn default_arches(kind: StreamType) -> Vec<String> {
    let a: &[&str] = match kind {
        StreamType::Production => &["x86_64", "aarch64", "ppc64le", "s390x"],
        _ => &["x86_64"],
    };
    a.iter().map(|s| s.to_string()).collect()
}

fn default_entries() -> BTreeMap<String, StreamEntry> {
    use StreamType::*;
    let rows: [(&str, u64, StreamType, Option<&str>, u32); 9] = [
        ("next", 1, Production, Some("next-devel"), 0),
        ("testing", 2, Production, Some("testing-devel"), 14),
        ("stable", 3, Production, Some("testing"), 0),
        ("next-devel", 10, Development, None, 0),
        ("testing-devel", 20, Development, None, 0),
        ("rawhide", 91, Mechanical, None, 0),
        ("branched", 92, Mechanical, None, 0),
        ("bodhi-updates-testing", 93, Mechanical, None, 0),
        ("bodhi-updates", 94, Mechanical, None, 0),
    ];
    rows.into_iter()
        .map(|(name, code, kind, from, bake)| {
            (
                name.to_string(),
                StreamEntry {
                    code,
                    kind,
                    promoted_from: from.map(str::to_string),
                    bake_days: Some(bake),
                    publish: None,
                    required_arches: None,
                    publish_dir: None,
                },
            )
        })
        .collect()
}

/// All streams: the defaults, overridden and extended by `streams.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Streams {
    streams: BTreeMap<String, Stream>,
}

impl Streams {
    /// The Fedora CoreOS defaults only.
    pub fn defaults() -> Streams {
        Self::merge(StreamsFile::default(), "defaults").expect("the defaults are consistent")
    }

    /// Read `<config_dir>/streams.yaml` if it exists, else the defaults.
    pub fn load(config_dir: &Path) -> Result<Streams> {
        let path = config_dir.join(STREAMS_YAML);
        if !path.exists() {
            return Ok(Self::defaults());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse the text of a `streams.yaml`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Streams> {
        let file: StreamsFile = if text.trim().is_empty() {
            StreamsFile::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?
        };
        Self::merge(file, origin)
    }

    fn merge(file: StreamsFile, origin: &str) -> Result<Streams> {
        let mut entries = default_entries();
        for (name, e) in file.streams {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                bail!("{origin}: streams.{name:?}: a stream name is letters, digits and '-'");
            }
            entries.insert(name, e);
        }
        let mut by_code: BTreeMap<u64, &str> = BTreeMap::new();
        for (name, e) in &entries {
            if let Some(other) = by_code.insert(e.code, name) {
                bail!(
                    "{origin}: streams.{name}.code: code {} is also the code of stream {other}",
                    e.code
                );
            }
            if let Some(from) = &e.promoted_from
                && !entries.contains_key(from)
            {
                bail!("{origin}: streams.{name}.promoted-from: no stream named {from:?}");
            }
            if let Some(a) = &e.required_arches
                && a.is_empty()
            {
                bail!("{origin}: streams.{name}.required-arches: must name at least one arch");
            }
            if let Some(p) = &e.publish {
                url::Url::parse(p)
                    .with_context(|| format!("{origin}: streams.{name}.publish: {p:?}"))?;
            }
        }
        // No promotion cycles.
        for name in entries.keys() {
            let mut seen = vec![name.as_str()];
            let mut cur = name.as_str();
            while let Some(from) = entries.get(cur).and_then(|e| e.promoted_from.as_deref()) {
                if seen.contains(&from) {
                    bail!(
                        "{origin}: streams.{name}.promoted-from: promotion cycle {} -> {from}",
                        seen.join(" -> ")
                    );
                }
                seen.push(from);
                cur = from;
            }
        }
        let streams = entries
            .iter()
            .map(|(n, e)| (n.clone(), Stream::from_entry(n, e)))
            .collect();
        Ok(Streams { streams })
    }

    /// The stream called `name`.
    pub fn get(&self, name: &str) -> Result<&Stream> {
        self.streams.get(name).with_context(|| {
            format!(
                "no stream named {name:?} (known: {})",
                self.streams.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The stream whose code is `code`.
    pub fn by_code(&self, code: u64) -> Option<&Stream> {
        self.streams.values().find(|s| s.code == code)
    }

    /// All streams, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Stream> {
        self.streams.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcos_defaults() {
        let s = Streams::defaults();
        assert_eq!(s.get("stable").unwrap().code, 3);
        assert_eq!(
            s.get("stable").unwrap().promoted_from.as_deref(),
            Some("testing")
        );
        assert_eq!(s.get("testing").unwrap().bake_days, 14);
        assert_eq!(s.by_code(94).unwrap().name, "bodhi-updates");
        assert!(s.get("nope").is_err());
    }
}
