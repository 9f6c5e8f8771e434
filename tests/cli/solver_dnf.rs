//! Differential test: our solver against dnf (libsolv) on generated
//! repositories. Each scenario installs the same specs with both and
//! compares the installed sets.

use std::collections::BTreeSet;

use cosa::rpm::solver::{Request, solve};
use cosa_testkit::fixture::{FileSpec, PkgSpec};
use cosa_testkit::solver::{RepoSpec, build_repos, dnf_install, dnf_repos, key};

fn p(name: &str, version: &str) -> PkgSpec {
    PkgSpec::new(name, version)
}

struct Scenario {
    name: &'static str,
    repos: Vec<RepoSpec>,
    specs: Vec<&'static str>,
    weak: bool,
    exclude: Vec<&'static str>,
}

fn one_repo(name: &'static str, pkgs: Vec<PkgSpec>, specs: Vec<&'static str>) -> Scenario {
    Scenario {
        name,
        repos: vec![RepoSpec {
            id: "r1",
            priority: 99,
            pkgs,
        }],
        specs,
        weak: false,
        exclude: vec![],
    }
}

fn scenarios() -> Vec<Scenario> {
    let mut v = Vec::new();
    // Versioned provides/requires, several versions, epochs, file deps,
    // a capability provided by several names.
    v.push(one_repo(
        "versions",
        vec![
            p("app", "1.0")
                .requires("libfoo >= 2")
                .requires("libbar = 1.2")
                .requires("webserver")
                .requires("/usr/bin/tool")
                .requires("rpmlib(PayloadIsZstd) <= 5.4.18-1"),
            p("app", "0.9"),
            p("libfoo", "2.0"),
            p("libfoo", "3.0"),
            p("libfoo", "0.5").epoch(1),
            p("libbar", "1.2").release("1"),
            p("libbar", "1.2").release("2"),
            p("libbar", "1.3"),
            p("nginx", "1").provides("webserver"),
            p("httpd", "2").provides("webserver"),
            p("toolpkg", "1").file(FileSpec::file("/usr/bin/tool", "x").mode(0o755)),
            p("provfoo", "1").provides("libfoo-api = 7"),
            p("needapi", "1").requires("libfoo-api >= 5"),
        ],
        vec!["app", "needapi"],
    ));
    // Every rich dependency operator.
    v.push(one_repo(
        "rich",
        vec![
            p("rich", "1")
                .requires("(ra1 and ra2)")
                .requires("(rb1 or rb2)")
                .requires("(rc1 if ra1)")
                .requires("(rc2 if nothere)")
                .requires("(rd1 if nothere else rd2)")
                .requires("(re1 unless rb2)")
                .requires("(re2 unless nothere)")
                .requires("(rf1 unless ra1 else rf2)")
                .requires("(rg with rg-extra)")
                .requires("(rh without rh-bad)")
                .requires("(ri1 or (ri2 and ri3))")
                .requires("(rj >= 2 or rk)"),
            p("ra1", "1"),
            p("ra2", "1"),
            p("rb1", "1"),
            p("rb2", "1"),
            p("rc1", "1"),
            p("rc2", "1"),
            p("rd1", "1"),
            p("rd2", "1"),
            p("re1", "1"),
            p("re2", "1"),
            p("rf1", "1"),
            p("rf2", "1"),
            p("rg-a", "1").provides("rg"),
            p("rg-b", "1").provides("rg").provides("rg-extra"),
            p("rh-a", "1").provides("rh").provides("rh-bad"),
            p("rh-b", "1").provides("rh"),
            p("ri2", "1"),
            p("ri3", "1"),
            p("rj", "1"),
            p("rk", "1"),
        ],
        vec!["rich"],
    ));
    // Conflicts steer the choice of provider; obsoletes by name only.
    v.push(one_repo(
        "conflicts-obsoletes",
        vec![
            p("app", "1").requires("x").requires("cap").requires("capx"),
            p("x1", "1").provides("x").conflicts("y"),
            p("x2", "1").provides("x"),
            p("y", "1"),
            p("new", "2").obsoletes("legacy < 3").obsoletes("capx"),
            p("legacy", "1").provides("cap"),
            p("zz-cap", "1").provides("cap"),
            p("legacy2", "1").provides("capx"),
        ],
        vec!["app", "y", "new"],
    ));
    // Weak dependencies on and off.
    let weak_pkgs = || {
        vec![
            p("base", "1")
                .recommends("rec1")
                .recommends("missing-thing")
                .recommends("(rec2 if base)")
                .recommends("(rec3 if nothere)")
                .suggests("sug1"),
            p("rec1", "1").requires("rec1-dep"),
            p("rec1-dep", "1"),
            p("rec2", "1"),
            p("rec3", "1"),
            p("sug1", "1"),
            p("langpack", "1").supplements("base"),
            p("other-lang", "1").supplements("(base and nothere)"),
            p("enh", "1").enhances("base"),
        ]
    };
    v.push(one_repo("weak-off", weak_pkgs(), vec!["base"]));
    let mut on = one_repo("weak-on", weak_pkgs(), vec!["base"]);
    on.weak = true;
    v.push(on);
    // Arches: i686 never on x86_64, noarch vs x86_64, installonly kernel.
    v.push(one_repo(
        "arches-kernel",
        vec![
            p("multi", "1").arch("x86_64"),
            p("multi", "2").arch("i686"),
            p("dual", "1").arch("x86_64"),
            p("dual", "1").arch("noarch"),
            p("newer-noarch", "1").arch("x86_64"),
            p("newer-noarch", "2").arch("noarch"),
            p("uses-lib", "1").requires("somelib"),
            p("somelib32", "9").arch("i686").provides("somelib"),
            p("somelib64", "1").provides("somelib"),
            p("kernel", "5.0").requires("kernel-core = 5.0-1"),
            p("kernel", "6.0").requires("kernel-core = 6.0-1"),
            p("kernel-core", "5.0").provides("installonlypkg(kernel)"),
            p("kernel-core", "6.0").provides("installonlypkg(kernel)"),
        ],
        vec!["multi", "dual", "newer-noarch", "uses-lib", "kernel"],
    ));
    // Provider choice between names: requested names, then by name.
    v.push(one_repo(
        "provider-choice",
        vec![
            p("app", "1")
                .requires("webserver")
                .requires("web2")
                .requires("web3"),
            p("nginx", "1").provides("webserver"),
            p("httpd", "2").provides("webserver"),
            p("aaa-web", "1").provides("web2"),
            p("zzz-web", "9").provides("web2"),
            p("web3", "1").provides("web3"),
            p("a-web3", "5").provides("web3"),
        ],
        vec!["app", "nginx"],
    ));
    // Requesting a name that another package obsoletes.
    v.push(one_repo(
        "obsoleted-request",
        vec![
            p("oldname", "1"),
            p("newname", "2")
                .obsoletes("oldname < 2")
                .provides("oldname = 2"),
            p("uses-old", "1").requires("oldname"),
        ],
        vec!["uses-old"],
    ));
    // Repo priorities and excludes.
    v.push(Scenario {
        name: "priorities-excludes",
        repos: vec![
            RepoSpec {
                id: "high",
                priority: 10,
                pkgs: vec![p("foo", "1"), p("app", "1").requires("impl")],
            },
            RepoSpec {
                id: "low",
                priority: 50,
                pkgs: vec![
                    p("foo", "2"),
                    p("bar", "3"),
                    p("foo-impl", "1").provides("impl"),
                    p("zap-impl", "1").provides("impl"),
                ],
            },
        ],
        specs: vec!["foo", "bar", "app"],
        weak: false,
        exclude: vec!["foo-*"],
    });
    v
}

fn run(s: &Scenario) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let repos = build_repos(tmp.path(), &s.repos).map_err(|e| format!("{e:#}"))?;
    let req = Request {
        packages: s.specs.iter().map(|x| x.to_string()).collect(),
        exclude: s.exclude.iter().map(|x| x.to_string()).collect(),
        recommends: s.weak,
        basearch: "x86_64".into(),
        ..Default::default()
    };
    let loaded: Vec<_> = repos.iter().map(|(r, _)| r.clone()).collect();
    let ours: BTreeSet<String> = solve(&loaded, &req)
        .map_err(|e| format!("{}: our solver failed: {e:#}", s.name))?
        .iter()
        .map(key)
        .collect();
    let theirs = dnf_install(tmp.path(), &dnf_repos(&repos), &s.specs, s.weak, &s.exclude)
        .map_err(|e| format!("{}: {e:#}", s.name))?;
    eprintln!("{}: {:?}", s.name, ours);
    if ours != theirs {
        return Err(format!(
            "{}: solver differs from dnf\n  only ours: {:?}\n  only dnf:  {:?}",
            s.name,
            ours.difference(&theirs).collect::<Vec<_>>(),
            theirs.difference(&ours).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

#[test]
fn solver_matches_dnf() {
    let all = scenarios();
    let errors: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = all
            .chunks(all.len().div_ceil(2))
            .map(|chunk| {
                sc.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|s| run(s).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("scenario thread"))
            .collect()
    });
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn unresolvable_chain_error_names_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = build_repos(
        tmp.path(),
        &[RepoSpec {
            id: "r1",
            priority: 99,
            pkgs: vec![
                p("top", "1").requires("middle"),
                p("middle", "1").requires("bottom >= 2"),
                p("bottom", "1"),
            ],
        }],
    )
    .unwrap();
    let req = Request {
        packages: vec!["top".into()],
        basearch: "x86_64".into(),
        ..Default::default()
    };
    let loaded: Vec<_> = repos.iter().map(|(r, _)| r.clone()).collect();
    let err = format!("{:#}", solve(&loaded, &req).unwrap_err());
    eprintln!("{err}");
    for needle in ["top", "middle-1-1.x86_64", "bottom >= 2"] {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
    assert!(
        dnf_install(
            tmp.path(),
            &dnf_repos(&repos),
            &["top"],
            false,
            &[] as &[&str]
        )
        .is_err()
    );
}

/// The solv data libsolv reads a repo from is kept next to the metadata; a
/// damaged copy is not trusted (the metadata is read again and the copy
/// rewritten), and the answer never changes.
#[test]
fn solv_cache_is_used_and_a_damaged_one_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = build_repos(
        tmp.path(),
        &[RepoSpec {
            id: "r1",
            priority: 99,
            pkgs: vec![
                p("top", "1").requires("middle").requires("/usr/bin/bottom"),
                p("middle", "1"),
                p("middle", "2"),
                p("bottom", "1").file(FileSpec::file("/usr/bin/bottom", "x")),
            ],
        }],
    )
    .unwrap();
    let req = Request {
        packages: vec!["top".into()],
        basearch: "x86_64".into(),
        ..Default::default()
    };
    let loaded: Vec<_> = repos.iter().map(|(r, _)| r.clone()).collect();
    let names = |loaded: &[cosa::rpm::repodata::LoadedRepo]| -> Vec<String> {
        solve(loaded, &req)
            .unwrap()
            .iter()
            .map(|p| p.nevra())
            .collect()
    };
    let first = names(&loaded);
    assert_eq!(
        first,
        ["bottom-1-1.x86_64", "middle-2-1.x86_64", "top-1-1.x86_64"]
    );
    let solv = loaded[0].metadata.as_ref().unwrap().solv_cache.clone();
    let good = std::fs::read(&solv).expect("solv cache written on first use");
    assert!(good.starts_with(b"SOLV"), "not solv data");
    // Served from the cache: same answer, file untouched.
    assert_eq!(names(&loaded), first);
    assert_eq!(std::fs::read(&solv).unwrap(), good);
    for damage in [&b"SOLV"[..], &good[..good.len() / 2], b"not solv at all"] {
        std::fs::write(&solv, damage).unwrap();
        assert_eq!(names(&loaded), first);
        assert_eq!(std::fs::read(&solv).unwrap(), good, "cache not rebuilt");
    }
}
