//! Kill a process that builds and prunes in a loop with SIGKILL at many
//! moments; after each kill, startup recovery must leave a store where
//! builds.json is valid, lists only complete builds, and nothing else is
//! left under builds/; and the next run goes on numbering builds.
//!
//! The worker is this test binary itself, re-run with `WORKER_ENV` set.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cosa::store::builds::{self, BuildsJson, StagedBuild};
use cosa::store::lock::WorkdirLock;
use cosa::store::meta::{self, Artifact, Meta};
use cosa::store::{prune, version};

const WORKER_ENV: &str = "COSA_TEST_STORE_WORKER_DIR";
const LOCK_DATE: &str = "2024-05-20T08:00:00Z";

fn commit_of(n: u64) -> String {
    format!("{n:064x}")
}

/// One build as `cosa build` would write it: meta.json, commitmeta.json and
/// a payload, staged, then published.
fn build_once(bd: &Path, lock: &WorkdirLock) {
    let b = BuildsJson::load(bd).unwrap();
    let id = version::dev_version_for("41", Some(LOCK_DATE), &b).unwrap();
    let n: u64 = id.rsplit('.').next().unwrap().parse().unwrap();
    let staged = StagedBuild::new(bd, lock).unwrap();
    let payload = vec![b'x'; 64 * 1024];
    cosa::util::write_atomic(&staged.path().join("ostree.tar"), &payload).unwrap();
    cosa::util::write_json_atomic(
        &staged.path().join("commitmeta.json"),
        &serde_json::json!({"rpmostree.rpmdb.pkglist": [["bash","0","5.2",n.to_string(),"x86_64"]]}),
    )
    .unwrap();
    let mut images = std::collections::BTreeMap::new();
    images.insert(
        "ostree".to_string(),
        Artifact {
            path: "ostree.tar".into(),
            sha256: "00".repeat(32),
            size: Some(payload.len() as u64),
            ..Default::default()
        },
    );
    Meta {
        buildid: id.clone(),
        name: "sample".into(),
        ostree_commit: commit_of(n),
        ostree_version: id.clone(),
        ostree_timestamp: "2024-05-20T08:00:00Z".into(),
        basearch: Some("x86_64".into()),
        images,
        ..Default::default()
    }
    .write(&staged.path().join("meta.json"))
    .unwrap();
    staged.publish(bd, &id, "x86_64", lock).unwrap();
}

/// Not a test on its own: the worker process of the test below.
#[test]
fn store_worker_child() {
    let Ok(dir) = std::env::var(WORKER_ENV) else {
        return;
    };
    let wd = Path::new(&dir);
    let bd = wd.join("builds");
    let lock = WorkdirLock::acquire(wd).expect("worker: lock");
    builds::init(&bd).unwrap();
    builds::recover(&bd, &lock).unwrap();
    println!("STARTED");
    loop {
        build_once(&bd, &lock);
        let b = BuildsJson::load(&bd).unwrap();
        prune::prune(&bd, &prune::plan_keep_last(&b, 3), &lock).unwrap();
    }
}

fn check_consistent(bd: &Path) -> BuildsJson {
    let b = BuildsJson::load(bd).expect("builds.json parses after a kill");
    let listed: BTreeSet<String> = b.builds.iter().map(|e| e.id.clone()).collect();
    for e in &b.builds {
        assert_eq!(e.arches, ["x86_64"]);
        let m = meta::read_value(&meta::meta_path(bd, &e.id, "x86_64"))
            .unwrap_or_else(|err| panic!("listed build {} incomplete: {err:#}", e.id));
        meta::validate(&m).unwrap();
        assert_eq!(m["buildid"], serde_json::json!(e.id));
        assert!(bd.join(&e.id).join("x86_64/ostree.tar").exists());
        assert!(bd.join(&e.id).join("x86_64/commitmeta.json").exists());
    }
    for entry in std::fs::read_dir(bd).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name == "builds.json" || name == "latest" || listed.contains(&name),
            "left behind after recovery: {name}"
        );
    }
    assert_eq!(builds::read_latest(bd).as_deref(), b.latest());
    b
}

#[test]
fn sigkill_at_any_moment_leaves_a_valid_store() {
    let wd = tempfile::tempdir().unwrap();
    let bd = wd.path().join("builds");
    let mut highest = None;
    let mut recovered = 0;
    for (round, delay_ms) in [0u64, 3, 7, 15, 25, 40, 60, 90, 130, 200]
        .into_iter()
        .enumerate()
    {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &test_path("store_worker_child"),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WORKER_ENV, wd.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let started = BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("STARTED"));
        assert!(started, "round {round}: the worker did not start");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();

        let lock = WorkdirLock::acquire(wd.path()).expect("lock released by the kill");
        let rec = builds::recover(&bd, &lock).unwrap();
        recovered += rec.removed.len();
        eprintln!(
            "round {round} after {delay_ms} ms: recovery removed {:?}",
            rec.removed
        );
        let b = check_consistent(&bd);
        assert!(
            b.builds.len() <= 4,
            "round {round}: prune kept {}",
            b.builds.len()
        );
        // Numbers only go up across runs, even though old builds are pruned
        // (the newest build is never pruned).
        let newest = b
            .latest()
            .map(|id| id.rsplit('.').next().unwrap().parse::<u64>().unwrap());
        assert!(newest >= highest, "round {round}: {newest:?} < {highest:?}");
        highest = newest;
        // The next build after recovery succeeds.
        build_once(&bd, &lock);
        let b = check_consistent(&bd);
        prune::prune(&bd, &prune::plan_keep_last(&b, 3), &lock).unwrap();
        assert_eq!(check_consistent(&bd).builds.len(), 3.min(b.builds.len()));
    }
    assert!(
        highest.unwrap_or(0) > 10,
        "the worker built too little: {highest:?}"
    );
    // The kills did land in the middle of builds, not only between them.
    assert!(recovered > 0, "no kill left anything to recover");
}

/// The full name of test `name` of this module in the test binary, for
/// `--exact` (the tier's binary names it `<module>::<name>`).
fn test_path(name: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}
