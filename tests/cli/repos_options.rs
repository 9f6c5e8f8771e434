//! Repo options as dnf reads them, through the real `cosa` binary:
//! `includepkgs=`/`excludepkgs=`/`exclude=`, `priority=` and `cost=`
//! compared with `dnf --installroot` reading the same `.repo` files;
//! `skip_if_unavailable=`, `enabled=`, and variables (`repovars`,
//! `DNF_VAR_*`, an undefined one).

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use cosa_testkit::fixture::{PkgSpec, RepoCompression, make_repo};

fn pkg(repo: &str, name: &str, version: &str) -> PkgSpec {
    PkgSpec::new(name, version).provides(&format!("origin-{repo}"))
}

/// A config dir with `manifest` and one `.repo` file per `(name, text)`.
fn config(root: &Path, manifest: &str, repo_files: &[(&str, String)]) -> PathBuf {
    let cfg = root.join("config");
    let _ = std::fs::remove_dir_all(&cfg);
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("manifest.yaml"), manifest).unwrap();
    for (name, text) in repo_files {
        std::fs::write(cfg.join(format!("{name}.repo")), text).unwrap();
    }
    cfg
}

/// `cosa fetch --dry-run --json` on a fresh workdir for `cfg`: `(output,
/// ["nevra@repo", ...])` when it succeeds.
fn cosa_resolve(root: &Path, cfg: &Path, env: &[(&str, &str)]) -> (Output, BTreeSet<String>) {
    let wd = root.join("wd");
    let _ = std::fs::remove_dir_all(&wd);
    let wd = init_transient(root, cfg);
    let mut cmd = cosa(&wd);
    cmd.args(["fetch", "--dry-run", "--json"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return (out, BTreeSet::new());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let set = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}@{}",
                p["nevra"].as_str().unwrap(),
                p["repo"].as_str().unwrap()
            )
        })
        .collect();
    (out, set)
}

/// dnf reading the `.repo` files in `cfg` (as `reposdir`) installs `specs`
/// into a scratch root; `["nevra@repo", ...]`, the repo read from the
/// `origin-<repo>` each package provides.
fn dnf_resolve(scratch: &Path, cfg: &Path, specs: &[&str]) -> BTreeSet<String> {
    let _ = std::fs::remove_dir_all(scratch);
    let root = scratch.join("root");
    let out = Command::new("dnf")
        .arg(format!("--installroot={}", root.display()))
        .arg(format!("--setopt=reposdir={}", cfg.display()))
        .arg(format!(
            "--setopt=cachedir={}",
            scratch.join("cache").display()
        ))
        .args([
            "--setopt=install_weak_deps=False",
            "--setopt=installonlypkgs=",
            "--setopt=tsflags=justdb",
            "--nogpgcheck",
            "--releasever=40",
            "--forcearch",
            "x86_64",
            "--disableplugin=*",
            "-q",
            "-y",
            "install",
        ])
        .args(specs)
        .output()
        .expect("running dnf");
    assert!(
        out.status.success(),
        "dnf failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let q = Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args([
            "-qa",
            "--qf",
            "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH} [%{PROVIDENAME} ]\\n",
        ])
        .output()
        .unwrap();
    assert!(q.status.success());
    String::from_utf8_lossy(&q.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("gpg-pubkey"))
        .map(|l| {
            let (nevra, provides) = l.split_once(' ').unwrap();
            let origin = provides
                .split_whitespace()
                .find_map(|p| p.strip_prefix("origin-"))
                .unwrap_or("?");
            format!("{nevra}@{origin}")
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Four repos holding overlapping packages; each scenario changes only the
/// `.repo` files, and cosa's pick must be dnf's.
#[test]
fn includepkgs_excludepkgs_priority_and_cost_pick_what_dnf_picks() {
    let t = tempfile::tempdir().unwrap();
    let repos = t.path().join("repos");
    let build = |id: &str, pkgs: Vec<(&str, &str)>| {
        let specs: Vec<PkgSpec> = pkgs.into_iter().map(|(n, v)| pkg(id, n, v)).collect();
        make_repo(&repos.join(id), &specs, RepoCompression::Gz).unwrap();
    };
    build("alpha", vec![("foo", "1.0"), ("bar", "1.0")]);
    build("beta", vec![("foo", "2.0"), ("bar", "2.0"), ("baz", "1.0")]);
    build("gamma", vec![("baz", "1.0"), ("qux", "1.0")]);
    build("delta", vec![("baz", "1.0"), ("qux", "2.0")]);
    let base = |id: &str, extra: &str| -> (&'static str, String) {
        let name: &'static str = Box::leak(id.to_string().into_boxed_str());
        (
            name,
            format!(
                "[{id}]\nname={id}\nbaseurl=file://{}\ngpgcheck=0\n{extra}",
                repos.join(id).display()
            ),
        )
    };
    let manifest =
        "releasever: 40\nrepos: [alpha, beta, gamma, delta]\npackages: [foo, bar, baz, qux]\n";
    let specs = ["foo", "bar", "baz", "qux"];
    // (alpha, beta, gamma, delta options, what dnf and cosa must pick)
    let scenarios: Vec<([&str; 4], BTreeSet<String>)> = vec![
        (
            [
                "priority=10\n",
                "priority=20\n",
                "priority=20\ncost=500\n",
                "priority=20\ncost=2000\n",
            ],
            // Priority wins outright over a newer version; among one
            // priority the newer version wins whatever the cost; cost picks
            // among identical packages.
            set(&[
                "foo-1.0-1.x86_64@alpha",
                "bar-1.0-1.x86_64@alpha",
                "baz-1.0-1.x86_64@gamma",
                "qux-2.0-1.x86_64@delta",
            ]),
        ),
        (
            [
                "priority=10\nexcludepkgs=foo\n",
                "priority=20\n",
                "priority=20\ncost=500\n",
                "priority=20\ncost=2000\n",
            ],
            set(&[
                "foo-2.0-1.x86_64@beta",
                "bar-1.0-1.x86_64@alpha",
                "baz-1.0-1.x86_64@gamma",
                "qux-2.0-1.x86_64@delta",
            ]),
        ),
        (
            [
                "priority=10\nincludepkgs=ba?\n",
                "priority=20\n",
                "priority=20\ncost=500\nexclude=baz\n",
                "priority=20\ncost=2000\n",
            ],
            set(&[
                "foo-2.0-1.x86_64@beta",
                "bar-1.0-1.x86_64@alpha",
                "baz-1.0-1.x86_64@beta",
                "qux-2.0-1.x86_64@delta",
            ]),
        ),
        (
            // A NEVRA form: name qux, version 2*.
            [
                "priority=10\n",
                "priority=20\n",
                "priority=20\ncost=500\n",
                "priority=20\ncost=2000\nexcludepkgs=qux-2*,baz\n",
            ],
            set(&[
                "foo-1.0-1.x86_64@alpha",
                "bar-1.0-1.x86_64@alpha",
                "baz-1.0-1.x86_64@gamma",
                "qux-1.0-1.x86_64@gamma",
            ]),
        ),
        (
            // One priority for all; delta cheapest, but with an
            // includepkgs= that matches nothing it offers nothing.
            [
                "",
                "cost=100\n",
                "cost=100\n",
                "cost=50\nincludepkgs=nothing-matches*\n",
            ],
            set(&[
                "foo-2.0-1.x86_64@beta",
                "bar-2.0-1.x86_64@beta",
                "baz-1.0-1.x86_64@beta",
                "qux-1.0-1.x86_64@gamma",
            ]),
        ),
    ];
    for (n, (opts, want)) in scenarios.iter().enumerate() {
        let files = [
            base("alpha", opts[0]),
            base("beta", opts[1]),
            base("gamma", opts[2]),
            base("delta", opts[3]),
        ];
        let cfg = config(t.path(), manifest, &files);
        let theirs = dnf_resolve(&t.path().join("dnf"), &cfg, &specs);
        let (out, ours) = cosa_resolve(t.path(), &cfg, &[]);
        assert!(out.status.success(), "scenario {n}: {}", stderr(&out));
        eprintln!("scenario {n}: {ours:?}");
        assert_eq!(
            ours, theirs,
            "scenario {n} ({opts:?}): cosa differs from dnf"
        );
        assert_eq!(&ours, want, "scenario {n}");
    }
}

#[test]
fn skip_if_unavailable_both_ways() {
    let t = tempfile::tempdir().unwrap();
    let good = t.path().join("good");
    make_repo(&good, &[pkg("good", "app", "1.0")], RepoCompression::Gz).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let manifest = "repos: [fedora, extra]\npackages: [app]\n";
    let files = |skip: &str| {
        [
            (
                "fedora",
                format!("[fedora]\nbaseurl=file://{}\n", good.display()),
            ),
            (
                "extra",
                format!("[extra]\nbaseurl=http://127.0.0.1:{port}/extra/\n{skip}"),
            ),
        ]
    };
    // dnf's default (false): the build fails, naming the repo and the fix.
    let cfg = config(t.path(), manifest, &files(""));
    let (out, _) = cosa_resolve(t.path(), &cfg, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("repo extra is required") && err.contains("set skip_if_unavailable=1"),
        "{err}"
    );
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    let cfg = config(t.path(), manifest, &files("skip_if_unavailable=False\n"));
    assert!(!cosa_resolve(t.path(), &cfg, &[]).0.status.success());

    // skip_if_unavailable=1: skipped with a warning, the build goes on.
    let cfg = config(t.path(), manifest, &files("skip_if_unavailable=1\n"));
    let (out, got) = cosa_resolve(t.path(), &cfg, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("skipping repo extra (skip_if_unavailable=1"),
        "{err}"
    );
    assert_eq!(got, set(&["app-1.0-1.x86_64@fedora"]));
}

#[test]
fn repovars_and_dnf_var_environment() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("srv");
    for (stream, version) in [("next", "1.0"), ("testing", "2.0"), ("stable", "3.0")] {
        make_repo(
            &root.join(stream).join("x86_64"),
            &[pkg(stream, "app", version)],
            RepoCompression::Gz,
        )
        .unwrap();
    }
    let manifest =
        "releasever: 40\nrepovars:\n  stream: next\n  srv: unused\nrepos: [os]\npackages: [app]\n";
    let repo = format!(
        "[os]\nname=OS $releasever ${{stream}}\nbaseurl=file://{}/${{stream}}/$arch/\n",
        root.display()
    );
    let cfg = config(t.path(), manifest, &[("os", repo)]);
    let (out, got) = cosa_resolve(t.path(), &cfg, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(got, set(&["app-1.0-1.x86_64@os"]), "repovars");
    // The environment wins over the manifest, as libdnf's does over its
    // vars directories.
    let (out, got) = cosa_resolve(t.path(), &cfg, &[("DNF_VAR_stream", "testing")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(got, set(&["app-2.0-1.x86_64@os"]), "DNF_VAR_stream");
    // DNF0..DNF9 are variables too.
    let repo = format!("[os]\nbaseurl=file://{}/$DNF1/$basearch/\n", root.display());
    let cfg = config(t.path(), manifest, &[("os", repo)]);
    let (out, got) = cosa_resolve(t.path(), &cfg, &[("DNF1", "stable")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(got, set(&["app-3.0-1.x86_64@os"]), "DNF1");
    // A contradiction of cosa's own variables is refused.
    let (out, _) = cosa_resolve(
        t.path(),
        &cfg,
        &[("DNF1", "stable"), ("DNF_VAR_basearch", "s390x")],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("DNF_VAR_basearch"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn undefined_variable_names_file_repo_and_variable() {
    let t = tempfile::tempdir().unwrap();
    let repo =
        "[os]\nname=OS\nbaseurl=file:///srv/$releasever/$contentdir/$basearch/\n".to_string();
    let cfg = config(
        t.path(),
        "releasever: 40\nrepos: [os]\npackages: [app]\n",
        &[("os", repo)],
    );
    let (out, _) = cosa_resolve(t.path(), &cfg, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("os.repo:3: [os] baseurl: undefined variable $contentdir"),
        "{err}"
    );
    assert!(
        err.contains("repovars") && err.contains("DNF_VAR_contentdir"),
        "{err}"
    );
}

/// rpm-ostree enables exactly the repos the manifest names (enabled= in the
/// file does not matter to it); cosa does the same, and says so for a named
/// repo with enabled=0. A repo not named is never read, enabled or not.
#[test]
fn manifest_names_the_repos_whatever_enabled_says() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    make_repo(&a, &[pkg("a", "app", "1.0")], RepoCompression::Gz).unwrap();
    let files = [
        (
            "a",
            format!("[a]\nbaseurl=file://{}\nenabled=0\n", a.display()),
        ),
        // Would fail to load if it were read.
        (
            "b",
            "[b]\nbaseurl=file:///nonexistent/b/\nenabled=1\n".to_string(),
        ),
    ];
    let cfg = config(t.path(), "repos: [a]\npackages: [app]\n", &files);
    let (out, got) = cosa_resolve(t.path(), &cfg, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(got, set(&["app-1.0-1.x86_64@a"]));
    assert!(
        err.contains("repo a has enabled=0") && err.contains("as rpm-ostree does"),
        "{err}"
    );
    assert!(!err.contains("nonexistent"), "{err}");
}
