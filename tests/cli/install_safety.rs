//! Path safety, file conflicts, %doc and remove-from-packages.

use cosa::compose::install::install;
use cosa_testkit::fixture::{FileSpec, PkgSpec};
use cosa_testkit::install::*;

#[test]
fn symlink_shipped_by_one_package_cannot_redirect_another() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let a =
        PkgSpec::new("evil-a", "1").file(FileSpec::symlink("/usr/evil", outside.to_str().unwrap()));
    let b = PkgSpec::new("evil-b", "1").file(FileSpec::file("/usr/evil/passwd", "pwned"));
    let pkgs = build(&t.path().join("rpms"), &[a, b]);
    let err = install(&t.path().join("root"), &pkgs, &opts()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("evil-b") && msg.contains("/usr/evil/passwd"),
        "{msg}"
    );
    assert!(!outside.join("passwd").exists());
}

#[test]
fn symlink_already_in_the_tree_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    let dest = t.path().join("root");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&dest).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("opt")).unwrap();
    let pkgs = build(
        &t.path().join("rpms"),
        &[PkgSpec::new("optpkg", "1").file(FileSpec::file("/opt/tool/bin", "x"))],
    );
    let err = install(&dest, &pkgs, &opts()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("/opt") && msg.contains("symlink"), "{msg}");
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
}

#[test]
fn existing_symlink_at_a_file_path_is_replaced_not_followed() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside-file");
    std::fs::write(&outside, "keep").unwrap();
    let dest = t.path().join("root");
    std::fs::create_dir_all(dest.join("etc")).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("etc/motd")).unwrap();
    let pkgs = build(
        &t.path().join("rpms"),
        &[PkgSpec::new("motd", "1").file(FileSpec::file("/etc/motd", "new"))],
    );
    install(&dest, &pkgs, &opts()).unwrap();
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/motd")).unwrap(),
        "new"
    );
    assert!(
        !std::fs::symlink_metadata(dest.join("etc/motd"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn differing_files_conflict_naming_both_packages() {
    let t = tempfile::tempdir().unwrap();
    let a = PkgSpec::new("one", "1").file(FileSpec::file("/etc/shared.conf", "a"));
    let b = PkgSpec::new("two", "2").file(FileSpec::file("/etc/shared.conf", "b"));
    let pkgs = build(&t.path().join("rpms"), &[a, b]);
    let msg = format!(
        "{:#}",
        install(&t.path().join("root"), &pkgs, &opts()).unwrap_err()
    );
    for want in [
        "one-1-1.x86_64",
        "two-2-1.x86_64",
        "/etc/shared.conf",
        "conflict",
    ] {
        assert!(msg.contains(want), "{want} missing from: {msg}");
    }
    // Same for a symlink with another target, and a file where the other has a directory.
    let a = PkgSpec::new("l1", "1").file(FileSpec::symlink("/usr/lib/x", "a"));
    let b = PkgSpec::new("l2", "1").file(FileSpec::symlink("/usr/lib/x", "b"));
    let pkgs = build(&t.path().join("rpms2"), &[a, b]);
    assert!(install(&t.path().join("root2"), &pkgs, &opts()).is_err());
    let a = PkgSpec::new("d1", "1").file(FileSpec::dir("/usr/lib/y"));
    let b = PkgSpec::new("d2", "1").file(FileSpec::file("/usr/lib/y", "f"));
    let pkgs = build(&t.path().join("rpms3"), &[a, b]);
    let msg = format!(
        "{:#}",
        install(&t.path().join("root3"), &pkgs, &opts()).unwrap_err()
    );
    assert!(
        msg.contains("d1") && msg.contains("d2") && msg.contains("/usr/lib/y"),
        "{msg}"
    );
}

#[test]
fn identical_files_shared_dirs_and_ghosts_do_not_conflict() {
    let t = tempfile::tempdir().unwrap();
    let common = |name: &str| {
        PkgSpec::new(name, "1")
            .file(FileSpec::dir("/usr/share/common").mode(0o755))
            .file(FileSpec::file("/usr/share/common/LICENSE", "same"))
            .file(FileSpec::symlink("/usr/share/common/link", "LICENSE"))
            .file(FileSpec::ghost("/var/cache/common.db"))
            .file(FileSpec::file(&format!("/usr/share/common/{name}"), name))
    };
    let pkgs = build(&t.path().join("rpms"), &[common("p1"), common("p2")]);
    let dest = t.path().join("root");
    install(&dest, &pkgs, &opts()).unwrap();
    assert_eq!(
        std::fs::read_to_string(dest.join("usr/share/common/LICENSE")).unwrap(),
        "same"
    );
    assert!(dest.join("usr/share/common/p1").exists() && dest.join("usr/share/common/p2").exists());
    assert!(!dest.join("var/cache/common.db").exists());
}

/// The fixture has no %doc flag; build this one with the rpm crate directly.
fn doc_package(dir: &std::path::Path) -> std::path::PathBuf {
    let mut b = rpm::PackageBuilder::new("docs", "1", "MIT", "x86_64", "docs");
    b.release("1");
    b.with_file_contents(
        "readme".as_bytes().to_vec(),
        rpm::FileOptions::new("/usr/share/doc/docs/README").doc(),
    )
    .unwrap();
    b.with_file_contents(
        "bin".as_bytes().to_vec(),
        rpm::FileOptions::new("/usr/bin/docs").permissions(0o755),
    )
    .unwrap();
    let p = dir.join("docs-1-1.x86_64.rpm");
    std::fs::create_dir_all(dir).unwrap();
    b.build().unwrap().write_file(&p).unwrap();
    p
}

#[test]
fn doc_files_are_skipped_when_documentation_is_off() {
    let t = tempfile::tempdir().unwrap();
    let path = doc_package(&t.path().join("rpms"));
    let meta = cosa::rpm::PackageMeta {
        name: "docs".into(),
        version: "1".into(),
        release: "1".into(),
        arch: "x86_64".into(),
        ..Default::default()
    };
    let pkgs = vec![(meta, path)];
    let with = t.path().join("with");
    install(&with, &pkgs, &opts()).unwrap();
    assert!(with.join("usr/share/doc/docs/README").exists());
    let mut o = opts();
    o.documentation = false;
    let without = t.path().join("without");
    install(&without, &pkgs, &o).unwrap();
    assert!(!without.join("usr/share/doc/docs/README").exists());
    assert!(without.join("usr/bin/docs").exists());
}

#[test]
fn remove_from_packages_applies_to_the_named_package_only() {
    let t = tempfile::tempdir().unwrap();
    let a = PkgSpec::new("trim", "1")
        .file(FileSpec::file("/usr/share/trim/keep", "k"))
        .file(FileSpec::file("/usr/share/trim/drop.txt", "d"));
    let b = PkgSpec::new("other", "1").file(FileSpec::file("/usr/share/other/drop.txt", "d"));
    let pkgs = build(&t.path().join("rpms"), &[a, b]);
    let mut o = opts();
    o.remove_from_packages = vec![("trim".into(), vec![regex::Regex::new(r"\.txt$").unwrap()])];
    let dest = t.path().join("root");
    let report = install(&dest, &pkgs, &o).unwrap();
    assert!(dest.join("usr/share/trim/keep").exists());
    assert!(!dest.join("usr/share/trim/drop.txt").exists());
    assert!(dest.join("usr/share/other/drop.txt").exists());
    assert_eq!(report.files, 2);
}
