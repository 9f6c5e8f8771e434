//! Updates metadata: round trip of the reference file, each operation and its refusals.

use cosa::release::updates::{Mark, Rollout, Updates};
use cosa::util::time;

/// The project's own updates metadata in the upstream format (tests/data/release).
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/release/updates-stable.json"
);
const R1: &str = "44.20260621.3.1";
const R2: &str = "44.20260707.3.1";
const R2_START: i64 = 1784728800;
const R2_END: i64 = R2_START + 2880 * 60;

fn reference() -> (Updates, serde_json::Value) {
    let text = std::fs::read_to_string(REFERENCE).expect("reference file");
    let value: serde_json::Value = serde_json::from_str(&text).expect("reference JSON");
    (Updates::from_json(&text).expect("parse reference"), value)
}

/// The reference's versions, in file order, plus a couple of unannotated releases.
fn released(u: &Updates) -> Vec<String> {
    let mut v: Vec<String> = u.releases.iter().map(|e| e.version.clone()).collect();
    v.insert(v.len() - 2, "43.20260501.3.0".to_string());
    v.push("44.20260720.3.0".to_string());
    v
}

#[test]
fn reference_round_trips_unchanged() {
    let (u, value) = reference();
    assert_eq!(serde_json::to_value(&u).unwrap(), value);
    assert_eq!(u.stream, "stable");
    assert_eq!(u.releases.len(), 21);
    assert_eq!(
        u.entry(R1).unwrap().metadata.rollout,
        Some(Rollout {
            start_percentage: Some(1.0),
            ..Default::default()
        })
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stable.json");
    u.save(&path).unwrap();
    assert_eq!(Updates::load(&path).unwrap(), u);
}

#[test]
fn barrier_and_deadend_inserted_in_release_order() {
    let (mut u, _) = reference();
    let rel = released(&u);
    let now = 1_800_000_000;
    u.set_mark(
        Mark::Barrier,
        &rel,
        "3",
        "44.20260720.3.0",
        "https://example/b",
        now,
    )
    .unwrap();
    u.set_mark(
        Mark::Deadend,
        &rel,
        "3",
        "43.20260501.3.0",
        "https://example/d",
        now,
    )
    .unwrap();
    let order: Vec<&str> = u.releases.iter().map(|e| e.version.as_str()).collect();
    let pos = |v: &str| order.iter().position(|x| *x == v).unwrap();
    assert!(pos("43.20260413.3.2") < pos("43.20260501.3.0"));
    assert!(pos("43.20260501.3.0") < pos(R1));
    assert_eq!(pos("44.20260720.3.0"), order.len() - 1);
    assert_eq!(
        u.entry("43.20260501.3.0")
            .unwrap()
            .metadata
            .deadend
            .as_ref()
            .unwrap()
            .reason,
        "https://example/d"
    );
    assert_eq!(u.metadata.last_modified, time::format_rfc3339(now));
    // A barrier on an existing entry keeps its rollout.
    u.set_mark(Mark::Barrier, &rel, "3", R2, "why", now)
        .unwrap();
    let m = &u.entry(R2).unwrap().metadata;
    assert!(m.barrier.is_some() && m.rollout.is_some());
}

#[test]
fn set_rollout_replaces_the_rollout() {
    let (mut u, _) = reference();
    let rel = released(&u);
    u.set_rollout(&rel, "3", R2, 1_790_000_000, 600, 0.25, 1_790_000_000)
        .unwrap();
    assert_eq!(
        u.entry(R2).unwrap().metadata.rollout,
        Some(Rollout {
            start_epoch: Some(1_790_000_000),
            start_percentage: Some(0.25),
            duration_minutes: Some(600),
        })
    );
    assert_eq!(u.metadata.last_modified, "2026-09-21T14:13:20Z");
    assert_eq!(
        time::parse_rfc3339(&u.metadata.last_modified).unwrap(),
        1_790_000_000
    );
}

#[test]
fn operations_refuse_bad_versions_and_values() {
    let (mut u, _) = reference();
    let rel = released(&u);
    let before = u.clone();
    let now = 1_800_000_000;
    let errs = [
        u.set_mark(Mark::Barrier, &rel, "3", "44.20260707.2.0", "r", now),
        u.set_mark(Mark::Deadend, &rel, "3", "44.20260707.2.0", "r", now),
        u.set_rollout(&rel, "3", "44.20260707.2.0", now, 60, 0.0, now),
        u.set_mark(Mark::Barrier, &rel, "3", "44.20260799.3.0", "r", now),
        u.set_mark(Mark::Deadend, &rel, "3", "44.20260799.3.0", "r", now),
        u.set_rollout(&rel, "3", "44.20260799.3.0", now, 60, 0.0, now),
        u.set_mark(Mark::Barrier, &rel, "3", "44.2026", "r", now),
        u.set_mark(Mark::Barrier, &rel, "3", R2, "  ", now),
        u.set_mark(Mark::Deadend, &rel, "3", R2, "", now),
        u.set_rollout(&rel, "3", R2, now, 60, 1.5, now),
        u.set_rollout(&rel, "3", R2, now, 60, f64::NAN, now),
        u.set_rollout(&rel, "3", R2, now, 0, 0.0, now),
        // Right version, but the stream's code is another one.
        u.set_mark(Mark::Barrier, &rel, "2", R2, "r", now),
    ];
    for (i, e) in errs.iter().enumerate() {
        assert!(e.is_err(), "operation {i} was accepted");
    }
    let msg = |r: &anyhow::Result<()>| format!("{:#}", r.as_ref().unwrap_err());
    assert!(msg(&errs[0]).contains("44.20260707.2.0") && msg(&errs[0]).contains("stream code"));
    assert!(msg(&errs[3]).contains("not released"));
    assert!(msg(&errs[6]).contains("X.Y.Z.N"));
    assert_eq!(u, before, "a refused operation changed the metadata");
}

#[test]
fn rollout_clean_keeps_only_the_newest_completed_rollout() {
    let (mut u, value) = reference();
    // Mid-rollout: nothing to clean, nothing changes.
    assert!(u.rollout_clean(R2_END - 1).is_empty());
    assert_eq!(serde_json::to_value(&u).unwrap(), value);
    // Done: R2 becomes the completion record, R1's record (its only metadata) goes.
    let removed = u.rollout_clean(R2_END);
    assert_eq!(removed, vec![R1.to_string()]);
    assert!(u.entry(R1).is_none());
    assert_eq!(
        u.entry(R2).unwrap().metadata.rollout,
        Some(Rollout {
            start_percentage: Some(1.0),
            ..Default::default()
        })
    );
    assert_eq!(u.metadata.last_modified, time::format_rfc3339(R2_END));
    assert_eq!(u.releases.len(), 20);
    // Barriers survive; a second clean is a no-op.
    let before = u.clone();
    assert!(u.rollout_clean(R2_END + 3600).is_empty());
    assert_eq!(u, before);
}

#[test]
fn rollout_clean_keeps_other_metadata_of_cleaned_releases() {
    let (mut u, _) = reference();
    let rel = released(&u);
    u.set_mark(Mark::Barrier, &rel, "3", R1, "keep me", 0)
        .unwrap();
    u.rollout_clean(R2_END);
    let m = &u.entry(R1).expect("barrier entry kept").metadata;
    assert!(m.rollout.is_none());
    assert_eq!(m.barrier.as_ref().unwrap().reason, "keep me");
}
