//! SIGKILL at random moments of the writing verbs that need a build of the
//! sample OS (disk images, signatures, releases, remote stores), through the
//! real binary, 20 kills each (see tests/common/kill.rs): after each kill
//! what the verb writes is whole (the old file or the new one, never half
//! of one, and nothing half-made listed), the build store is valid, and
//! running the verb again completes with the result a run without a kill
//! gives.

use crate::common::kill::*;
use crate::release_common::*;
use std::path::Path;

/// The release files `cosa release --stream testing` writes for `id`.
fn release_files(e: &Env, id: &str) -> [std::path::PathBuf; 3] {
    let p = e.publish();
    [
        p.join(format!("prod/streams/testing/builds/{id}/release.json")),
        p.join("prod/streams/testing/releases.json"),
        p.join("streams/testing.json"),
    ]
}

/// Each of the release files that exists loads with cosa's loaders (and the
/// stream metadata with coreos-stream-metadata's).
fn check_release_files(files: &[std::path::PathBuf; 3], what: &str) {
    use cosa::release::{index, metadata};
    let [release, index_json, stream] = files;
    if release.exists() {
        index::Release::read(release).unwrap_or_else(|e| panic!("{what}: {e:#}"));
    }
    if index_json.exists() {
        let idx = index::ReleaseIndex::read(index_json).unwrap_or_else(|e| panic!("{what}: {e:#}"));
        assert_eq!(idx.stream, "testing", "{what}");
    }
    if stream.exists() {
        metadata::StreamMetadata::read(stream).unwrap_or_else(|e| panic!("{what}: {e:#}"));
        let text = std::fs::read_to_string(stream).unwrap();
        serde_json::from_str::<coreos_stream_metadata::Stream>(&text)
            .unwrap_or_else(|e| panic!("{what}: coreos-stream-metadata: {e}"));
    }
}

/// `cosa release` of a second build of stream testing over the first's
/// release: every release file is the old one or the new one after a kill,
/// and the rerun writes all three. Then `cosa promote` of it to stable,
/// which makes a build each run: the store stays valid.
#[test]
fn release_and_promote_survive_sigkill() {
    let e = env(true);
    let first = e.build("testing", &["ostree"]);
    e.add_qemu_image(&first);
    e.cosa_at(T0, &["release", "--stream", "testing"], true);
    let id = e.build("testing", &["ostree", "--force"]);
    e.add_qemu_image(&id);
    let files = release_files(&e, &id);
    let old: Vec<Option<Vec<u8>>> = files.iter().map(|f| read_opt(f)).collect();
    let release = ["release", "--stream", "testing"];
    let took = time_of(&mut e.cosa_cmd(T0, &release));
    let new: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    kill_rounds(
        "release",
        20,
        took,
        |_| e.cosa_cmd(T0, &release),
        |_| {
            for (f, o) in files.iter().zip(&old) {
                restore(f, o);
            }
        },
        |round, killed| {
            let what = format!("release round {round}");
            for ((f, o), n) in files.iter().zip(&old).zip(&new) {
                assert_old_or_new(f, o, n, killed, &what);
            }
            check_release_files(&files, &what);
            if !killed {
                assert_no_temps(&e.publish(), &what);
            }
        },
    );

    let promote = ["promote", "--from", "testing", "--to", "stable"];
    let at = T0 + 15 * DAY;
    let took = time_of(&mut e.cosa_cmd(at, &promote));
    kill_rounds(
        "promote",
        20,
        took,
        |_| e.cosa_cmd(at, &promote),
        |_| {},
        |round, killed| {
            let what = format!("promote round {round}");
            check_store(&e.wd, &what, killed);
            if killed && round % 5 == 4 {
                fsck(&e.wd);
            }
            if !killed {
                assert_no_temps(&e.wd.join("builds"), &what);
            }
            for (f, n) in files.iter().zip(&new) {
                assert_eq!(
                    &std::fs::read(f).unwrap(),
                    n,
                    "{what}: promote wrote a release file"
                );
            }
        },
    );
    fsck(&e.wd);
}

/// `cosa verify --json` of the newest build: item name -> status.
fn verify_statuses(e: &Env, keyring: &Path) -> Vec<(String, String)> {
    let o = e
        .cosa_cmd(T0, &["verify", "--json", "--keyring"])
        .arg(keyring)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|err| panic!("verify --json: {err}: {}", stderr(&o)));
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `cosa sign --ostree --images` (the commit signed, the ostree artifact
/// re-exported with the signature, every artifact's .sig written), killed:
/// every signature there is verifies (a .sig is whole or absent, never one
/// of older bytes), meta.json stays valid and names each artifact's digest,
/// and the rerun leaves everything signed and no temp file.
#[test]
fn sign_survives_sigkill() {
    use crate::sign_cli::gpg_key;
    let e = env(true);
    e.cosa_at(T0, &["build", "ostree"], true);
    // Without a passphrase: unlocking one takes seconds in a debug build.
    let keys = gpg_key(&e.root, "", true);
    let sign = |_| {
        let mut c = e.cosa_cmd(T0, &["sign", "--ostree", "--images", "--key"]);
        c.arg(&keys.secret);
        c
    };
    let took = time_of(&mut sign(0));
    kill_rounds(
        "sign",
        20,
        took,
        sign,
        |_| {},
        |round, killed| {
            let what = format!("sign round {round}");
            check_store(&e.wd, &what, killed);
            for (item, status) in verify_statuses(&e, &keys.public) {
                let ok = if killed {
                    ["good", "unsigned"].contains(&status.as_str())
                } else {
                    status == "good"
                };
                assert!(ok, "{what}: {item} is {status}");
            }
            if killed && round % 5 == 4 {
                fsck(&e.wd);
            }
            if !killed {
                assert_no_temps(&e.wd.join("builds"), &what);
            }
        },
    );
    fsck(&e.wd);
}
