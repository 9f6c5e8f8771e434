//! The local publish directory: where `cosa release`, `cosa rollout` and
//! friends write, laid out as Fedora CoreOS's bucket so that it can be
//! synced to a web server as is:
//!
//! ```text
//! <root>/prod/streams/<stream>/releases.json              the release index
//! <root>/prod/streams/<stream>/builds/<version>/release.json
//! <root>/streams/<stream>.json                             stream metadata
//! <root>/updates/<stream>.json                             updates metadata
//! ```
//!
//! The root is `--publish-dir` when given, else the stream's `publish-dir`
//! in streams.yaml (relative to the working directory), else
//! `<workdir>/publish`.
//!
//! Every file is written to a temp name and renamed (a reader sees the old
//! file or the new one); a run killed before the rename leaves its temp
//! file, which the next run of a verb that writes there removes
//! ([`PublishDir::remove_leftovers`]) so that a sync of the directory never
//! carries half a file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::index::ReleaseIndex;
use super::streams::Stream;
use super::updates::Updates;

/// A local publish root.
#[derive(Debug, Clone)]
pub struct PublishDir {
    pub root: PathBuf,
}

impl PublishDir {
    /// The publish root for `stream`: `explicit`, else streams.yaml's
    /// `publish-dir` (relative to `workdir`), else `<workdir>/publish`.
    pub fn resolve(workdir: &Path, explicit: Option<&Path>, stream: &Stream) -> PublishDir {
        let root = match (explicit, &stream.publish_dir) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(d)) => workdir.join(d),
            (None, None) => workdir.join("publish"),
        };
        PublishDir { root }
    }

    /// `prod/streams/<stream>`
    pub fn stream_dir(&self, stream: &str) -> PathBuf {
        self.root.join("prod/streams").join(stream)
    }

    /// `prod/streams/<stream>/releases.json`
    pub fn releases_json(&self, stream: &str) -> PathBuf {
        self.stream_dir(stream).join("releases.json")
    }

    /// `prod/streams/<stream>/builds/<version>/release.json`
    pub fn release_json(&self, stream: &str, version: &str) -> PathBuf {
        self.stream_dir(stream)
            .join("builds")
            .join(version)
            .join("release.json")
    }

    /// `streams/<stream>.json`
    pub fn stream_metadata(&self, stream: &str) -> PathBuf {
        self.root
            .join(super::metadata::stream_metadata_path(stream))
    }

    /// `updates/<stream>.json`
    pub fn updates_json(&self, stream: &str) -> PathBuf {
        self.root.join("updates").join(format!("{stream}.json"))
    }

    /// Remove the temp files (`.tmp*`, as [`crate::util::write_atomic`]
    /// names them) that a killed run left in the directories cosa writes for
    /// `stream` (with `version`: its release dir too). Run under the
    /// working-directory lock, so that no temp file of a running cosa is
    /// taken. Returns what was removed.
    pub fn remove_leftovers(&self, stream: &str, version: Option<&str>) -> Result<Vec<PathBuf>> {
        let mut dirs = vec![
            self.stream_dir(stream),
            self.root.join("updates"),
            self.root.join("streams"),
        ];
        if let Some(dir) =
            version.and_then(|v| self.release_json(stream, v).parent().map(Path::to_path_buf))
        {
            dirs.push(dir);
        }
        let mut removed = Vec::new();
        for dir in dirs {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
            };
            for e in rd {
                let e = e.with_context(|| format!("listing {}", dir.display()))?;
                let is_file = e.file_type().is_ok_and(|t| t.is_file());
                if is_file && e.file_name().to_string_lossy().starts_with(".tmp") {
                    std::fs::remove_file(e.path())
                        .with_context(|| format!("removing {}", e.path().display()))?;
                    removed.push(e.path());
                }
            }
        }
        Ok(removed)
    }

    /// The stream's release index, or an empty one when nothing is published yet.
    pub fn index(&self, stream: &str, now: &str) -> Result<ReleaseIndex> {
        ReleaseIndex::read_or_new(&self.releases_json(stream), stream, now)
    }

    /// The released versions of `stream`, oldest first (empty when none).
    pub fn released_versions(&self, stream: &str) -> Result<Vec<String>> {
        let idx = self.index(stream, "1970-01-01T00:00:00Z")?;
        Ok(idx.releases.into_iter().map(|r| r.version).collect())
    }

    /// The stream's updates metadata, or an empty one at `now`.
    pub fn updates(&self, stream: &str, now: i64) -> Result<Updates> {
        let path = self.updates_json(stream);
        if path.exists() {
            let u = Updates::load(&path)?;
            anyhow::ensure!(
                u.stream == stream,
                "{} is the updates metadata of stream {:?}, not {stream:?}",
                path.display(),
                u.stream
            );
            Ok(u)
        } else {
            Ok(Updates::new(stream, now))
        }
    }
}
