//! The working-directory lock across processes: a second holder is refused
//! with the first one's pid, and SIGKILL of the holder releases the lock.
//!
//! The holder is this test binary itself, re-run with `HOLDER_ENV` set so
//! that only `lock_holder_child` does anything (it takes the lock through
//! cosa's API, says LOCKED, and sleeps until killed).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use cosa::store::lock::{LOCK_FILE, WorkdirLock};

const HOLDER_ENV: &str = "COSA_TEST_LOCK_HOLDER_DIR";

/// Not a test on its own: the child process of the tests below.
#[test]
fn lock_holder_child() {
    let Ok(dir) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let _lock = WorkdirLock::acquire(Path::new(&dir)).expect("child: taking the lock");
    println!("LOCKED");
    std::thread::sleep(std::time::Duration::from_secs(600));
}

fn spawn_holder(dir: &Path) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &test_path("lock_holder_child"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLDER_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let locked = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("LOCKED"));
    assert!(locked, "the holder process never took the lock");
    child
}

#[test]
fn second_process_is_refused_and_sigkill_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_holder(dir.path());

    let e = WorkdirLock::acquire(dir.path()).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&format!(
            "another cosa is running in {} (pid {})",
            dir.path().display(),
            child.id()
        )),
        "{msg}"
    );

    child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    child.wait().unwrap();
    let lock =
        WorkdirLock::acquire(dir.path()).expect("the kernel released the dead holder's lock");
    assert_eq!(
        std::fs::read_to_string(lock.path()).unwrap().trim(),
        std::process::id().to_string()
    );
}

/// util-linux `flock -n` sees our lock (same flock(2) lock), so shell
/// scripts around cosa can wait on it.
#[test]
fn compatible_with_flock_1() {
    let dir = tempfile::tempdir().unwrap();
    let lockfile = dir.path().join(LOCK_FILE);
    let try_flock = || {
        Command::new("flock")
            .arg("-n")
            .arg(&lockfile)
            .arg("true")
            .status()
            .expect("running flock(1) from util-linux")
            .success()
    };
    let lock = WorkdirLock::acquire(dir.path()).unwrap();
    assert!(!try_flock(), "flock(1) got the lock while cosa held it");
    drop(lock);
    assert!(try_flock(), "flock(1) could not take the released lock");
}

/// The full name of test `name` of this module in the test binary, for
/// `--exact` (the tier's binary names it `<module>::<name>`).
fn test_path(name: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}
