//! `cosa prune`: drop old builds, as coreos-assembler's `cmd-prune` does.
//!
//! `--keep N` (default 3) keeps the N newest *untagged* builds; a build that a
//! tag in builds.json (`"tags": [{"name", "created", "target"}]`, written by
//! `cosa tag update`) points at is always kept and does not count towards N.
//! N = 0 keeps everything. Upstream orders builds by their meta.json
//! timestamps; we use builds.json's order, which is newest first by
//! construction.
//!
//! builds.json is rewritten first, then `latest`, then the directories are
//! deleted, so a crash never lists a deleted build. The OSTree objects are not
//! touched here: [`prune`] returns the commits that no kept build references,
//! for the caller to prune from `tmp/repo`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::builds::{self, BuildsJson};
use super::lock::WorkdirLock;
use super::meta;

/// coreos-assembler's `DEFAULT_KEEP_LAST_N`.
pub const DEFAULT_KEEP: usize = 3;

/// Which builds stay and which go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrunePlan {
    /// Newest first.
    pub keep: Vec<String>,
    /// Newest first.
    pub remove: Vec<String>,
    /// Kept because tagged: (build id, tag names).
    pub tagged: Vec<(String, Vec<String>)>,
}

/// Keep the `keep` newest untagged builds and every tagged one (0 keeps all).
pub fn plan_keep_last(builds: &BuildsJson, keep: usize) -> PrunePlan {
    let mut plan = PrunePlan::default();
    let mut left = keep;
    for b in &builds.builds {
        let tags = builds.tags_of(&b.id);
        if !tags.is_empty() {
            plan.tagged
                .push((b.id.clone(), tags.iter().map(|t| t.to_string()).collect()));
            plan.keep.push(b.id.clone());
        } else if keep == 0 || left > 0 {
            left = left.saturating_sub(1);
            plan.keep.push(b.id.clone());
        } else {
            plan.remove.push(b.id.clone());
        }
    }
    plan
}

/// Remove exactly `ids` (`cosa prune --build ID`); unknown or tagged ids are refused.
pub fn plan_ids(builds: &BuildsJson, ids: &[&str]) -> Result<PrunePlan> {
    for id in ids {
        if !builds.has(id) {
            bail!("cannot prune build {id:?}: it is not in builds.json");
        }
        let tags = builds.tags_of(id);
        if !tags.is_empty() {
            bail!(
                "cannot prune build {id}: it is tagged ({}); delete the tag first",
                tags.join(", ")
            );
        }
    }
    let (remove, keep) = builds
        .builds
        .iter()
        .map(|b| b.id.clone())
        .partition(|id| ids.contains(&id.as_str()));
    Ok(PrunePlan {
        keep,
        remove,
        tagged: Vec::new(),
    })
}

/// A build that was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedBuild {
    pub id: String,
    pub arches: Vec<String>,
    /// The `ostree-commit` of each arch whose meta.json could be read.
    pub ostree_commits: Vec<String>,
}

/// What [`prune`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneResult {
    pub removed: Vec<PrunedBuild>,
    /// Commits of removed builds that no kept build uses: safe to prune
    /// from the OSTree repo (the caller's job).
    pub unreferenced_commits: Vec<String>,
}

fn commits_of(builds_dir: &Path, id: &str, arches: &[String]) -> Vec<String> {
    arches
        .iter()
        .filter_map(|a| meta::read_value(&meta::meta_path(builds_dir, id, a)).ok())
        .filter_map(|v| v.get("ostree-commit")?.as_str().map(str::to_string))
        .collect()
}

/// Carry out `plan`: rewrite builds.json without the removed builds, repoint
/// `latest`, then delete their directories. A directory that fails to delete
/// is reported after the others are done; it is no longer listed, so the
/// next startup recovery removes it.
pub fn prune(builds_dir: &Path, plan: &PrunePlan, _lock: &WorkdirLock) -> Result<PruneResult> {
    let mut builds = BuildsJson::load(builds_dir)?;
    let mut result = PruneResult::default();
    for id in &plan.remove {
        if let Some(entry) = builds.remove_build(id) {
            result.removed.push(PrunedBuild {
                ostree_commits: commits_of(builds_dir, id, &entry.arches),
                id: entry.id,
                arches: entry.arches,
            });
        }
    }
    if result.removed.is_empty() {
        return Ok(result);
    }
    let kept: BTreeSet<String> = builds
        .builds
        .iter()
        .flat_map(|b| commits_of(builds_dir, &b.id, &b.arches))
        .collect();
    let mut seen = BTreeSet::new();
    result.unreferenced_commits = result
        .removed
        .iter()
        .flat_map(|p| p.ostree_commits.iter().cloned())
        .filter(|c| !kept.contains(c) && seen.insert(c.clone()))
        .collect();

    // Mark the directories first: once builds.json no longer lists them, a
    // kill before they are deleted leaves them for recovery to remove.
    for p in &result.removed {
        let dir = builds_dir.join(&p.id);
        if dir.is_dir() {
            builds::write_marker(&dir)?;
        }
    }
    builds.bump_timestamp_and_write(builds_dir)?;
    builds::set_latest(builds_dir, builds.latest())?;

    let mut failures = Vec::new();
    for p in &result.removed {
        let dir = builds_dir.join(&p.id);
        if let Err(e) = builds::remove_marked_dir(&dir) {
            failures.push(format!("{e:#}"));
        }
    }
    if !failures.is_empty() {
        return Err(anyhow::anyhow!(failures.join("; ")))
            .context("pruned builds.json, but could not delete some build directories");
    }
    builds::sync_dir(builds_dir).context("after pruning")?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::builds::Tag;

    fn store(ids: &[&str], tagged: &[(&str, &str)]) -> BuildsJson {
        let mut b = BuildsJson::default();
        for id in ids.iter().rev() {
            b.insert_build(id, "x86_64").unwrap();
        }
        b.tags = Some(
            tagged
                .iter()
                .map(|(name, target)| Tag {
                    name: name.to_string(),
                    created: "2024-01-01T00:00:00Z".into(),
                    target: target.to_string(),
                    extra: Default::default(),
                })
                .collect(),
        );
        b
    }

    #[test]
    fn keeps_n_untagged_plus_tagged() {
        let b = store(
            &["6", "5", "4", "3", "2", "1"],
            &[("beta", "5"), ("old", "1")],
        );
        let p = plan_keep_last(&b, 2);
        assert_eq!(p.keep, ["6", "5", "4", "1"]);
        assert_eq!(p.remove, ["3", "2"]);
        assert_eq!(
            p.tagged,
            [
                ("5".to_string(), vec!["beta".to_string()]),
                ("1".to_string(), vec!["old".to_string()])
            ]
        );
        assert!(plan_keep_last(&b, 0).remove.is_empty());
        assert_eq!(plan_keep_last(&b, 1).remove, ["4", "3", "2"]);
    }

    #[test]
    fn explicit_ids_refuse_tagged_and_unknown() {
        let b = store(&["3", "2", "1"], &[("beta", "2")]);
        assert_eq!(plan_ids(&b, &["1"]).unwrap().remove, ["1"]);
        assert!(format!("{:#}", plan_ids(&b, &["2"]).unwrap_err()).contains("tagged (beta)"));
        assert!(plan_ids(&b, &["9"]).is_err());
    }
}
