//! Users and groups: the split into /usr/lib, etc-group-members,
//! nss-altfiles, and uid/gid stability against the previous build.

use cosa_testkit::postprocess::*;
use serde_json::json;

#[test]
fn users_and_groups_move_to_usr_lib() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut tf = treefile();
    tf.etc_group_members = vec!["wheel".into()];
    run(&t, &tf, &opts());
    assert_eq!(
        read(&t, "usr/etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    assert_eq!(
        read(&t, "usr/lib/passwd"),
        "bin:x:1:1:bin:/bin:/sbin/nologin\nsvc:x:990:991::/var/lib/svc:/sbin/nologin\n"
    );
    // wheel is in both files.
    assert_eq!(read(&t, "usr/etc/group"), "root:x:0:\nwheel:x:10:\n");
    assert_eq!(
        read(&t, "usr/lib/group"),
        "bin:x:1:\nwheel:x:10:\nsvc:x:991:\n"
    );
    assert_eq!(
        read(&t, "usr/etc/nsswitch.conf"),
        "passwd: files altfiles sss systemd\ngroup: files altfiles sss systemd\nhosts:      files dns\n"
    );
}

#[test]
fn nsswitch_symlink_or_missing_is_left_alone() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    std::fs::remove_file(t.join("etc/nsswitch.conf")).unwrap();
    run(&t, &treefile(), &opts());
    assert!(!t.join("usr/etc/nsswitch.conf").exists());

    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    std::fs::rename(t.join("etc/nsswitch.conf"), t.join("etc/nsswitch.real")).unwrap();
    link(&t, "etc/nsswitch.conf", "nsswitch.real");
    run(&t, &treefile(), &opts());
    assert_eq!(
        read(&t, "usr/etc/nsswitch.real"),
        "passwd:     files sss systemd\ngroup:      files sss systemd\nhosts:      files dns\n"
    );
}

#[test]
fn same_ids_as_previous_build_pass_and_new_names_are_reported() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut o = opts();
    o.previous_passwd = Some("bin:x:1:1:bin:/bin:/sbin/nologin\n".into());
    o.previous_group = Some("bin:x:1:\nwheel:x:10:\n".into());
    let r = run(&t, &treefile(), &o);
    assert_eq!(r.new_users, ["svc"]);
    assert_eq!(r.new_groups, ["svc"]);
}

#[test]
fn changed_uid_is_refused_naming_user_and_both_ids() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut o = opts();
    o.previous_passwd = Some("svc:x:989:991::/var/lib/svc:/sbin/nologin\n".into());
    let e = err(&t, &treefile(), &o);
    assert!(
        e.contains("user svc: uid changed from 989 (previous build) to 990"),
        "{e}"
    );
}

#[test]
fn changed_gid_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut o = opts();
    o.previous_group = Some("svc:x:995:\n".into());
    let e = err(&t, &treefile(), &o);
    assert!(
        e.contains("group svc: gid changed from 995 (previous build) to 991"),
        "{e}"
    );
    // check-groups: none accepts it.
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut tf = treefile();
    set(&mut tf, "check-groups", json!({"type": "none"}));
    run(&t, &tf, &o);
}

#[test]
fn removed_user_whose_files_remain_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    write(&t, "usr/share/old/data", "x");
    std::os::unix::fs::chown(t.join("usr/share/old/data"), Some(977), Some(0)).unwrap();
    let mut o = opts();
    o.previous_passwd =
        Some("old:x:977:977::/:/sbin/nologin\ngone:x:978:978::/:/sbin/nologin\n".into());
    let e = err(&t, &treefile(), &o);
    assert!(
        e.contains("user old (id 977) is missing from the new /usr/lib/passwd, but files in the tree still belong to id 977"),
        "{e}"
    );
    // ignore-removed-users accepts it; the unused one is only a warning.
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    write(&t, "usr/share/old/data", "x");
    std::os::unix::fs::chown(t.join("usr/share/old/data"), Some(977), Some(0)).unwrap();
    let mut tf = treefile();
    set(&mut tf, "ignore-removed-users", json!(["old"]));
    let r = run(&t, &tf, &o);
    assert!(
        r.warnings
            .contains(&"unused user gone (id 978) was removed from /usr/lib/passwd".to_string()),
        "{:?}",
        r.warnings
    );
}

#[test]
fn check_passwd_data_from_treefile() {
    let d = tempfile::tempdir().unwrap();
    let t = base_tree(d.path());
    let mut tf = treefile();
    set(
        &mut tf,
        "check-passwd",
        json!({"type": "data", "entries": {"bin": 1, "svc": [990, 992]}}),
    );
    let e = err(&t, &tf, &opts());
    assert!(
        e.contains("user svc: primary gid changed from 992 (previous build) to 991"),
        "{e}"
    );
}
