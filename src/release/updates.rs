//! Updates metadata, `updates/<stream>.json`, in the format fedora-coreos-cincinnati reads
//! (the format of Fedora CoreOS's `updates/<stream>.json`; tests/data/release has an example): per release, an optional
//! `barrier {reason}`, `deadend {reason}` and `rollout {start_epoch, start_percentage,
//! duration_minutes}`.
//!
//! Semantics follow fedora-coreos-cincinnati: only releases with a `rollout` or a `barrier`
//! entry receive update edges (see [`crate::release::graph`]), so a fully rolled-out release
//! keeps a record `rollout: {start_percentage: 1.0}`. [`Updates::rollout_clean`] keeps that
//! record only for the newest completed rollout (newer releases supersede older ones) and
//! drops the others, as fedora-coreos-streams does.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::util::time;

/// The whole `updates/<stream>.json` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Updates {
    pub stream: String,
    pub metadata: UpdatesMetadata,
    pub releases: Vec<UpdateEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdatesMetadata {
    /// RFC 3339 timestamp of the last change.
    #[serde(rename = "last-modified")]
    pub last_modified: String,
}

/// Update metadata of one release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateEntry {
    pub version: String,
    pub metadata: UpdateMetadata,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barrier: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadend: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

impl UpdateMetadata {
    pub fn is_empty(&self) -> bool {
        self.barrier.is_none() && self.deadend.is_none() && self.rollout.is_none()
    }
}

/// `barrier` and `deadend` both carry only a reason (usually a URL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub reason: String,
}

/// A throttled rollout; all fields optional as in fedora-coreos-cincinnati.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Seconds since the epoch; absent means 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_epoch: Option<i64>,
    /// Fraction of nodes (0.0..=1.0) at the start; absent means 0.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_percentage: Option<f64>,
    /// Minutes to reach 1.0; absent means the rollout stays at its start value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_minutes: Option<u64>,
}

impl Rollout {
    /// The fraction of nodes (0.0..=1.0) that see this release at `now`, with
    /// fedora-coreos-cincinnati's rule: 0.0 before the start, then linear from the start
    /// percentage to 1.0 over the duration; without a duration it stays at the start value.
    pub fn percentage_at(&self, now: i64) -> f64 {
        let start = self.start_epoch.unwrap_or(0);
        let value = self.start_percentage.unwrap_or(0.0);
        if now < start {
            return 0.0;
        }
        match self.duration_minutes {
            None => value,
            Some(mins) => {
                let secs = mins.max(1).saturating_mul(60).min(i64::MAX as u64) as i64;
                let end = start.saturating_add(secs);
                if now >= end {
                    1.0
                } else {
                    value + (1.0 - value) * (now - start) as f64 / secs as f64
                }
            }
        }
    }

    /// Whether the rollout has reached every node for good at `now`.
    pub fn is_complete(&self, now: i64) -> bool {
        self.percentage_at(now) >= 1.0
    }
}

/// The stream code of a version `X.Y.Z.N`: its third field (`3` in `44.20260707.3.1`).
pub fn stream_code(version: &str) -> Option<&str> {
    let fields: Vec<&str> = version.split('.').collect();
    if fields.len() != 4 || fields.iter().any(|f| f.is_empty()) {
        return None;
    }
    Some(fields[2])
}

/// What `cosa barrier` and `cosa deadend` set on a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Every update path passes through the release.
    Barrier,
    /// Nodes on the release are offered no update.
    Deadend,
}

impl Updates {
    /// An empty updates file for `stream`, last modified at `now`.
    pub fn new(stream: &str, now: i64) -> Self {
        Updates {
            stream: stream.to_string(),
            metadata: UpdatesMetadata {
                last_modified: time::format_rfc3339(now),
            },
            releases: Vec::new(),
        }
    }

    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).context("parsing updates metadata")
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading updates metadata {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("parsing updates metadata {}", path.display()))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::util::write_json_atomic(path, self)
            .with_context(|| format!("writing updates metadata {}", path.display()))
    }

    pub fn entry(&self, version: &str) -> Option<&UpdateEntry> {
        self.releases.iter().find(|e| e.version == version)
    }

    /// Start (or replace) a rollout of `version`.
    #[allow(clippy::too_many_arguments)]
    pub fn set_rollout(
        &mut self,
        released: &[String],
        code: &str,
        version: &str,
        start_epoch: i64,
        duration_minutes: u64,
        start_percentage: f64,
        now: i64,
    ) -> Result<()> {
        if !(0.0..=1.0).contains(&start_percentage) {
            bail!(
                "rollout of {version}: start percentage {start_percentage} is not within 0.0..=1.0"
            );
        }
        if duration_minutes == 0 {
            bail!("rollout of {version}: duration must be at least one minute");
        }
        let meta = self.entry_mut(released, code, version, now)?;
        meta.rollout = Some(Rollout {
            start_epoch: Some(start_epoch),
            start_percentage: Some(start_percentage),
            duration_minutes: Some(duration_minutes),
        });
        Ok(())
    }

    /// Mark `version` as a barrier (every node passes through it) or a
    /// deadend (nodes on it are offered no update), with `reason`.
    pub fn set_mark(
        &mut self,
        kind: Mark,
        released: &[String],
        code: &str,
        version: &str,
        reason: &str,
        now: i64,
    ) -> Result<()> {
        let name = match kind {
            Mark::Barrier => "barrier",
            Mark::Deadend => "deadend",
        };
        check_reason(name, version, reason)?;
        let meta = self.entry_mut(released, code, version, now)?;
        let r = Some(Reason {
            reason: reason.to_string(),
        });
        match kind {
            Mark::Barrier => meta.barrier = r,
            Mark::Deadend => meta.deadend = r,
        }
        Ok(())
    }

    /// Retire completed rollouts (start + duration <= `now`, or a start value of 1.0 without
    /// duration): the newest completed one (latest in file order, which the setters keep in
    /// release order) becomes the record `{start_percentage: 1.0}`, older completed ones are
    /// removed, and entries left without metadata are dropped. Rollouts still in progress
    /// are untouched. Returns the versions whose rollout entry was removed.
    pub fn rollout_clean(&mut self, now: i64) -> Vec<String> {
        let completed: Vec<usize> = self
            .releases
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.metadata
                    .rollout
                    .as_ref()
                    .is_some_and(|r| r.is_complete(now))
            })
            .map(|(i, _)| i)
            .collect();
        let Some((&newest, older)) = completed.split_last() else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for &i in older {
            self.releases[i].metadata.rollout = None;
            removed.push(self.releases[i].version.clone());
        }
        let record = Rollout {
            start_percentage: Some(1.0),
            ..Default::default()
        };
        let changed =
            !removed.is_empty() || self.releases[newest].metadata.rollout.as_ref() != Some(&record);
        self.releases[newest].metadata.rollout = Some(record);
        self.releases.retain(|e| !e.metadata.is_empty());
        if changed {
            self.touch(now);
        }
        removed
    }

    /// Set `metadata.last-modified` to `now`.
    pub fn touch(&mut self, now: i64) {
        self.metadata.last_modified = time::format_rfc3339(now);
    }

    /// The metadata of `version`, created in release order if missing, after checking the
    /// version belongs to this stream and is released.
    fn entry_mut(
        &mut self,
        released: &[String],
        code: &str,
        version: &str,
        now: i64,
    ) -> Result<&mut UpdateMetadata> {
        match stream_code(version) {
            None => bail!("version {version:?} is not of the form X.Y.Z.N"),
            Some(c) if c != code => bail!(
                "version {version} has stream code {c}, but stream {} has code {code}",
                self.stream
            ),
            Some(_) => {}
        }
        let Some(pos) = released.iter().position(|v| v == version) else {
            bail!(
                "version {version} is not released on stream {}",
                self.stream
            );
        };
        self.touch(now);
        let idx = match self.releases.iter().position(|e| e.version == version) {
            Some(i) => i,
            None => {
                // Insert before the first entry released after this version.
                let at = self
                    .releases
                    .iter()
                    .position(|e| released.iter().position(|v| *v == e.version) > Some(pos))
                    .unwrap_or(self.releases.len());
                self.releases.insert(
                    at,
                    UpdateEntry {
                        version: version.to_string(),
                        metadata: UpdateMetadata::default(),
                    },
                );
                at
            }
        };
        Ok(&mut self.releases[idx].metadata)
    }
}

fn check_reason(what: &str, version: &str, reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        bail!("{what} on {version}: a reason is required");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_percentage() {
        let r = Rollout {
            start_epoch: Some(1000),
            start_percentage: Some(0.2),
            duration_minutes: Some(10),
        };
        assert_eq!(r.percentage_at(999), 0.0);
        assert!((r.percentage_at(1000) - 0.2).abs() < 1e-9);
        assert!((r.percentage_at(1300) - 0.6).abs() < 1e-9);
        assert_eq!(r.percentage_at(1600), 1.0);
        let done = Rollout {
            start_percentage: Some(1.0),
            ..Default::default()
        };
        assert!(done.is_complete(0));
    }

    #[test]
    fn codes() {
        assert_eq!(stream_code("44.20260707.3.1"), Some("3"));
        assert_eq!(stream_code("44.20260707.3"), None);
        assert_eq!(stream_code("44..3.1"), None);
    }
}
