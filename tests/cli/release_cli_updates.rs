//! `cosa rollout`, `cosa barrier`, `cosa deadend`, `cosa rollout clean` and
//! `cosa graph [check]` on a stream whose release index is published in the
//! working directory's publish dir.

use crate::release_common;
use release_common::*;

const A: &str = "1.20260101.3.0";
const B: &str = "1.20260105.3.0";
const C: &str = "1.20260110.3.0";

fn updates(e: &Env) -> serde_json::Value {
    json(&e.publish().join("updates/stable.json"))
}

fn edges(e: &Env, at: i64, wariness: &str) -> Vec<(String, String)> {
    let o = e.cosa_at(
        at,
        &[
            "graph",
            "--stream",
            "stable",
            "--json",
            "--wariness",
            wariness,
            "--at",
            &at.to_string(),
        ],
        true,
    );
    let g: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    let name = |i: &serde_json::Value| {
        g["nodes"][i.as_u64().unwrap() as usize]["version"]
            .as_str()
            .unwrap()
            .to_string()
    };
    g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (name(&p[0]), name(&p[1])))
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn rollouts_barriers_deadends_and_the_graph() {
    let e = env(false);
    publish_index(&e, &[A, B]);

    // Refusals: wrong stream code, unreleased version, bad percentage; nothing written.
    let now = T0 + 20 * DAY;
    for (args, msg) in [
        (vec!["--version", "1.20260105.2.0"], "stream code 2"),
        (vec!["--version", C], "not released on stream stable"),
        (
            vec!["--version", B, "--start-percentage", "150%"],
            "not within",
        ),
    ] {
        let mut a = vec![
            "rollout",
            "--stream",
            "stable",
            "--start",
            "now",
            "--duration",
            "1h",
        ];
        a.extend(args);
        let o = e.cosa_at(now, &a, false);
        assert!(stderr(&o).contains(msg), "{a:?}: {}", stderr(&o));
    }
    assert!(!e.publish().join("updates/stable.json").exists());

    // Roll B out from 20% over 100 minutes.
    let start = now;
    e.cosa_at(
        now,
        &[
            "rollout",
            "--stream",
            "stable",
            "--version",
            B,
            "--start",
            &start.to_string(),
            "--duration",
            "100m",
            "--start-percentage",
            "20%",
        ],
        true,
    );
    let u = updates(&e);
    assert_eq!(u["stream"], "stable");
    assert_eq!(u["releases"][0]["version"], B);
    assert_eq!(
        u["releases"][0]["metadata"]["rollout"],
        serde_json::json!({"start_epoch": start, "start_percentage": 0.2, "duration_minutes": 100})
    );
    // The reference file's shape: same top-level keys, rollout keys among the reference's.
    let reference = json(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/release/updates-stable.json"
    )));
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&u), keys(&reference));
    cosa::release::updates::Updates::from_json(&u.to_string()).unwrap();

    // Half-way (60%): a node of wariness 0.5 sees A -> B, one of 0.9 does not.
    let mid = start + 50 * 60;
    assert_eq!(edges(&e, mid, "0.5"), [pair(A, B)]);
    assert_eq!(edges(&e, mid, "0.9"), []);
    assert_eq!(edges(&e, start + 101 * 60, "1.0"), [pair(A, B)]);
    let dot = out(&e.cosa_at(mid, &["graph", "--stream", "stable", "--dot"], true));
    assert!(
        dot.starts_with("digraph") && dot.contains("style=dashed"),
        "{dot}"
    );
    let text = out(&e.cosa_at(mid, &["graph", "--stream", "stable"], true));
    assert!(text.contains(&format!("{A} -> {B}")), "{text}");
    e.cosa_at(mid, &["graph", "check", "--stream", "stable"], true);

    // C released, not rolled out: check passes and says so.
    publish_index(&e, &[A, B, C]);
    let o = e.cosa_at(mid, &["graph", "check", "--stream", "stable"], true);
    assert!(
        stderr(&o).contains("not rolled out yet on stable"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(C));

    // Barrier on B (stream from the version's code), then C's rollout goes from B only.
    e.cosa_at(
        mid,
        &[
            "barrier",
            "--version",
            B,
            "--reason",
            "https://example.com/b",
        ],
        true,
    );
    e.cosa_at(
        mid,
        &[
            "rollout",
            "--stream",
            "stable",
            "--version",
            C,
            "--start",
            &start.to_string(),
            "--duration",
            "10m",
        ],
        true,
    );
    let late = start + 200 * 60;
    assert_eq!(edges(&e, late, "0"), [pair(A, B), pair(B, C)]);
    // Deadend on A: it gets no edges out.
    e.cosa_at(late, &["deadend", "--version", A, "--reason", "bad"], true);
    assert_eq!(edges(&e, late, "0"), [pair(B, C)]);
    let u = updates(&e);
    assert_eq!(u["releases"][0]["version"], A);
    assert_eq!(u["releases"][0]["metadata"]["deadend"]["reason"], "bad");
    assert_eq!(
        u["releases"][1]["metadata"]["barrier"]["reason"],
        "https://example.com/b"
    );

    // Clean: both rollouts are over; only C's record stays (B keeps its barrier).
    e.cosa_at(late, &["rollout", "clean", "--stream", "stable"], true);
    let u = updates(&e);
    assert!(u["releases"][1]["metadata"].get("rollout").is_none(), "{u}");
    assert_eq!(u["releases"][2]["version"], C);
    assert_eq!(
        u["releases"][2]["metadata"]["rollout"],
        serde_json::json!({"start_percentage": 1.0})
    );
    assert_eq!(edges(&e, late, "0"), [pair(B, C)]);
    e.cosa_at(late, &["graph", "check", "--stream", "stable"], true);
}

#[test]
fn graph_check_names_the_versions_and_blocks_writes() {
    let e = env(false);
    publish_index(&e, &[A, B]);
    let path = e.publish().join("updates/stable.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let broken = format!(
        r#"{{"stream":"stable","metadata":{{"last-modified":"2026-01-01T00:00:00Z"}},
        "releases":[{{"version":"{B}","metadata":{{"rollout":{{"start_percentage":1.0}}}}}},
                    {{"version":"1.20251201.3.4","metadata":{{"rollout":{{"start_percentage":1.0}}}}}}]}}"#
    );
    std::fs::write(&path, &broken).unwrap();
    let o = e.cosa_at(T0, &["graph", "check", "--stream", "stable"], false);
    assert!(
        stderr(&o).contains("rollout names 1.20251201.3.4, which is not in the release index"),
        "{}",
        stderr(&o)
    );
    // Any write is refused while the graph is broken, and the file is untouched.
    let o = e.cosa_at(T0, &["barrier", "--version", B, "--reason", "r"], false);
    assert!(stderr(&o).contains("1.20251201.3.4"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
}
