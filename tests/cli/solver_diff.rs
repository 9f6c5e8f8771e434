//! Differential test at scale: generated repositories and requests go
//! through cosa's resolver (repodata loaded from the generated repos as
//! `cosa compose rootfs` loads it) and through
//! `dnf --installroot --setopt=tsflags=justdb install`, and the installed
//! NEVRA sets must be equal; a request dnf cannot satisfy must fail in cosa
//! too, with an error naming what was requested.
//!
//! - `generated_cases_match_dnf`: the CI slice, `COSA_SOLVER_CASES` cases
//!   (default 200) from `COSA_SOLVER_SEED` (default 0).
//! - `long_run_5000_cases` (ignored): 5,000 cases; prints `N cases, M mismatches`.
//! - `regression_cases_match_dnf`: every case kept in tests/data/solver-cases/.
//!
//! A mismatch is shrunk (packages, dependencies and specs dropped while it
//! still differs) and written as JSON to
//! `target/tmp/solver-diff/case-<seed>.json`; copy it into
//! tests/data/solver-cases/ to keep it as a regression test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cosa::rpm::solver::{Request, solve};
use cosa_testkit::fixture::{RepoCompression, make_repo};
use cosa_testkit::solver::random_repo::{Case, generate};
use cosa_testkit::solver::{dnf_install, key, load_repo};

/// What one tool answered.
#[derive(Debug)]
enum Answer {
    Installs(BTreeSet<String>),
    Fails(String),
}

/// How a case came out.
#[derive(Debug)]
enum Verdict {
    Same { satisfiable: bool },
    Differs(String),
}

/// Write the case's repositories under `dir`.
fn write_repos(case: &Case, dir: &Path) -> anyhow::Result<Vec<(String, u32, PathBuf)>> {
    case.repos
        .iter()
        .map(|r| {
            let rdir = dir.join(&r.id);
            let specs: Vec<_> = r.pkgs.iter().map(|p| p.spec()).collect();
            make_repo(&rdir, &specs, RepoCompression::Gz)?;
            Ok((r.id.clone(), r.priority, rdir))
        })
        .collect()
}

/// cosa's answer: the repodata loaded as compose loads it, then the solver.
fn cosa_answer(case: &Case, repos: &[(String, u32, PathBuf)], dir: &Path) -> Answer {
    let loaded: anyhow::Result<Vec<_>> = repos
        .iter()
        .map(|(id, priority, path)| load_repo(id, *priority, path, &dir.join("cosa-cache")))
        .collect();
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => return Answer::Fails(format!("loading repodata: {e:#}")),
    };
    let req = Request {
        packages: case.specs.clone(),
        exclude: case.exclude.clone(),
        recommends: case.weak,
        basearch: "x86_64".into(),
        ..Default::default()
    };
    match solve(&loaded, &req) {
        Ok(set) => Answer::Installs(set.iter().map(key).collect()),
        Err(e) => Answer::Fails(format!("{e:#}")),
    }
}

fn dnf_answer(case: &Case, repos: &[(String, u32, PathBuf)], dir: &Path) -> Answer {
    match dnf_install(dir, repos, &case.specs, case.weak, &case.exclude) {
        Ok(set) => Answer::Installs(set),
        Err(e) => Answer::Fails(format!("{e:#}")),
    }
}

fn run_case(case: &Case) -> Verdict {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repos = match write_repos(case, tmp.path()) {
        Ok(r) => r,
        Err(e) => return Verdict::Differs(format!("writing the repositories failed: {e:#}")),
    };
    let ours = cosa_answer(case, &repos, tmp.path());
    let theirs = dnf_answer(case, &repos, tmp.path());
    if std::env::var_os("COSA_SOLVER_KEEP").is_some() {
        eprintln!(
            "seed {}: kept {} ({ours:?} / {theirs:?})",
            case.seed,
            tmp.keep().display()
        );
    }
    match (ours, theirs) {
        (Answer::Installs(a), Answer::Installs(b)) if a == b => Verdict::Same { satisfiable: true },
        (Answer::Installs(a), Answer::Installs(b)) => Verdict::Differs(format!(
            "different sets\n  only cosa: {:?}\n  only dnf:  {:?}",
            a.difference(&b).collect::<Vec<_>>(),
            b.difference(&a).collect::<Vec<_>>()
        )),
        (Answer::Fails(err), Answer::Fails(dnf)) => {
            // The error must say which request failed, and name each
            // capability dnf says nothing provides (or rpm's check misses).
            let missing = missing_capabilities(&dnf);
            if let Some(cap) = missing.iter().find(|c| !err.contains(c.as_str())) {
                Verdict::Differs(format!(
                    "both fail, but cosa's error does not say {cap:?}:\n{err}\ndnf:\n{dnf}"
                ))
            } else if case.specs.iter().any(|s| err.contains(s.as_str())) {
                Verdict::Same { satisfiable: false }
            } else {
                Verdict::Differs(format!(
                    "both fail, but cosa's error names no requested spec ({:?}):\n{err}",
                    case.specs
                ))
            }
        }
        (Answer::Installs(a), Answer::Fails(e)) => {
            Verdict::Differs(format!("cosa installs {a:?}; dnf fails:\n{e}"))
        }
        (Answer::Fails(e), Answer::Installs(b)) => {
            Verdict::Differs(format!("dnf installs {b:?}; cosa fails:\n{e}"))
        }
    }
}

/// What dnf's error says is missing: "nothing provides CAP" from libsolv's
/// problems, "CAP is needed by" from rpm's transaction check.
fn missing_capabilities(dnf: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in dnf.lines() {
        if let Some(rest) = line.split("nothing provides ").nth(1) {
            let cap = rest.split(" needed by ").next().unwrap_or(rest).trim();
            out.push(format!("nothing provides {cap}"));
        } else if let Some((cap, _)) = line.split_once(" is needed by ") {
            out.push(format!("{} is needed by", cap.trim()));
        }
    }
    out
}

fn differs(case: &Case) -> bool {
    matches!(run_case(case), Verdict::Differs(_))
}

/// Greedy shrinking: drop packages, then single dependencies, then specs
/// and excludes, keeping each removal that leaves the case mismatching.
fn shrink(mut case: Case) -> Case {
    let mut budget = 300usize;
    let mut try_keep = |cand: Case, case: &mut Case| -> bool {
        if budget == 0 {
            return false;
        }
        budget -= 1;
        if differs(&cand) {
            *case = cand;
            true
        } else {
            false
        }
    };
    for r in 0..case.repos.len() {
        let mut i = 0;
        while i < case.repos[r].pkgs.len() {
            let mut cand = case.clone();
            cand.repos[r].pkgs.remove(i);
            if !try_keep(cand, &mut case) {
                i += 1;
            }
        }
    }
    for r in 0..case.repos.len() {
        for p in 0..case.repos[r].pkgs.len() {
            for list in 0..8 {
                let mut d = 0;
                while d < case.repos[r].pkgs[p].dep_lists_mut()[list].len() {
                    let mut cand = case.clone();
                    cand.repos[r].pkgs[p].dep_lists_mut()[list].remove(d);
                    if !try_keep(cand, &mut case) {
                        d += 1;
                    }
                }
            }
            let mut f = 0;
            while f < case.repos[r].pkgs[p].files.len() {
                let mut cand = case.clone();
                cand.repos[r].pkgs[p].files.remove(f);
                if !try_keep(cand, &mut case) {
                    f += 1;
                }
            }
        }
    }
    let mut s = 0;
    while case.specs.len() > 1 && s < case.specs.len() {
        let mut cand = case.clone();
        cand.specs.remove(s);
        if !try_keep(cand, &mut case) {
            s += 1;
        }
    }
    if !case.exclude.is_empty() {
        let mut cand = case.clone();
        cand.exclude.clear();
        try_keep(cand, &mut case);
    }
    case
}

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("solver-diff");
    std::fs::create_dir_all(&d).expect("creating the output directory");
    d
}

/// Run `cases` on two threads; returns (mismatch descriptions, satisfiable count).
fn run_all(cases: Vec<Case>, label: &str) -> (Vec<String>, usize) {
    let t = Instant::now();
    let total = cases.len();
    let next = AtomicUsize::new(0);
    let sat = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    match run_case(case) {
                        Verdict::Same { satisfiable } => {
                            if satisfiable {
                                sat.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Verdict::Differs(why) => {
                            let small = shrink(case.clone());
                            let path = out_dir().join(format!("case-{}.json", case.seed));
                            std::fs::write(&path, serde_json::to_string_pretty(&small).unwrap())
                                .expect("writing the reproduction");
                            let small_why = match run_case(&small) {
                                Verdict::Differs(w) => w,
                                Verdict::Same { .. } => why.clone(),
                            };
                            failures.lock().unwrap().push(format!(
                                "seed {}: {why}\n  minimal reproduction: {}\n  {small_why}",
                                case.seed,
                                path.display()
                            ));
                        }
                    }
                    if (i + 1) % 50 == 0 {
                        eprintln!(
                            "{label}: {} of {total} cases, {:.0}s",
                            i + 1,
                            t.elapsed().as_secs_f64()
                        );
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let sat = sat.into_inner();
    eprintln!(
        "{label}: {total} cases ({sat} satisfiable, {} not), {} mismatches, {:.1}s",
        total - sat - failures.len(),
        failures.len(),
        t.elapsed().as_secs_f64()
    );
    (failures, sat)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn generated_cases_match_dnf() {
    let n = env_u64("COSA_SOLVER_CASES", 200);
    let start = env_u64("COSA_SOLVER_SEED", 0);
    let cases: Vec<Case> = (start..start + n).map(generate).collect();
    let (failures, sat) = run_all(cases, "solver-diff");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // A generator that only makes unsatisfiable cases would test little.
    assert!(
        sat as u64 * 3 >= n,
        "only {sat} of {n} cases were satisfiable"
    );
}

#[test]
#[ignore = "long run: 5,000 cases against dnf (about half an hour on 2 cores)"]
fn long_run_5000_cases() {
    let start = env_u64("COSA_SOLVER_SEED", 1_000_000);
    let n = env_u64("COSA_SOLVER_CASES", 5000);
    let cases: Vec<Case> = (start..start + n).map(generate).collect();
    let (failures, _) = run_all(cases, "solver-diff long run");
    println!("{n} cases, {} mismatches", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn regression_cases_match_dnf() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/solver-cases");
    let mut cases = Vec::new();
    for e in std::fs::read_dir(&dir).expect("tests/data/solver-cases") {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let case: Case =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            cases.push(case);
        }
    }
    assert!(!cases.is_empty());
    let (failures, _) = run_all(cases, "solver regressions");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The generator is deterministic: a seed is a complete recipe.
#[test]
fn generator_is_seeded() {
    assert_eq!(generate(42), generate(42));
    assert_ne!(generate(42), generate(43));
}
