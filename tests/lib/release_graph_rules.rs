//! The update graph on the reference updates file with a synthetic release index: the
//! reference's barriers, one plain release after each, then the two rollout releases.

use cosa::release::graph::{self, Graph, Problem, build_graph, check, check_graph};
use cosa::release::updates::{Mark, Updates};
use std::collections::BTreeMap;

/// The project's own updates metadata in the upstream format (tests/data/release).
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/release/updates-stable.json"
);
const R1: &str = "44.20260621.3.1";
const R2: &str = "44.20260707.3.1";
const R2_START: i64 = 1784728800;
const R2_END: i64 = R2_START + 2880 * 60;

fn reference() -> Updates {
    Updates::load(std::path::Path::new(REFERENCE)).expect("reference updates")
}

/// `(index, barriers, plain releases)`: barrier B_k is followed by plain release `B_k` with
/// its last field replaced by 9.
fn index(u: &Updates) -> (Vec<String>, Vec<String>, Vec<String>) {
    let barriers: Vec<String> = u
        .releases
        .iter()
        .filter(|e| e.metadata.barrier.is_some())
        .map(|e| e.version.clone())
        .collect();
    let mut all = Vec::new();
    let mut plain = Vec::new();
    for b in &barriers {
        let (head, _) = b.rsplit_once('.').unwrap();
        let p = format!("{head}.9");
        all.push(b.clone());
        all.push(p.clone());
        plain.push(p);
    }
    all.push(R1.to_string());
    all.push(R2.to_string());
    (all, barriers, plain)
}

fn idx(g: &Graph, v: &str) -> usize {
    g.nodes.iter().position(|n| n == v).unwrap()
}

fn targets(g: &Graph, v: &str) -> Vec<String> {
    let i = idx(g, v);
    g.edges
        .iter()
        .filter(|(a, _)| *a == i)
        .map(|(_, b)| g.nodes[*b].clone())
        .collect()
}

fn sources(g: &Graph, v: &str) -> Vec<String> {
    let i = idx(g, v);
    g.edges
        .iter()
        .filter(|(_, b)| *b == i)
        .map(|(a, _)| g.nodes[*a].clone())
        .collect()
}

#[test]
fn barriers_route_every_release_through() {
    let u = reference();
    let (rel, barriers, plain) = index(&u);
    let g = build_graph(&rel, &u, 0.0, R2_END);
    assert_eq!(g.nodes, rel);
    // First barrier: nothing before it. Each later barrier: from the previous one and the
    // plain release in between, nothing older.
    assert!(sources(&g, &barriers[0]).is_empty());
    for k in 1..barriers.len() {
        assert_eq!(
            sources(&g, &barriers[k]),
            vec![barriers[k - 1].clone(), plain[k - 1].clone()]
        );
    }
    // Plain releases get no edges in; each leads only to the next barrier (or the rollouts).
    for (k, p) in plain.iter().enumerate() {
        assert!(sources(&g, p).is_empty(), "{p} has incoming edges");
        if k + 1 < barriers.len() {
            assert_eq!(targets(&g, p), vec![barriers[k + 1].clone()]);
        }
    }
    let last_b = barriers.last().unwrap().clone();
    let last_p = plain.last().unwrap().clone();
    assert_eq!(sources(&g, R1), vec![last_b.clone(), last_p.clone()]);
    assert_eq!(sources(&g, R2), vec![last_b, last_p, R1.to_string()]);
    // No edge jumps over a barrier; everything reaches the newest.
    assert_eq!(check(&rel, &u), Ok(()));
    let json = g.to_json();
    assert_eq!(json["nodes"].as_array().unwrap().len(), rel.len());
    assert_eq!(json["edges"].as_array().unwrap().len(), g.edges.len());
    assert_eq!(json["nodes"][0]["metadata"][graph::BARRIER], "true");
    assert_eq!(json["nodes"][0]["payload"], "");
    assert_eq!(json["edges"][0][1], 2);
    let dot = g.to_dot();
    assert!(dot.starts_with("digraph") && dot.contains("n0 -> n2;"));
}

#[test]
fn deadend_has_no_outgoing_edges() {
    let mut u = reference();
    let (rel, barriers, plain) = index(&u);
    let dead = plain[5].clone();
    u.set_mark(Mark::Deadend, &rel, "3", &dead, "https://example/dead", 0)
        .unwrap();
    let g = build_graph(&rel, &u, 0.0, R2_END);
    assert!(targets(&g, &dead).is_empty());
    assert_eq!(sources(&g, &barriers[6]), vec![barriers[5].clone()]);
    assert_eq!(
        g.metadata[idx(&g, &dead)][graph::DEADEND_REASON],
        "https://example/dead"
    );
    // A deadend is not stranded.
    assert_eq!(check(&rel, &u), Ok(()));
}

#[test]
fn rolling_out_release_only_for_low_wariness_mid_rollout() {
    let u = reference();
    let (rel, _, _) = index(&u);
    let half = R2_START + 1440 * 60; // 50 %
    let low = build_graph(&rel, &u, 0.3, half);
    let high = build_graph(&rel, &u, 0.7, half);
    assert_eq!(sources(&low, R2).len(), 3);
    assert!(sources(&high, R2).is_empty());
    // The completed R1 stays visible to everyone.
    assert_eq!(sources(&high, R1).len(), 2);
    // Before the start nobody wary sees it; after the end everybody does.
    assert!(sources(&build_graph(&rel, &u, 0.01, R2_START - 1), R2).is_empty());
    assert_eq!(sources(&build_graph(&rel, &u, 1.0, R2_END), R2).len(), 3);
    // Right at the start, the start percentage (0.0) is what counts.
    assert!(sources(&build_graph(&rel, &u, 0.01, R2_START), R2).is_empty());
}

#[test]
fn check_names_stranded_releases() {
    let u = reference();
    let (mut rel, _, _) = index(&u);
    // A release added after the last rollout, with no rollout of its own: nothing leads to it.
    rel.push("44.20260720.3.0".to_string());
    let problems = check(&rel, &u).unwrap_err();
    assert!(problems.contains(&Problem::Stranded {
        version: R2.to_string(),
        newest: "44.20260720.3.0".to_string(),
    }));
    assert_eq!(problems.len(), rel.len() - 1);
    assert!(problems[0].to_string().contains("44.20260720.3.0"));
}

#[test]
fn check_strands_releases_behind_a_deadend_barrier() {
    let mut u = reference();
    let (rel, barriers, plain) = index(&u);
    u.set_mark(Mark::Deadend, &rel, "3", &barriers[10], "broken", 0)
        .unwrap();
    let problems = check(&rel, &u).unwrap_err();
    let stranded: Vec<&str> = problems
        .iter()
        .map(|p| match p {
            Problem::Stranded { version, .. } => version.as_str(),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert!(stranded.contains(&barriers[9].as_str()));
    assert!(stranded.contains(&plain[9].as_str()));
    assert!(stranded.contains(&barriers[0].as_str()));
    assert!(!stranded.contains(&barriers[10].as_str()));
    assert!(!stranded.contains(&plain[10].as_str()));
}

#[test]
fn check_names_versions_missing_from_the_index() {
    let u = reference();
    let (rel, barriers, _) = index(&u);
    let rel: Vec<String> = rel.into_iter().filter(|v| *v != barriers[3]).collect();
    let problems = check(&rel, &u).unwrap_err();
    assert_eq!(
        problems,
        vec![Problem::MissingVersion {
            version: barriers[3].clone(),
            what: "barrier",
        }]
    );
    assert!(problems[0].to_string().contains(&barriers[3]));
    // A rollout for a version not in the index.
    let (rel, _, _) = index(&u);
    let short: Vec<String> = rel.iter().filter(|v| *v != R2).cloned().collect();
    let problems = check(&short, &u).unwrap_err();
    assert!(problems.contains(&Problem::MissingVersion {
        version: R2.to_string(),
        what: "rollout",
    }));
}

#[test]
fn check_graph_names_a_skipped_barrier() {
    let nodes: Vec<String> = ["1.1.3.0", "1.2.3.0", "1.3.3.0"].map(String::from).to_vec();
    let mut metadata = vec![BTreeMap::new(); 3];
    metadata[1].insert(graph::BARRIER.to_string(), "true".to_string());
    let g = Graph {
        nodes,
        metadata,
        edges: vec![(0, 1), (1, 2), (0, 2)],
    };
    assert_eq!(
        check_graph(&g),
        vec![Problem::SkippedBarrier {
            from: "1.1.3.0".into(),
            to: "1.3.3.0".into(),
            barrier: "1.2.3.0".into(),
        }]
    );
    let ok = Graph {
        edges: vec![(0, 1), (1, 2)],
        ..g
    };
    assert!(check_graph(&ok).is_empty());
}
