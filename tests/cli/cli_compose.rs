//! End to end through the real binary: the sample config composed by cosa
//! equals what Debian's dnf installs from the same repository; lockfiles,
//! --strict and overrides/rpm behave as in coreos-assembler.

use crate::common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const SAMPLE_PKGS: &[&str] = &[
    "filesystem",
    "setup",
    "busybox",
    "sample-release",
    "sample-daemon",
    "kernel",
    "sample-init",
    "selinux-policy",
    "shim-signed",
    "grub-efi-amd64-signed",
    "grub-pc-bin",
];

/// A workdir on the project's own sample config with a freshly built sample repo.
fn sample_workdir(t: &Path) -> (PathBuf, PathBuf) {
    let repo = t.join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let wd = t.join("wd");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(cosa(&wd).args(["init", "--transient"]).arg(manifests), true);
    (wd, repo)
}

fn dnf_install(root: &Path, repo: &Path, cache: &Path, pkgs: &[&str]) {
    let out = Command::new("dnf")
        .arg(format!("--installroot={}", root.display()))
        .args([
            "--setopt=reposdir=/dev/null",
            "--repo=sample",
            "--nogpgcheck",
            "--releasever=1",
        ])
        .arg(format!("--repofrompath=sample,file://{}", repo.display()))
        .arg(format!("--setopt=cachedir={}", cache.display()))
        .args([
            "--setopt=install_weak_deps=False",
            "--setopt=tsflags=nodocs",
            "-y",
            "-q",
            "install",
        ])
        .args(pkgs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dnf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the sample manifest resolves to (weak dependencies off).
const SAMPLE_PACKAGES: [&str; 11] = [
    "busybox",
    "filesystem",
    "grub-efi-amd64-signed",
    "grub-pc-bin",
    "kernel",
    "sample-daemon",
    "sample-init",
    "sample-release",
    "selinux-policy",
    "setup",
    "shim-signed",
];

#[test]
fn sample_compose_matches_dnf() {
    let t = tempfile::tempdir().unwrap();
    let (wd, repo) = sample_workdir(t.path());
    let dest = t.path().join("rootfs");
    let out = run(
        cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .args(["fetch", "--update-lockfile"]),
        true,
    );
    eprintln!("{}", stderr(&out));
    let lock: serde_json::Value = serde_json::from_slice(
        &std::fs::read(wd.join("src/config/manifest-lock.x86_64.json")).unwrap(),
    )
    .unwrap();
    // The sample config is linked in place: remove the lockfile again at the end.
    let lockpath = wd.join("src/config/manifest-lock.x86_64.json");
    let _guard = scopeguard(lockpath.clone());
    let names: Vec<&String> = lock["packages"].as_object().unwrap().keys().collect();
    assert_eq!(names, SAMPLE_PACKAGES);
    assert_eq!(
        lock["packages"]["busybox"]["evra"],
        "1.35.0-1.sample.x86_64"
    );
    assert!(
        lock["packages"]["busybox"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(lock["metadata"]["rpmmd_repos"]["sample"]["generated"].is_string());

    let out = run(
        cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .args(["compose", "rootfs", "--strict"])
            .arg(&dest),
        true,
    );
    eprintln!("{}", stderr(&out));

    // Scriptlets ran in the tree: %pre added a user that owns files, %post wrote config.
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/sample-daemon.conf")).unwrap(),
        "configured by %post of sample-daemon (1)\n"
    );
    let md = std::fs::metadata(dest.join("usr/lib/sampled/state")).unwrap();
    assert_eq!((md.uid(), md.gid()), (990, 990));
    let caps = Command::new("getcap")
        .arg(dest.join("usr/bin/sampled"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&caps.stdout).contains("cap_net_bind_service=ep"));
    // Overlays applied, weak deps off.
    assert!(dest.join("usr/lib/sample/overlay-note").exists());
    assert!(!dest.join("usr/share/sample-extras").exists());
    // The generated lockfile and the report exist.
    assert!(wd.join("tmp/manifest-lock.generated.x86_64.json").exists());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.join("tmp/compose-report.x86_64.json")).unwrap())
            .unwrap();
    assert_eq!(report["packages"], SAMPLE_PKGS.len());

    // bootupd's update metadata, which cosa writes from the packages that
    // own the boot loader files (as bootupctl does in Fedora CoreOS).
    let efi: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dest.join("usr/lib/bootupd/updates/EFI.json")).unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = efi["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["grub-efi-amd64-signed", "shim-signed"], "{efi}");
    assert!(dest.join("usr/lib/bootupd/updates/BIOS.json").is_file());

    // Same tree as dnf, apart from the overlay, bootupd's metadata and dnf's
    // own database and state.
    let dnfroot = t.path().join("dnfroot");
    dnf_install(
        &dnfroot,
        &repo.join("x86_64"),
        &t.path().join("dnfcache"),
        SAMPLE_PKGS,
    );
    // dnf's own state (its database lands in /root/.rpmdb on Debian), the
    // cache dir it makes under tmp/, cosa's overlay and cosa's rpm database
    // (/usr/share/rpm, its macro in /usr/lib/rpm) are not package content.
    let skip = |l: &String| {
        [
            "usr/lib/sample ",
            "usr/lib/sample/",
            "usr/lib/bootupd/updates/EFI.json",
            "usr/lib/bootupd/updates/BIOS.json",
            "var/lib",
            "var/cache",
            "var/log",
            "var/tmp",
            "usr/lib/sysimage",
            "usr/share/rpm",
            "usr/lib/rpm",
            "etc/dnf",
            "root/.rpmdb",
            "tmp/",
        ]
        .iter()
        .any(|p| l.starts_with(p))
    };
    let ours: Vec<String> = list_tree(&dest).into_iter().filter(|l| !skip(l)).collect();
    let theirs: Vec<String> = list_tree(&dnfroot)
        .into_iter()
        .filter(|l| !skip(l))
        .collect();
    assert_eq!(ours, theirs, "tree differs from dnf's");
    // Our rpm database and dnf's (written by librpm) list the same packages.
    let qa = |dbpath: &Path| rpm_qa(dbpath, "%{NEVRA}\n");
    let ours = qa(&dest.join("usr/share/rpm"));
    assert_eq!(ours.len(), SAMPLE_PKGS.len());
    assert_eq!(ours, qa(&dnfroot.join("root/.rpmdb")));
}

/// Removes a file when dropped (the sample config is shared with the repo).
struct Guard(PathBuf);
fn scopeguard(p: PathBuf) -> Guard {
    Guard(p)
}
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A private config with two versions of a package, for lockfile tests.
fn versions_setup(t: &Path) -> (PathBuf, PathBuf) {
    use cosa_testkit::fixture::*;
    let repo = t.join("repo");
    make_repo(
        &repo,
        &[
            PkgSpec::new("app", "1.0")
                .requires("lib")
                .file(FileSpec::file("/usr/share/app/v", "1.0\n")),
            PkgSpec::new("app", "2.0")
                .requires("lib >= 2")
                .file(FileSpec::file("/usr/share/app/v", "2.0\n")),
            PkgSpec::new("lib", "1.0").file(FileSpec::file("/usr/lib/lib.so", "1")),
            PkgSpec::new("lib", "2.0").file(FileSpec::file("/usr/lib/lib.so", "2")),
            PkgSpec::new("tool", "1.0")
                .arch("noarch")
                .file(FileSpec::file("/usr/bin/tool", "t")),
        ],
        RepoCompression::Gz,
    )
    .unwrap();
    let cfg = config_dir(
        t,
        "ref: test/${basearch}\nrepos: [test]\npackages: [app]\n",
        &repo,
    );
    (init_transient(t, &cfg), cfg)
}

#[test]
fn lockfile_pins_versions_and_strict_refuses_unlocked() {
    let t = tempfile::tempdir().unwrap();
    let (wd, cfg) = versions_setup(t.path());
    // Unlocked: newest.
    run(
        cosa(&wd)
            .args(["compose", "rootfs"])
            .arg(t.path().join("r1")),
        true,
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("r1/usr/share/app/v")).unwrap(),
        "2.0\n"
    );
    // Pinned to the old versions.
    std::fs::write(
        cfg.join("manifest-lock.x86_64.json"),
        r#"{"packages":{"app":{"evra":"1.0-1.x86_64"},"lib":{"evr":"1.0-1"}}}"#,
    )
    .unwrap();
    run(
        cosa(&wd)
            .args(["compose", "rootfs", "--strict"])
            .arg(t.path().join("r2")),
        true,
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("r2/usr/share/app/v")).unwrap(),
        "1.0\n"
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("r2/usr/lib/lib.so")).unwrap(),
        "1"
    );
    // An override layer moves app forward; lib stays pinned, so app 2.0 cannot resolve.
    std::fs::write(
        cfg.join("manifest-lock.overrides.yaml"),
        "packages:\n  app:\n    evr: 2.0-1\n",
    )
    .unwrap();
    let out = run(
        cosa(&wd)
            .args(["compose", "rootfs"])
            .arg(t.path().join("r3")),
        false,
    );
    let e = stderr(&out);
    assert!(e.contains("lib"), "{e}");
    assert!(
        !t.path().join("r3").exists(),
        "a failed compose leaves no DEST"
    );
    std::fs::remove_file(cfg.join("manifest-lock.overrides.yaml")).unwrap();
    // --strict refuses what the lockfile does not name.
    std::fs::write(
        cfg.join("manifest.yaml"),
        "repos: [test]\npackages: [app, tool]\n",
    )
    .unwrap();
    let out = run(
        cosa(&wd)
            .args(["compose", "rootfs", "--strict"])
            .arg(t.path().join("r4")),
        false,
    );
    let e = stderr(&out);
    assert!(
        e.contains("--strict") && e.contains("tool-1.0-1.noarch"),
        "{e}"
    );
}

#[test]
fn overrides_rpm_win_over_repos_and_lockfile() {
    use cosa_testkit::fixture::*;
    let t = tempfile::tempdir().unwrap();
    let (wd, cfg) = versions_setup(t.path());
    std::fs::write(
        cfg.join("manifest-lock.x86_64.json"),
        r#"{"packages":{"app":{"evra":"1.0-1.x86_64"},"lib":{"evra":"1.0-1.x86_64"}}}"#,
    )
    .unwrap();
    PkgSpec::new("lib", "1.0")
        .release("1.hotfix")
        .file(FileSpec::file("/usr/lib/lib.so", "hotfix"))
        .build(&wd.join("overrides/rpm"))
        .unwrap();
    run(
        cosa(&wd)
            .args(["compose", "rootfs"])
            .arg(t.path().join("r")),
        true,
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("r/usr/lib/lib.so")).unwrap(),
        "hotfix"
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("r/usr/share/app/v")).unwrap(),
        "1.0\n"
    );
}

#[test]
fn compose_refuses_a_non_empty_dest() {
    let t = tempfile::tempdir().unwrap();
    let (wd, _) = versions_setup(t.path());
    let dest = t.path().join("full");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("mine"), "x").unwrap();
    let out = run(cosa(&wd).args(["compose", "rootfs"]).arg(&dest), false);
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(dest.join("mine")).unwrap(), "x");
}

#[test]
fn foreign_arch_compose_skips_scriptlets_visibly() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "aarch64").unwrap();
    let wd = t.path().join("wd");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(cosa(&wd).args(["init", "--transient"]).arg(manifests), true);
    let dest = t.path().join("rootfs");
    let out = run(
        cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .args(["compose", "rootfs", "--arch", "aarch64"])
            .arg(&dest),
        true,
    );
    let e = stderr(&out);
    assert!(e.contains("NOT run") && e.contains("sample-daemon"), "{e}");
    assert!(dest.join("usr/bin/busybox").exists());
    assert!(
        !dest.join("etc/sample-daemon.conf").exists(),
        "%post must not have run"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.join("tmp/compose-report.aarch64.json")).unwrap())
            .unwrap();
    assert!(!report["scripts_skipped"].as_array().unwrap().is_empty());
    assert!(wd.join("tmp/manifest-lock.generated.aarch64.json").exists());
}

fn rpm_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                rpm_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "rpm"))
            }
        })
        .sum()
}

#[test]
fn fetch_dry_run_resolves_without_downloading() {
    let t = tempfile::tempdir().unwrap();
    let (wd, repo) = sample_workdir(t.path());
    let out = run(
        cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .args(["fetch", "--dry-run", "--json"]),
        true,
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, SAMPLE_PACKAGES);
    let busybox = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "busybox")
        .unwrap();
    assert_eq!(busybox["nevra"], "busybox-1.35.0-1.sample.x86_64");
    assert_eq!(busybox["repo"], "sample");
    assert_eq!(
        rpm_files(&wd.join("cache")),
        0,
        "--dry-run downloaded packages"
    );

    // The text form: one `NEVRA REPO` line per package.
    let out = run(
        cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .args(["fetch", "--dry-run"]),
        true,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l == "busybox-1.35.0-1.sample.x86_64 sample"),
        "{text}"
    );
    assert_eq!(text.lines().count(), SAMPLE_PACKAGES.len(), "{text}");
    // --json alone is refused: it only shapes --dry-run's output.
    run(cosa(&wd).args(["fetch", "--json"]), false);
}

#[test]
fn ostree_layers_are_checked_out_over_the_packages() {
    use cosa_testkit::fixture::*;
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    make_repo(
        &repo,
        &[PkgSpec::new("app", "1.0")
            .file(FileSpec::file("/usr/share/app/v", "1.0\n"))
            .file(FileSpec::file("/usr/share/app/conf", "pkg\n"))],
        RepoCompression::Gz,
    )
    .unwrap();
    let cfg = config_dir(
        t.path(),
        "ref: test/${basearch}\nrepos: [test]\npackages: [app]\n\
         ostree-layers: [overlay/05core, extra/layer]\nostree-override-layers: [dev/override]\n",
        &repo,
    );
    std::fs::create_dir_all(cfg.join("overlay.d/05core/usr/lib/core")).unwrap();
    std::fs::write(cfg.join("overlay.d/05core/usr/lib/core/c"), "core\n").unwrap();
    let wd = init_transient(t.path(), &cfg);
    // Two layers committed with the real ostree into the working repo.
    let commit_layer = |branch: &str, files: &[(&str, &str)]| {
        let src = t.path().join(branch.replace('/', "-"));
        for (p, c) in files {
            let f = src.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, c).unwrap();
        }
        let repo = wd.join("tmp/repo");
        if !repo.join("config").exists() {
            run(
                Command::new("ostree")
                    .arg(format!("--repo={}", repo.display()))
                    .args(["init", "--mode=archive"]),
                true,
            );
        }
        run(
            Command::new("ostree")
                .arg(format!("--repo={}", repo.display()))
                .args(["commit", "--owner-uid=0", "--owner-gid=0", "-b", branch])
                .arg(format!("--tree=dir={}", src.display())),
            true,
        );
    };
    commit_layer("extra/layer", &[("usr/share/extra/x", "layer\n")]);
    commit_layer("dev/override", &[("usr/share/app/conf", "override\n")]);
    let dest = t.path().join("rootfs");
    let out = run(cosa(&wd).args(["compose", "rootfs"]).arg(&dest), true);
    let e = stderr(&out);
    assert_eq!(
        std::fs::read_to_string(dest.join("usr/lib/core/c")).unwrap(),
        "core\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("usr/share/extra/x")).unwrap(),
        "layer\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("usr/share/app/conf")).unwrap(),
        "override\n",
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("usr/share/app/v")).unwrap(),
        "1.0\n"
    );

    // A layer that conflicts with a package file is refused, naming both.
    commit_layer("bad/layer", &[("usr/share/app/v", "clash\n")]);
    std::fs::write(
        cfg.join("manifest.yaml"),
        "ref: test/${basearch}\nrepos: [test]\npackages: [app]\nostree-layers: [bad/layer]\n",
    )
    .unwrap();
    let dest = t.path().join("rootfs2");
    let e = stderr(&run(
        cosa(&wd).args(["compose", "rootfs"]).arg(&dest),
        false,
    ));
    assert!(
        e.contains("ostree-layers") && e.contains("bad/layer") && e.contains("/usr/share/app/v"),
        "{e}"
    );
    // A layer that is neither overlay.d nor a ref is named.
    std::fs::write(
        cfg.join("manifest.yaml"),
        "ref: test/${basearch}\nrepos: [test]\npackages: [app]\nostree-layers: [overlay/99missing]\n",
    )
    .unwrap();
    let e = stderr(&run(
        cosa(&wd)
            .args(["compose", "rootfs"])
            .arg(t.path().join("rootfs3")),
        false,
    ));
    assert!(
        e.contains("overlay/99missing") && e.contains("overlay.d/99missing"),
        "{e}"
    );
}
