//! Scriptlets in bubblewrap (with Debian's busybox-static as the tree's
//! shell), owners resolved through the tree's passwd, skip policies.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use cosa::compose::install::{ScriptPolicy, install};
use cosa_testkit::fixture::{FileSpec, PkgSpec};
use cosa_testkit::install::*;

/// A base package with /bin/busybox, /bin/sh and a minimal passwd/group.
fn base() -> PkgSpec {
    let bb = std::fs::read("/bin/busybox").expect("apt-get install busybox-static");
    PkgSpec::new("base", "1")
        .file(FileSpec::file("/bin/busybox", bb).mode(0o755))
        .file(FileSpec::symlink("/bin/sh", "busybox"))
        .file(FileSpec::file(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n",
        ))
        .file(FileSpec::file("/etc/group", "root:x:0:\n"))
}

fn app() -> PkgSpec {
    PkgSpec::new("app", "1")
        .pre("echo 'svc:x:990:991::/:/bin/sh' >> /etc/passwd\necho 'svc:x:991:' >> /etc/group\necho \"pre $1\" > /etc/pre-marker")
        .post("echo \"post $1\" > /etc/post-marker; echo hello-from-post")
        .posttrans("/bin/busybox stat -c '%u:%g %a' /usr/libexec/svc-helper > /etc/posttrans-marker")
        .file(FileSpec::file("/usr/libexec/svc-helper", "x").mode(0o4750).owner("svc", "svc"))
        .file(FileSpec::file("/usr/libexec/capped", "c").mode(0o755).owner("svc", "svc").caps("cap_net_raw=ep"))
}

#[test]
fn pre_creates_user_that_owns_files_and_posttrans_sees_owners() {
    let t = tempfile::tempdir().unwrap();
    let pkgs = build(&t.path().join("rpms"), &[base(), app()]);
    let dest = t.path().join("root");
    let report = install(&dest, &pkgs, &opts()).unwrap();
    assert_eq!(
        report.scripts_run,
        ["app %pre", "app %post", "app %posttrans"]
    );
    assert!(report.scripts_skipped.is_empty());
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/pre-marker")).unwrap(),
        "pre 1\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/post-marker")).unwrap(),
        "post 1\n"
    );
    // Owners were applied before %posttrans, and setuid survived the chown.
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/posttrans-marker")).unwrap(),
        "990:991 4750\n"
    );
    let m = std::fs::metadata(dest.join("usr/libexec/svc-helper")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
        (990, 991, 0o4750)
    );
    // Capabilities survive the chown too.
    assert!(
        run(&format!("getcap {}/usr/libexec/capped", dest.display())).contains("cap_net_raw=ep")
    );
    // The host's files were not touched.
    assert!(
        !std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .contains("svc:x:990")
    );
}

#[test]
fn failing_post_names_package_kind_status_and_output() {
    let t = tempfile::tempdir().unwrap();
    let bad = PkgSpec::new("bad", "1").post("echo some-diagnostic; echo to-stderr >&2; exit 3");
    let pkgs = build(&t.path().join("rpms"), &[base(), bad]);
    let err = install(&t.path().join("root"), &pkgs, &opts()).unwrap_err();
    let msg = format!("{err:#}");
    for want in [
        "bad",
        "%post",
        "exit status: 3",
        "some-diagnostic",
        "to-stderr",
    ] {
        assert!(msg.contains(want), "{want} missing from: {msg}");
    }
}

#[test]
fn missing_interpreter_is_an_error_unless_skipped() {
    let t = tempfile::tempdir().unwrap();
    let pkgs = build(
        &t.path().join("rpms"),
        &[PkgSpec::new("lonely", "1").post("true")],
    );
    let err = install(&t.path().join("root"), &pkgs, &opts()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("lonely") && msg.contains("/bin/sh"), "{msg}");

    let mut o = opts();
    o.scripts = ScriptPolicy::Skip("testing".into());
    let report = install(&t.path().join("root2"), &pkgs, &o).unwrap();
    assert_eq!(
        report.scripts_skipped,
        [("lonely %post".to_string(), "testing".to_string())]
    );
    assert!(report.scripts_run.is_empty());
}

#[test]
fn foreign_arch_skips_scriptlets_with_reason() {
    let t = tempfile::tempdir().unwrap();
    let pkgs = build(&t.path().join("rpms"), &[base(), app()]);
    let mut o = opts();
    o.basearch = if cosa::util::host_arch() == "s390x" {
        "x86_64"
    } else {
        "s390x"
    }
    .into();
    // The user svc is never created without %pre, so owners fail: use a root-owned app.
    let pkgs2 = build(
        &t.path().join("rpms2"),
        &[PkgSpec::new("app2", "1").pre("echo x > /etc/pre-marker")],
    );
    let all: Vec<_> = pkgs[..1].iter().chain(pkgs2.iter()).cloned().collect();
    let dest = t.path().join("root");
    let report = install(&dest, &all, &o).unwrap();
    assert_eq!(report.scripts_skipped.len(), 1);
    assert_eq!(report.scripts_skipped[0].0, "app2 %pre");
    assert!(report.scripts_skipped[0].1.contains("not the host arch"));
    assert!(!dest.join("etc/pre-marker").exists());
}

#[test]
fn unknown_owner_names_package_file_and_user() {
    let t = tempfile::tempdir().unwrap();
    let orphan = PkgSpec::new("orphan", "1")
        .file(FileSpec::file("/srv/data", "d").owner("ghostuser", "root"));
    let pkgs = build(&t.path().join("rpms"), &[base(), orphan]);
    let err = install(&t.path().join("root"), &pkgs, &opts()).unwrap_err();
    let msg = format!("{err:#}");
    for want in ["orphan", "/srv/data", "ghostuser"] {
        assert!(msg.contains(want), "{want} missing from: {msg}");
    }
}

/// A package declaring its user in /usr/lib/sysusers.d (no %pre), as
/// Fedora's packages do since rpm 4.19, and owning a file by it.
fn sysusers_app(with_macro: bool) -> Vec<PkgSpec> {
    let mut rpm = PkgSpec::new("rpm-macros", "1");
    if with_macro {
        rpm = rpm.file(FileSpec::file(
            "/usr/lib/rpm/macros.d/macros.systemd",
            "%__systemd_sysusers /usr/bin/systemd-sysusers\n",
        ));
    }
    vec![
        base(),
        rpm,
        PkgSpec::new("daemon", "1")
            .file(FileSpec::file(
                "/usr/lib/sysusers.d/daemon.conf",
                "g daemond 950\nu daemond 950:950 \"The daemon\" /var/lib/daemond\n",
            ))
            .file(
                FileSpec::file("/usr/libexec/daemond", "d")
                    .mode(0o750)
                    .owner("daemond", "daemond"),
            ),
    ]
}

#[test]
fn sysusers_runs_before_owners_when_the_tree_asks_or_forced() {
    use cosa::compose::sysusers::Sysusers;
    let t = tempfile::tempdir().unwrap();
    // The tree's rpm defines %__systemd_sysusers: compose-auto runs it.
    let pkgs = build(&t.path().join("rpms-auto"), &sysusers_app(true));
    let dest = t.path().join("auto");
    let r = install(&dest, &pkgs, &opts()).unwrap();
    assert!(r.sysusers_ran);
    let passwd = std::fs::read_to_string(dest.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("daemond:x:950:950:The daemon:/var/lib/daemond:"),
        "{passwd}"
    );
    let m = std::fs::metadata(dest.join("usr/libexec/daemond")).unwrap();
    assert_eq!((m.uid(), m.gid()), (950, 950));

    // No macro: compose-auto does nothing, so the owner is unknown...
    let pkgs = build(&t.path().join("rpms-none"), &sysusers_app(false));
    let e = format!(
        "{:#}",
        install(&t.path().join("none"), &pkgs, &opts()).unwrap_err()
    );
    assert!(e.contains("daemond"), "{e}");
    // ...and compose-forced runs it anyway.
    let mut o = opts();
    o.sysusers = Sysusers::ComposeForced;
    let r = install(&t.path().join("forced"), &pkgs, &o).unwrap();
    assert!(r.sysusers_ran);
}
