//! Treefile postprocessing: mutate-os-release, remove-files, add-files and
//! the postprocess scripts in bubblewrap (busybox sh as the tree's shell).

use std::os::unix::fs::MetadataExt;

use cosa_testkit::postprocess::*;

#[test]
fn mutate_os_release_rewrites_the_file_etc_os_release_points_at() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut tf = treefile();
    tf.mutate_os_release = Some("40".into());
    run(&t, &tf, &opts());
    assert_eq!(
        read(&t, "usr/lib/os-release"),
        "NAME=\"Sample OS\"\n\
         VERSION=\"40.20240501.dev.0 (Core)\"\n\
         ID=sample\n\
         VERSION_ID=40\n\
         PRETTY_NAME=\"Sample OS 40.20240501.dev.0 (Core)\"\n\
         OSTREE_VERSION='40.20240501.dev.0'\n"
    );
    assert!(
        std::fs::symlink_metadata(t.join("usr/etc/os-release"))
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn mutate_os_release_without_version_only_warns() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let before = read(&t, "usr/lib/os-release");
    let mut tf = treefile();
    tf.mutate_os_release = Some("40".into());
    let mut o = opts();
    o.version = None;
    let r = run(&t, &tf, &o);
    assert_eq!(read(&t, "usr/lib/os-release"), before);
    assert!(
        r.warnings
            .contains(&"ignoring mutate-os-release: no build version given".to_string())
    );
}

#[test]
fn remove_files_and_add_files() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    write(&t, "usr/share/doc/pkg/README", "x");
    write(&t, "usr/lib/keep", "k");
    let src = d.path().join("motd-src");
    std::fs::write(&src, "hello\n").unwrap();
    std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let tool = d.path().join("tool-src");
    std::fs::write(&tool, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut tf = treefile();
    tf.remove_files = vec![
        "usr/share/doc".into(),
        "etc/default".into(),
        "usr/absent".into(),
    ];
    tf.add_files = vec![
        (src.clone(), "/etc/motd".into()),
        (tool.clone(), "/usr/libexec/new/tool".into()),
    ];
    let r = run(&t, &tf, &opts());
    assert!(!t.join("usr/share/doc").exists());
    assert!(t.join("usr/share").is_dir());
    assert!(!t.join("usr/etc/default").exists());
    assert!(t.join("usr/lib/keep").exists());
    assert_eq!(
        r.removed[..2],
        ["usr/share/doc".to_string(), "etc/default".to_string()]
    );
    assert_eq!(read(&t, "usr/etc/motd"), "hello\n");
    assert_eq!(
        std::fs::metadata(t.join("usr/etc/motd")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(
        std::fs::metadata(t.join("usr/libexec/new/tool"))
            .unwrap()
            .mode()
            & 0o7777,
        0o755
    );
    assert_eq!(
        std::fs::metadata(t.join("usr/libexec/new")).unwrap().mode() & 0o7777,
        0o755
    );
    assert_eq!(r.added, ["/etc/motd", "/usr/libexec/new/tool"]);
}

#[test]
fn remove_files_refuses_absolute_and_escaping_paths() {
    for (bad, want) in [
        (
            "/etc/passwd",
            "remove-files: invalid absolute path \"/etc/passwd\"",
        ),
        (
            "usr/../../outside",
            "remove-files: invalid path \"usr/../../outside\": it must not contain '..'",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let t = base_tree(d.path());
        std::fs::write(d.path().join("outside"), "precious").unwrap();
        let mut tf = treefile();
        tf.remove_files = vec![bad.into()];
        let e = err(&t, &tf, &opts());
        assert!(e.contains(want), "{e}");
        assert!(d.path().join("outside").exists());
    }
}

#[test]
fn remove_files_does_not_follow_links_out_of_the_tree() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let outside = d.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), "precious").unwrap();
    // An absolute link resolves inside the tree, where there is nothing.
    link(&t, "usr/share/escape", outside.to_str().unwrap());
    let mut tf = treefile();
    tf.remove_files = vec!["usr/share/escape/victim".into()];
    run(&t, &tf, &opts());
    assert!(outside.join("victim").exists());
}

#[test]
fn postprocess_scripts_run_in_bwrap_in_order() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let script = d.path().join("post.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nset -e\necho \"script sees $(cat /usr/share/order)\" > /usr/share/script-marker\n",
    )
    .unwrap();
    let mut tf = treefile();
    tf.postprocess = vec![
        // No #! line: run by /bin/sh, as execvp does.
        "echo first > /usr/share/order\n[ -f /etc/passwd ] && echo etc-visible >> /usr/share/order"
            .into(),
        "#!/bin/sh\necho second >> /usr/share/order; hostname > /usr/share/hostname".into(),
    ];
    tf.postprocess_script = Some(script);
    let r = run(&t, &tf, &opts());
    assert_eq!(read(&t, "usr/share/order"), "first\netc-visible\nsecond\n");
    assert_eq!(
        read(&t, "usr/share/script-marker"),
        "script sees first\netc-visible\nsecond\n"
    );
    assert_eq!(
        r.scripts_run,
        ["postprocess[1]", "postprocess[2]", "postprocess-script"]
    );
    // The script files are gone again.
    let bins = listing(&t, "usr/bin", 1);
    assert!(bins.iter().all(|b| !b.contains("rpmostree-")), "{bins:?}");
}

#[test]
fn failing_script_is_named_with_its_output() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut tf = treefile();
    tf.postprocess = vec!["true".into(), "echo about to fail\nexit 7".into()];
    let e = err(&t, &tf, &opts());
    assert!(
        e.contains("`postprocess` inline script 2 of 2 failed: postprocess[2] failed (exit status: 7); last output:\nabout to fail"),
        "{e}"
    );
    assert!(!t.join("usr/bin/rpmostree-postprocess-inline-1").exists());
}

#[test]
fn scripts_skipped_visibly() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut tf = treefile();
    tf.postprocess = vec!["touch /usr/share/ran".into()];
    let mut o = opts();
    o.run_scripts = false;
    let r = run(&t, &tf, &o);
    assert!(!t.join("usr/share/ran").exists());
    assert_eq!(
        r.scripts_skipped,
        [("postprocess[1]".to_string(), "scripts disabled".to_string())]
    );
    assert!(
        r.warnings
            .contains(&"1 postprocess script(s) NOT run: scripts disabled".to_string())
    );

    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut o = opts();
    o.basearch = if cosa::util::host_arch() == "s390x" {
        "x86_64"
    } else {
        "s390x"
    }
    .into();
    let r = run(&t, &tf, &o);
    assert!(!t.join("usr/share/ran").exists());
    assert!(
        r.scripts_skipped[0].1.contains("is not the host arch"),
        "{:?}",
        r.scripts_skipped
    );
}

#[test]
fn units_default_target_and_readonly_executables() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    for u in ["sshd.service", "multi-user.target", "graphical.target"] {
        write(&t, &format!("usr/lib/systemd/system/{u}"), "[Unit]\n");
    }
    write(&t, "usr/bin/tool", "#!/bin/sh\n");
    mode(&t, "usr/bin/tool", 0o775);
    write(&t, "usr/lib/data", "d");
    mode(&t, "usr/lib/data", 0o664);
    let mut tf = treefile();
    set(&mut tf, "units", serde_json::json!(["sshd.service"]));
    set(
        &mut tf,
        "default-target",
        serde_json::json!("multi-user.target"),
    );
    set(&mut tf, "readonly-executables", serde_json::json!(true));
    let r = run(&t, &tf, &opts());
    // systemctl itself agrees the unit is enabled and the default target
    // set (with /etc where a booted system has it).
    std::os::unix::fs::symlink("usr/etc", t.join("etc")).unwrap();
    let systemctl = |args: &[&str]| {
        let out = std::process::Command::new("systemctl")
            .arg(format!("--root={}", t.display()))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(systemctl(&["is-enabled", "sshd.service"]), "enabled");
    assert_eq!(systemctl(&["get-default"]), "multi-user.target");
    std::fs::remove_file(t.join("etc")).unwrap();
    assert_eq!(r.units_enabled, ["sshd.service"]);
    let m = |rel: &str| std::fs::metadata(t.join(rel)).unwrap().mode() & 0o7777;
    assert_eq!(m("usr/bin/tool"), 0o555);
    assert_eq!(m("usr/lib/data"), 0o664);
    assert!(r.readonly_executables >= 1);
    // A unit the tree lacks is an error naming it.
    let mut tf = treefile();
    set(&mut tf, "units", serde_json::json!(["nope.service"]));
    let d2 = tempfile::tempdir().unwrap();
    let e = err(&base_tree(d2.path()), &tf, &opts());
    assert!(e.contains("nope.service has no unit file"), "{e}");
}
