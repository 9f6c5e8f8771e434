//! uids and gids carry over from the previous build: its users are in place
//! before the scriptlets run, so `%pre` finds them and adds nothing.

use cosa_testkit::install::*;
use std::os::unix::fs::MetadataExt;

#[test]
fn previous_users_keep_their_ids() {
    let t = tempfile::tempdir().unwrap();
    let specs: Vec<_> = cosa_testkit::sample::packages(cosa::util::host_arch())
        .unwrap()
        .into_iter()
        .filter(|s| s.name != "sample-extras")
        .collect();
    let pkgs = build(&t.path().join("rpms"), &specs);

    // Without a previous build, %pre gives the user 990.
    let fresh = t.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    cosa::compose::install::install(&fresh, &pkgs, &opts()).unwrap();
    assert_eq!(
        std::fs::metadata(fresh.join("usr/lib/sampled/state"))
            .unwrap()
            .uid(),
        990
    );

    // With the previous build's /usr/lib/passwd saying 1234, the user keeps 1234.
    let again = t.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let mut o = opts();
    o.previous_ids = Some((
        "sampled:x:1234:1234:sample daemon:/var/lib/sampled:/sbin/nologin\n".into(),
        "sampled:x:1234:\n".into(),
    ));
    cosa::compose::install::install(&again, &pkgs, &o).unwrap();
    let md = std::fs::metadata(again.join("usr/lib/sampled/state")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 1234));
    let passwd = std::fs::read_to_string(again.join("etc/passwd")).unwrap();
    assert_eq!(
        passwd.lines().filter(|l| l.starts_with("sampled:")).count(),
        1,
        "{passwd}"
    );
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
}
