//! A config in the shape of fedora-coreos-config (tests/data/fcos-shape):
//! a treefile split over includes and conditional includes, a lockfile with
//! overrides from a lockfile-only repo, image.yaml including
//! image-base.yaml, overlay.d layers named in `ostree-layers`, repo files
//! with `metalink=` only, served by a local mirror whose metalink lists a
//! dead mirror first. `cosa init`, `cosa fetch`, `cosa build` and `cosa
//! kola run basic` go through it, and the result is checked with the real
//! tools key by key.

use crate::common;
use common::*;
use cosa_testkit::download::Server;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

const REF: &str = "cosa-fcos/x86_64/testing-devel";

/// A metalink as Fedora's mirror manager writes it: a dead mirror with the
/// highest preference, then `good`.
fn metalink(repomd: &[u8], good: &str) -> String {
    let sha = cosa::util::digest::sha256_hex(repomd);
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
<metalink version=\"3.0\" xmlns=\"http://www.metalinker.org/\" xmlns:mm0=\"http://fedorahosted.org/mirrormanager\">\n\
 <files>\n  <file name=\"repomd.xml\">\n   <size>{}</size>\n   <verification>\n    <hash type=\"sha256\">{sha}</hash>\n   </verification>\n\
   <resources maxconnections=\"1\">\n\
    <url protocol=\"http\" type=\"http\" location=\"XX\" preference=\"100\">http://127.0.0.1:1/dead/repodata/repomd.xml</url>\n\
    <url protocol=\"http\" type=\"http\" location=\"XX\" preference=\"90\">{good}repodata/repomd.xml</url>\n\
   </resources>\n  </file>\n </files>\n</metalink>\n",
        repomd.len()
    )
}

fn gpg(home: &Path, args: &[&str]) {
    let out = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fcos_shaped_config_builds_and_boots() {
    use cosa_testkit::fixture::{RepoCompression, createrepo};
    let t = tempfile::tempdir().unwrap();
    let www = t.path().join("www");
    // The mirror: the sample OS, an updates repo, and the pool holding the
    // fast-tracked sample-daemon of manifest-lock.overrides.yaml.
    cosa_testkit::sample::make_sample_repo(&www.join("mirror/sample"), "x86_64").unwrap();
    let mut daemon = cosa_testkit::sample::packages("x86_64")
        .unwrap()
        .into_iter()
        .find(|p| p.name == "sample-daemon")
        .unwrap();
    daemon.version = "0.4".into();
    daemon.release = "1.pool".into();
    let pool = www.join("pool/x86_64");
    std::fs::create_dir_all(&pool).unwrap();
    daemon.build(&pool).unwrap();
    createrepo(&pool, RepoCompression::Gz).unwrap();
    let updates = www.join("mirror/updates/x86_64");
    cosa_testkit::fixture::make_repo(
        &updates,
        &[
            cosa_testkit::fixture::PkgSpec::new("sample-tools", "1").file(
                cosa_testkit::fixture::FileSpec::file("/usr/share/sample-tools/t", "t"),
            ),
        ],
        RepoCompression::Gz,
    )
    .unwrap();
    let server = Server::start(&www);
    for (name, dir) in [
        ("sample-1", "mirror/sample/x86_64/"),
        ("updates-testing-stable-1", "mirror/updates/x86_64/"),
    ] {
        let repomd = std::fs::read(www.join(dir).join("repodata/repomd.xml")).unwrap();
        std::fs::write(
            www.join(format!("metalink?repo={name}&arch=x86_64")),
            metalink(&repomd, server.url(dir).as_str()),
        )
        .unwrap();
    }
    let mirror = format!("http://127.0.0.1:{}", server.port);

    // The key the treefile's gpg-key names, in the build user's keyring.
    let home = t.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    gpg(
        &home,
        &[
            "--quick-gen-key",
            "cosa FCOS-shape <cosa-fcos@example.org>",
            "ed25519",
            "sign",
            "never",
        ],
    );

    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fcos-shape");
    let wd = t.path().join("wd");
    run(cosa(&wd).args(["init", "--transient"]).arg(&cfg), true);
    let cosa_env = |args: &[&str], ok: bool| {
        let o = run(
            cosa(&wd)
                .env("DNF_VAR_cosa_mirror", &mirror)
                .env("GNUPGHOME", &home)
                .args(args),
            ok,
        );
        stderr(&o)
    };
    let fetch = cosa_env(&["fetch"], true);
    let build = cosa_env(&["build"], true);
    let all = format!("{fetch}\n{build}");
    // Every key of the config is acted on, and the dead mirror was passed over.
    assert!(!all.contains("is not acted on"), "{all}");
    assert!(
        all.contains("127.0.0.1:1"),
        "the dead mirror is reported: {all}"
    );

    // The version follows automatic-version-prefix with the lockfile's date;
    // the build is named by rojig.name.
    let bj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.join("builds/builds.json")).unwrap()).unwrap();
    let id = bj["builds"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(id, "1.20261201.dev.0");
    let dir = wd.join("builds").join(&id).join("x86_64");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    cosa::store::meta::validate(&meta).unwrap();
    assert_eq!(meta["name"], "cosa-fcos");
    assert_eq!(meta["ref"], REF);
    assert!(meta["coreos-assembler.image-config-checksum"].is_string());

    // Commit metadata: add-commit-metadata (with the conditional include's),
    // container-cmd, the override's sample-daemon from the pool.
    let show = |key: &str| ostree(&wd, &["show", &format!("--print-metadata-key={key}"), REF]);
    assert!(show("cosa-fcos.stream").contains("testing-devel"));
    assert!(show("cosa-fcos.dev").contains("true"));
    assert!(show("ostree.container-cmd").contains("/usr/bin/sh"));
    assert!(
        show("rpmostree.rpmdb.pkglist")
            .contains("('sample-daemon', '0', '0.4', '1.pool', 'x86_64')")
    );
    // gpg-key: ostree finds a good signature.
    let ring = t.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    gpg(
        &home,
        &[
            "--output",
            ring.join("k.gpg").to_str().unwrap(),
            "--export",
            "cosa-fcos@example.org",
        ],
    );
    let sig = ostree(
        &wd,
        &["show", REF, &format!("--gpg-homedir={}", ring.display())],
    );
    assert!(
        sig.contains("Good signature from \"cosa FCOS-shape"),
        "{sig}"
    );

    // The tree.
    let co = t.path().join("co");
    ostree(&wd, &["checkout", "--user-mode", REF, co.to_str().unwrap()]);

    // The SBOM: valid for the SPDX reference validator (which prints
    // nothing for a valid document), one package per RPM of the rpm
    // database, download locations on the mirror.
    let sbom_path = dir.join(meta["images"]["sbom"]["path"].as_str().unwrap());
    let o = run(Command::new(pyspdxtools()).arg("-i").arg(&sbom_path), true);
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{}", stderr(&o));
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sbom_path).unwrap()).unwrap();
    let mut in_sbom: Vec<String> = sbom["packages"].as_array().unwrap()[1..]
        .iter()
        .map(|p| {
            format!(
                "{}-{}",
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap()
            )
        })
        .collect();
    in_sbom.sort();
    let in_db = rpm_qa(&co.join("usr/share/rpm"), "%{NAME}-%{VERSION}-%{RELEASE}\n");
    assert_eq!(in_sbom, in_db);
    // The mirror is an IP address, which SPDX's URL pattern refuses: the
    // location is in sourceInfo.
    assert!(
        sbom["packages"][1]["sourceInfo"]
            .as_str()
            .unwrap()
            .contains("http://127.0.0.1:"),
        "{}",
        sbom["packages"][1]
    );
    assert!(sbom["files"].as_array().unwrap().len() > 20);
    let link = |p: &str| {
        std::fs::read_link(co.join(p))
            .unwrap()
            .display()
            .to_string()
    };
    assert_eq!(
        link("usr/etc/systemd/system/multi-user.target.wants/sample-daemon.service"),
        "/usr/lib/systemd/system/sample-daemon.service"
    );
    assert_eq!(
        link("usr/lib/systemd/system/default.target"),
        "multi-user.target"
    );
    assert_eq!(
        std::fs::read_to_string(co.join("usr/share/cosa-fcos/extra")).unwrap(),
        "from the 15extra layer\n"
    );
    assert!(co.join("usr/lib/cosa-fcos-postprocess").is_file());
    let tmp = std::fs::symlink_metadata(co.join("tmp")).unwrap();
    assert!(tmp.is_dir(), "tmp-is-dir");
    // boot-location: modules: no /usr/lib/ostree-boot.
    assert!(!co.join("usr/lib/ostree-boot").exists());
    assert!(
        std::fs::read_dir(co.join("usr/lib/modules"))
            .unwrap()
            .count()
            == 1
    );
    // readonly-executables.
    assert_eq!(
        std::fs::metadata(co.join("usr/bin/busybox"))
            .unwrap()
            .mode()
            & 0o222,
        0
    );
    // etc-group-members: wheel stays in /etc/group, the rest in /usr/lib/group.
    assert!(
        std::fs::read_to_string(co.join("usr/etc/group"))
            .unwrap()
            .contains("wheel:")
    );
    assert!(
        std::fs::read_to_string(co.join("usr/lib/group"))
            .unwrap()
            .contains("sampled:")
    );
    // machineid-compat: an empty /etc/machine-id.
    assert_eq!(
        std::fs::read(co.join("usr/etc/machine-id")).unwrap().len(),
        0
    );
    // The flattened image.yaml is in the commit.
    let ij: serde_json::Value = serde_json::from_slice(
        &std::fs::read(co.join("usr/share/coreos-assembler/image.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ij["extra-kargs"],
        serde_json::json!(["mitigations=auto,nosmt", "panic=5"])
    );
    assert_eq!(ij["compressor"], "xz");

    // The image: image-base.yaml's kargs, the origin through ostree-remote.
    // Read meta.json again: the images were added after the commit.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    cosa::store::meta::validate(&meta).unwrap();
    let qemu = dir.join(meta["images"]["qemu"]["path"].as_str().unwrap());
    assert!(qemu.exists());
    // rootfs: xfs is made as ext4, said on stderr and in meta.json.
    assert_eq!(meta["images"]["qemu"]["rootfs-fstype"], "ext4");
    assert_eq!(meta["images"]["qemu"]["rootfs-fstype-requested"], "xfs");
    assert!(
        build.contains("cosa makes the root file system as ext4"),
        "{build}"
    );
    let raw = t.path().join("disk.raw");
    let o = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&qemu)
        .arg(&raw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let debugfs_cat = |offset_mib: u64, path: &str| {
        let o = Command::new("debugfs")
            .arg("-R")
            .arg(format!("cat {path}"))
            .arg(format!("{}?offset={}", raw.display(), offset_mib << 20))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let bls = debugfs_cat(129, "/loader/entries/ostree-1-cosa-fcos.conf");
    assert!(
        bls.contains(" mitigations=auto,nosmt panic=5 ignition.platform.id=qemu"),
        "{bls}"
    );
    let commit = meta["ostree-commit"].as_str().unwrap();
    let origin = debugfs_cat(
        513,
        &format!("/ostree/deploy/cosa-fcos/deploy/{commit}.0.origin"),
    );
    assert_eq!(origin, format!("[origin]\nrefspec=fedora:{REF}\n"));
    std::fs::remove_file(&raw).unwrap();

    // And it boots.
    let out = cosa_env(&["kola", "run", "basic", "--timeout", "240"], true);
    assert!(out.contains("kola basic"), "{out}");
}
