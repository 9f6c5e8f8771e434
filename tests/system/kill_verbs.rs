//! SIGKILL at random moments of the writing verbs that need a build of the
//! sample OS (disk images, signatures, releases, remote stores), through the
//! real binary, 20 kills each (see tests/common/kill.rs): after each kill
//! what the verb writes is whole (the old file or the new one, never half
//! of one, and nothing half-made listed), the build store is valid, and
//! running the verb again completes with the result a run without a kill
//! gives.

use crate::common::kill::*;
use crate::release_common::*;
use std::path::{Path, PathBuf};

/// The release files `cosa release --stream testing` writes for `id`.
fn release_files(e: &Env, id: &str) -> [PathBuf; 3] {
    let p = e.publish();
    [
        p.join(format!("prod/streams/testing/builds/{id}/release.json")),
        p.join("prod/streams/testing/releases.json"),
        p.join("streams/testing.json"),
    ]
}

/// Each of the release files that exists loads with cosa's loaders (and the
/// stream metadata with coreos-stream-metadata's).
fn check_release_files(files: &[PathBuf; 3], what: &str) {
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
/// every signature there verifies (a .sig is whole or absent, never one
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

/// The platforms the image kill test makes: two disk geometries and
/// formats (qcow2 through qemu-img, raw), the quick ones.
const PLATFORMS: [&str; 2] = ["qemu", "metal"];

/// Take the images `keys` off the newest build (meta.json and files), as
/// a build that never had them.
fn strip_images(e: &Env, keys: &[&str]) {
    let dir = e.build_dir(&e.latest());
    let path = dir.join("meta.json");
    let mut m = cosa::store::Meta::read(&path).unwrap();
    for p in keys {
        if let Some(a) = m.images.remove(*p) {
            std::fs::remove_file(dir.join(a.path)).unwrap();
        }
    }
    m.write(&path).unwrap();
}

/// Files of the newest build's dir named as cosa names artifacts
/// (`<name>-<id>-…`) that meta.json does not list.
fn unlisted_artifacts(e: &Env) -> Vec<String> {
    let id = e.latest();
    let dir = e.build_dir(&id);
    let m = cosa::store::Meta::read(&dir.join("meta.json")).unwrap();
    let prefix = format!("{}-{id}-", m.name);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .filter(|n| !m.images.values().any(|a| &a.path == n))
        .collect()
}

/// `cosa osbuild qemu metal`, killed: meta.json stays valid and
/// lists no image that is not whole (each listed one has its recorded
/// digest); the rerun lists both, and leaves no temp file and no
/// unlisted image in the build dir. `fresh`: each round starts from a build
/// without those images; else it replaces the images of the round before
/// with others (a kernel argument naming the round in image.yaml: the
/// images are bit-identical when nothing changes).
fn osbuild_kills(fresh: bool) {
    let mut args = vec!["osbuild"];
    args.extend(PLATFORMS);
    image_kills(&args, &PLATFORMS, fresh);
}

/// `args` (a verb making the images `keys` of the newest build), killed
/// 20 times: as [`osbuild_kills`] says.
fn image_kills(args: &[&str], keys: &[&str], fresh: bool) {
    let verb = args[0];
    let e = env(true);
    // The copy's image.yaml is a link to ../image.yaml: made a file here.
    let image_yaml = e.config.join("image.yaml");
    let image =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("image.yaml")).unwrap();
    assert!(image.contains("\n  - panic=5\n"), "{image}");
    std::fs::remove_file(&image_yaml).unwrap();
    std::fs::write(&image_yaml, &image).unwrap();
    e.cosa_at(T0, &["build", "ostree"], true);
    let took = time_of(&mut e.cosa_cmd(T0, args));
    let scratch = e.wd.join("tmp");
    kill_rounds(
        verb,
        20,
        took,
        |_| e.cosa_cmd(T0, args),
        |round| {
            if fresh {
                strip_images(&e, keys);
            } else {
                let karg = format!("\n  - panic=5\n  - cosa.kill-round={round}\n");
                std::fs::write(&image_yaml, image.replace("\n  - panic=5\n", &karg)).unwrap();
            }
        },
        |round, killed| {
            let what = format!("{verb} round {round}");
            check_store(&e.wd, &what, killed);
            if !killed {
                let m =
                    cosa::store::Meta::read(&e.build_dir(&e.latest()).join("meta.json")).unwrap();
                for p in keys {
                    assert!(m.images.contains_key(*p), "{what}: no images.{p}");
                }
                // A killed run's scratch dir (tmp/image-*, a few hundred
                // MB) is removed by the next run.
                let left: Vec<_> = std::fs::read_dir(&scratch)
                    .unwrap()
                    .flatten()
                    .map(|d| d.file_name().to_string_lossy().to_string())
                    .filter(|n| n.starts_with("image-"))
                    .collect();
                assert!(left.is_empty(), "{what}: scratch dirs left: {left:?}");
                assert_no_temps(&e.wd.join("builds"), &what);
                assert_eq!(unlisted_artifacts(&e), Vec::<String>::new(), "{what}");
            }
        },
    );
}

#[test]
fn osbuild_survives_sigkill() {
    osbuild_kills(true);
}

/// Images replacing listed ones with other bytes: each is renamed over
/// the old file as soon as it is made, and meta.json records the digests
/// when every platform is done, so the old entries are withdrawn from
/// meta.json before the run (src/cmd/image.rs `OpenBuild::replace`): a
/// kill never leaves meta.json naming the old digest for the new bytes.
#[test]
fn osbuild_replacing_images_survives_sigkill() {
    osbuild_kills(false);
}

/// A run remaking listed images that fails (here: image.yaml broken
/// after the build) lists them again: their files were not replaced.
#[test]
fn a_failed_image_run_keeps_the_images_it_did_not_replace() {
    let e = env(true);
    let image_yaml = e.config.join("image.yaml");
    let image =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("image.yaml")).unwrap();
    std::fs::remove_file(&image_yaml).unwrap();
    std::fs::write(&image_yaml, &image).unwrap();
    e.cosa_at(T0, &["build"], true);
    let meta = || cosa::store::Meta::read(&e.build_dir(&e.latest()).join("meta.json")).unwrap();
    let before = meta()
        .images
        .get("qemu")
        .cloned()
        .expect("cosa build made qemu");
    std::fs::write(&image_yaml, "size: [not a size\n").unwrap();
    let out = e.cosa_at(T0, &["osbuild", "qemu", "metal"], false);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("image.yaml"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = meta();
    assert_eq!(
        after.images.get("qemu"),
        Some(&before),
        "images.qemu was lost"
    );
    assert!(!after.images.contains_key("metal"));
    check_store(&e.wd, "after the failed run", false);
}

/// `cosa buildextend-live`, killed, on a build without live media: its
/// four artifacts are listed whole or not at all.
#[test]
fn buildextend_live_survives_sigkill() {
    image_kills(&["buildextend-live"], &cosa::image::live::KEYS, true);
}

/// What a reader of `prefix` in the bucket finds is whole: builds.json, if
/// there, parses and lists only build arches whose meta.json is there, and
/// every meta.json there (listed or not yet) names only objects that are
/// there with its recorded size and digest.
fn check_remote(s3: &crate::s3_publish::S3Server, prefix: &str, what: &str) {
    let root = s3.object(prefix).join("builds");
    if let Ok(text) = std::fs::read_to_string(root.join("builds.json")) {
        let bj = cosa::store::BuildsJson::parse(&text)
            .unwrap_or_else(|err| panic!("{what}: remote builds.json: {err:#}"));
        for b in &bj.builds {
            for a in &b.arches {
                assert!(
                    root.join(&b.id).join(a).join("meta.json").is_file(),
                    "{what}: remote builds.json lists {} {a} without its meta.json",
                    b.id
                );
            }
        }
    }
    for build in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for arch in std::fs::read_dir(build.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let mp = arch.path().join("meta.json");
            if !mp.is_file() {
                continue;
            }
            let m = cosa::store::Meta::read(&mp)
                .unwrap_or_else(|err| panic!("{what}: remote {}: {err:#}", mp.display()));
            for (k, a) in &m.images {
                let (sha, size) = sha256_cached(&arch.path().join(&a.path))
                    .unwrap_or_else(|err| panic!("{what}: remote images.{k}: {err:#}"));
                assert_eq!(Some(size), a.size, "{what}: remote images.{k} size");
                assert_eq!(sha, a.sha256, "{what}: remote images.{k} sha256");
            }
        }
    }
}

/// The sample build's files as published (compose-report.json is not).
fn published_files(dir: &Path) -> Vec<(String, String)> {
    crate::s3_publish::dir_files(dir)
        .into_iter()
        .filter(|(n, _)| n != "compose-report.json")
        .collect()
}

/// `cosa buildupload s3` of the sample build (its OCI archive in 5 MiB
/// parts), each round into a fresh prefix of a real local S3 server,
/// killed: the remote builds.json lists only builds whose objects are all
/// there, and the rerun lands every file and the listing.
#[test]
fn buildupload_survives_sigkill() {
    use crate::s3_publish::*;
    let t = tempfile::tempdir().unwrap();
    let s3 = S3Server::start();
    let (wd, id) = workdir_copy(t.path());
    let want = published_files(&wd.join("builds").join(&id).join("x86_64"));
    let upload = |prefix: &str| {
        let mut c = cosa_s3(&wd, &s3);
        c.args(["buildupload", "s3", "--bucket"])
            .arg(format!("{BUCKET}/{prefix}"))
            .args(["--multipart-threshold", "6M", "--part-size", "5M"]);
        c
    };
    let took = time_of(&mut upload("timing"));
    kill_rounds(
        "buildupload",
        20,
        took,
        |round| upload(&format!("kill{round}")),
        |_| {},
        |round, killed| {
            let what = format!("buildupload round {round}");
            let prefix = format!("kill{round}");
            check_remote(&s3, &prefix, &what);
            if !killed {
                let bj = s3.object(&format!("{prefix}/builds/builds.json"));
                let bj =
                    cosa::store::BuildsJson::parse(&std::fs::read_to_string(bj).unwrap()).unwrap();
                assert!(bj.has_arch(&id, "x86_64"), "{what}: {bj:?}");
                for (name, sum) in &want {
                    let obj = s3.object(&format!("{prefix}/builds/{id}/x86_64/{name}"));
                    assert_eq!(&sha256_cached(&obj).unwrap().0, sum, "{what}: {name}");
                }
            }
        },
    );
    check_store(&wd, "buildupload", false);
}

/// `cosa buildfetch` of the sample build from a real local S3 server into
/// an emptied workdir, killed: the local store is valid and the OSTree repo
/// passes `ostree fsck` (no commit without its objects); the rerun brings
/// the build whole with its commit.
#[test]
fn buildfetch_survives_sigkill() {
    use crate::s3_publish::*;
    let t = tempfile::tempdir().unwrap();
    let s3 = S3Server::start();
    let (wd, id) = workdir_copy(t.path());
    let dir = wd.join("builds").join(&id).join("x86_64");
    let want = published_files(&dir);
    run(
        cosa_s3(&wd, &s3).args(["buildupload", "s3", "--bucket", &format!("{BUCKET}/src")]),
        true,
    );
    let commit = cosa::store::Meta::read(&dir.join("meta.json"))
        .unwrap()
        .ostree_commit;
    let wd2 = empty_workdir(t.path(), "wd2");
    let fetch = || {
        let mut c = cosa_s3(&wd2, &s3);
        c.args(["buildfetch", "--url", "s3://builds/src"]);
        c
    };
    let took = time_of(&mut fetch());
    kill_rounds(
        "buildfetch",
        20,
        took,
        |_| fetch(),
        // Each round starts from a workdir without builds or repo.
        |_| {
            for d in ["builds", "tmp/repo"] {
                let _ = std::fs::remove_dir_all(wd2.join(d));
            }
        },
        |round, killed| {
            let what = format!("buildfetch round {round}");
            check_store(&wd2, &what, killed);
            if killed && round % 5 == 4 {
                fsck(&wd2);
            }
            if !killed {
                let dir2 = wd2.join("builds").join(&id).join("x86_64");
                assert_eq!(published_files(&dir2), want, "{what}");
                assert!(ostree(&wd2, &["show", &commit]).contains(&id), "{what}");
                assert_no_temps(&wd2.join("builds"), &what);
            }
        },
    );
    fsck(&wd2);
}

/// `cosa push-container` of the sample build's OCI archive, each round to a
/// fresh repository of a real local registry (Debian's docker-registry),
/// killed: meta.json stays valid; the rerun completes, records the digest a
/// push without a kill gives, the registry serves that digest for the
/// build's tag, and no unpacked archive is left in tmp/.
#[test]
fn push_container_survives_sigkill() {
    use crate::oci_push::{Registry, have};
    assert!(
        have("skopeo") && Path::new("/usr/bin/docker-registry").exists(),
        "skopeo and docker-registry are needed: scripts/install-deps.sh"
    );
    let e = env(true);
    e.cosa_at(T0, &["build", "ostree"], true);
    let id = e.latest();
    let reg = Registry::start(&e.root.join("registry"));
    let dest = |round: usize| format!("{}/cosa/kill{round}", reg.addr);
    let push = |round: usize| e.cosa_cmd(T0, &["push-container", &dest(round)]);
    let t0 = std::time::Instant::now();
    let timing = e.cosa_at(
        T0,
        &["push-container", &format!("{}/cosa/timing", reg.addr)],
        true,
    );
    let took = t0.elapsed();
    let digest = out(&timing).trim().rsplit_once('@').unwrap().1.to_string();
    let meta = e.build_dir(&id).join("meta.json");
    kill_rounds(
        "push-container",
        20,
        took,
        push,
        |_| {},
        |round, killed| {
            let what = format!("push-container round {round}");
            check_store(&e.wd, &what, killed);
            if killed {
                return;
            }
            let m = json(&meta);
            assert_eq!(
                m["base-oscontainer"]["image"],
                dest(round).as_str(),
                "{what}"
            );
            assert_eq!(m["base-oscontainer"]["digest"], digest.as_str(), "{what}");
            let inspect: serde_json::Value = serde_json::from_str(&sh(
                "skopeo inspect",
                std::process::Command::new("skopeo")
                    .args(["inspect", "--tls-verify=false"])
                    .arg(format!("docker://{}:{id}", dest(round))),
            ))
            .unwrap();
            assert_eq!(inspect["Digest"], digest.as_str(), "{what}");
            let left: Vec<_> = std::fs::read_dir(e.wd.join("tmp"))
                .unwrap()
                .flatten()
                .map(|d| d.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ociarchive-"))
                .collect();
            assert!(left.is_empty(), "{what}: left in tmp/: {left:?}");
        },
    );
}
