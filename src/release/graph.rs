//! The update graph a node is served, built with fedora-coreos-cincinnati's rules from a
//! release index (versions, oldest first) and the updates metadata:
//!
//! - nodes are the releases in index order;
//! - a release with a `rollout` gets an edge from every release since the previous barrier
//!   (that barrier included);
//! - a `barrier` gets an edge from every release since the previous barrier (from the first
//!   release when there is none); a barrier that is also rolling out is handled as a rollout;
//! - releases with neither get no incoming edge (hence the `start_percentage: 1.0` record);
//! - a `deadend` has no outgoing edges;
//! - edges into a rolling-out release are hidden from a node whose wariness is greater than
//!   the rollout's current percentage ([`Rollout::percentage_at`]), i.e. it is visible while
//!   wariness <= percentage (upstream compares with `>`; a wariness-0 node sees everything).

use std::collections::BTreeMap;
use std::fmt;

use crate::release::updates::{Rollout, Updates};

pub const AGE_INDEX: &str = "org.fedoraproject.coreos.releases.age_index";
pub const BARRIER: &str = "org.fedoraproject.coreos.updates.barrier";
pub const BARRIER_REASON: &str = "org.fedoraproject.coreos.updates.barrier_reason";
pub const DEADEND: &str = "org.fedoraproject.coreos.updates.deadend";
pub const DEADEND_REASON: &str = "org.fedoraproject.coreos.updates.deadend_reason";
pub const ROLLOUT: &str = "org.fedoraproject.coreos.updates.rollout";
pub const DURATION: &str = "org.fedoraproject.coreos.updates.duration_minutes";
pub const START_EPOCH: &str = "org.fedoraproject.coreos.updates.start_epoch";
pub const START_VALUE: &str = "org.fedoraproject.coreos.updates.start_value";

/// An update graph: `edges` are `(from, to)` indexes into `nodes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub nodes: Vec<String>,
    /// Cincinnati metadata of each node (same index as `nodes`).
    pub metadata: Vec<BTreeMap<String, String>>,
    pub edges: Vec<(usize, usize)>,
}

/// Build the graph served to a node of `wariness` (0.0..=1.0) at time `now` (epoch seconds).
pub fn build_graph(releases: &[String], updates: &Updates, wariness: f64, now: i64) -> Graph {
    let mut metadata = Vec::with_capacity(releases.len());
    let mut rollouts: Vec<Option<&Rollout>> = Vec::with_capacity(releases.len());
    let mut barriers = Vec::new();
    let mut deadends = Vec::new();
    for (i, version) in releases.iter().enumerate() {
        let mut meta = BTreeMap::new();
        meta.insert(AGE_INDEX.to_string(), i.to_string());
        let entry = updates.entry(version).map(|e| &e.metadata);
        let mut rollout = None;
        if let Some(m) = entry {
            if let Some(b) = &m.barrier {
                meta.insert(BARRIER.to_string(), "true".to_string());
                meta.insert(BARRIER_REASON.to_string(), or_generic(&b.reason));
                barriers.push(i);
            }
            if let Some(d) = &m.deadend {
                meta.insert(DEADEND.to_string(), "true".to_string());
                meta.insert(DEADEND_REASON.to_string(), or_generic(&d.reason));
                deadends.push(i);
            }
            if let Some(r) = &m.rollout {
                meta.insert(ROLLOUT.to_string(), "true".to_string());
                if let Some(v) = r.start_epoch {
                    meta.insert(START_EPOCH.to_string(), v.to_string());
                }
                if let Some(v) = r.start_percentage {
                    meta.insert(START_VALUE.to_string(), v.to_string());
                }
                if let Some(v) = r.duration_minutes {
                    meta.insert(DURATION.to_string(), v.to_string());
                }
                rollout = Some(r);
            }
        }
        metadata.push(meta);
        rollouts.push(rollout);
    }

    let previous_barrier = |age: usize| barriers.iter().rev().find(|&&b| b < age).copied();
    let mut edges = Vec::new();
    for (target, rollout) in rollouts.iter().enumerate() {
        let is_barrier = barriers.contains(&target);
        if rollout.is_none() && !is_barrier {
            continue;
        }
        if let Some(r) = rollout
            && wariness > r.percentage_at(now)
        {
            continue;
        }
        let from = previous_barrier(target).unwrap_or(0);
        edges.extend((from..target).map(|i| (i, target)));
    }
    edges.retain(|(from, _)| !deadends.contains(from));
    edges.sort_unstable();
    edges.dedup();

    Graph {
        nodes: releases.to_vec(),
        metadata,
        edges,
    }
}

fn or_generic(reason: &str) -> String {
    if reason.is_empty() {
        "generic".to_string()
    } else {
        reason.to_string()
    }
}

impl Graph {
    /// Cincinnati JSON: `{"nodes": [{version, payload, metadata}], "edges": [[from, to]]}`.
    /// We have no payload (ostree checksum) per node here, so `payload` is empty.
    pub fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .zip(&self.metadata)
            .map(|(version, meta)| {
                serde_json::json!({"version": version, "payload": "", "metadata": meta})
            })
            .collect();
        serde_json::json!({"nodes": nodes, "edges": self.edges})
    }

    /// Graphviz: barriers as boxes, deadends as octagons, rollouts dashed.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph updates {\n  rankdir=LR;\n");
        for (i, (v, meta)) in self.nodes.iter().zip(&self.metadata).enumerate() {
            let mut attrs = vec![format!("label=\"{v}\"")];
            if meta.contains_key(BARRIER) {
                attrs.push("shape=box".into());
            }
            if meta.contains_key(DEADEND) {
                attrs.push("shape=octagon".into());
                attrs.push("color=red".into());
            }
            if meta.contains_key(ROLLOUT) {
                attrs.push("style=dashed".into());
            }
            out.push_str(&format!("  n{i} [{}];\n", attrs.join(", ")));
        }
        for (a, b) in &self.edges {
            out.push_str(&format!("  n{a} -> n{b};\n"));
        }
        out.push_str("}\n");
        out
    }

    /// The version of node `i` (`#i` when out of range).
    pub fn name(&self, i: usize) -> String {
        self.nodes
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("#{i}"))
    }

    /// Indexes reachable from `start` (including it).
    pub fn reachable(&self, start: usize) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            if n >= seen.len() || seen[n] {
                continue;
            }
            seen[n] = true;
            stack.extend(self.edges.iter().filter(|(a, _)| *a == n).map(|(_, b)| *b));
        }
        seen
    }
}

/// Something wrong with a stream's graph; each names the versions concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A release that is not a deadend has no path to the newest release.
    Stranded { version: String, newest: String },
    /// Updates metadata (`what`: rollout, barrier or deadend) names a version not in the index.
    MissingVersion { version: String, what: &'static str },
    /// An edge jumps over a barrier release.
    SkippedBarrier {
        from: String,
        to: String,
        barrier: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Stranded { version, newest } => {
                write!(
                    f,
                    "{version} has no update path to the newest release {newest}"
                )
            }
            Problem::MissingVersion { version, what } => {
                write!(
                    f,
                    "{what} names {version}, which is not in the release index"
                )
            }
            Problem::SkippedBarrier { from, to, barrier } => {
                write!(f, "update {from} -> {to} skips the barrier {barrier}")
            }
        }
    }
}

/// Check a stream at full rollout (wariness 0, every rollout finished): every release that
/// is not a deadend reaches the newest release, the metadata names only indexed versions,
/// and no edge jumps over a barrier.
pub fn check(releases: &[String], updates: &Updates) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    for e in &updates.releases {
        if releases.contains(&e.version) {
            continue;
        }
        let m = &e.metadata;
        for (present, what) in [
            (m.rollout.is_some(), "rollout"),
            (m.barrier.is_some(), "barrier"),
            (m.deadend.is_some(), "deadend"),
        ] {
            if present {
                problems.push(Problem::MissingVersion {
                    version: e.version.clone(),
                    what,
                });
            }
        }
    }

    problems.extend(check_graph(&build_graph(releases, updates, 0.0, i64::MAX)));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The graph half of [`check`]: edges jumping over a barrier, and releases that are not
/// deadends without a path to the newest release.
pub fn check_graph(graph: &Graph) -> Vec<Problem> {
    let mut problems = Vec::new();
    let barriers: Vec<usize> = (0..graph.nodes.len())
        .filter(|&i| {
            graph
                .metadata
                .get(i)
                .is_some_and(|m| m.contains_key(BARRIER))
        })
        .collect();
    for &(a, b) in &graph.edges {
        if let Some(&bar) = barriers.iter().find(|&&x| a < x && x < b) {
            problems.push(Problem::SkippedBarrier {
                from: graph.name(a),
                to: graph.name(b),
                barrier: graph.name(bar),
            });
        }
    }

    if let Some(newest) = graph.nodes.len().checked_sub(1) {
        // Who can reach the newest release: propagate backwards along edges to a fixpoint.
        let mut reaches = vec![false; graph.nodes.len()];
        reaches[newest] = true;
        let mut changed = true;
        while changed {
            changed = false;
            for &(a, b) in &graph.edges {
                if b < reaches.len() && a < reaches.len() && reaches[b] && !reaches[a] {
                    reaches[a] = true;
                    changed = true;
                }
            }
        }
        for (i, ok) in reaches.iter().enumerate() {
            if !ok
                && !graph
                    .metadata
                    .get(i)
                    .is_some_and(|m| m.contains_key(DEADEND))
            {
                problems.push(Problem::Stranded {
                    version: graph.nodes[i].clone(),
                    newest: graph.nodes[newest].clone(),
                });
            }
        }
    }

    problems
}

/// Releases at the end of the index with neither a rollout nor a barrier entry: published but
/// not rolled out yet, so by design no node is offered them. Returns how many there are
/// (never all of them: the oldest release is the graph's root).
pub fn pending_count(releases: &[String], updates: &Updates) -> usize {
    let rolled = |v: &String| {
        updates
            .entry(v)
            .is_some_and(|e| e.metadata.rollout.is_some() || e.metadata.barrier.is_some())
    };
    let trailing = releases.iter().rev().take_while(|v| !rolled(v)).count();
    trailing.min(releases.len().saturating_sub(1))
}

/// The check `cosa release`, `cosa rollout`, `cosa barrier`, `cosa deadend` and
/// `cosa graph check` run before writing: [`check`], except that releases not rolled out yet
/// ([`pending_count`]) are left out of the "path to the newest release" rule (every other
/// release must reach the newest rolled-out one). Returns the pending versions and the
/// problems.
pub fn check_rolled_out(releases: &[String], updates: &Updates) -> (Vec<String>, Vec<Problem>) {
    let keep = releases.len() - pending_count(releases, updates);
    let pending = releases[keep..].to_vec();
    let mut problems: Vec<Problem> = match check(releases, updates) {
        Ok(()) => Vec::new(),
        Err(p) => p,
    };
    problems.retain(|p| !matches!(p, Problem::Stranded { .. }));
    let graph = build_graph(&releases[..keep], updates, 0.0, i64::MAX);
    problems.extend(
        check_graph(&graph)
            .into_iter()
            .filter(|p| matches!(p, Problem::Stranded { .. })),
    );
    (pending, problems)
}
