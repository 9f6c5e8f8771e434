//! `cosa fetch` and `compose rootfs` against a repository served over HTTP
//! on 127.0.0.1: metadata and packages come over the wire, are cached, and
//! revalidated; a flaky server is retried.

use crate::common;

use common::*;
use cosa_testkit::download::Server;

#[test]
fn fetch_over_http_caches_and_revalidates() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let server = Server::start(&repo);
    let cfg = t.path().join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("manifest.yaml"),
        "repos: [web]\npackages: [busybox, sample-release]\n",
    )
    .unwrap();
    std::fs::write(
        cfg.join("web.repo"),
        format!("[web]\nbaseurl={}\ngpgcheck=0\n", server.url("$basearch/")),
    )
    .unwrap();
    let wd = init_transient(t.path(), &cfg);
    // The first request for busybox fails twice with 500: it is retried.
    server.faults(|f| {
        f.fail_first
            .insert("/x86_64/busybox-1.35.0-1.sample.x86_64.rpm".into(), 2);
    });
    run(cosa(&wd).arg("fetch"), true);
    assert_eq!(server.count("/x86_64/repodata/repomd.xml"), 1);
    assert_eq!(server.count("/x86_64/repodata/primary.xml.gz"), 1);
    assert_eq!(
        server.count("/x86_64/busybox-1.35.0-1.sample.x86_64.rpm"),
        3
    );

    // Second run: repomd.xml is read again, nothing else is transferred.
    let before = server.total_requests();
    let out = run(cosa(&wd).arg("fetch"), true);
    assert_eq!(server.count("/x86_64/repodata/repomd.xml"), 2);
    assert_eq!(server.total_requests(), before + 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("3 cached"), "{}", stderr(&out));

    // And the tree composes from the cache.
    run(
        cosa(&wd)
            .args(["compose", "rootfs"])
            .arg(t.path().join("root")),
        true,
    );
    assert!(t.path().join("root/usr/bin/busybox").exists());
    assert_eq!(
        server.count("/x86_64/busybox-1.35.0-1.sample.x86_64.rpm"),
        3
    );
}
