//! `cosa build` writes images.ostree as an ostree-native OCI archive and
//! `cosa push-container` pushes it: checked with Debian's skopeo (inspect of
//! the archive and of the registry, copy back), docker-registry (a real
//! registry on 127.0.0.1) and ostree (fsck, checkout of the imported commit).

use crate::common;
use common::*;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tool(cmd: &mut Command) -> String {
    let out = cmd.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Debian's docker-registry on 127.0.0.1:<free port>, storage in `dir`.
pub(crate) struct Registry {
    child: Child,
    pub(crate) addr: String,
}

impl Registry {
    pub(crate) fn start(dir: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let cfg = dir.join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry starts");
        let t = Instant::now();
        while TcpStream::connect(&addr).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "registry never listened"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Registry { child, addr }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sample_build(t: &Path) -> (PathBuf, PathBuf, Value) {
    let repo = t.join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let wd = t.join("wd");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(cosa(&wd).args(["init", "--transient"]).arg(manifests), true);
    run(
        cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .args(["build", "ostree"]),
        true,
    );
    let bj: Value =
        serde_json::from_slice(&std::fs::read(wd.join("builds/builds.json")).unwrap()).unwrap();
    let id = bj["builds"][0]["id"].as_str().unwrap();
    let dir = wd.join("builds").join(id).join("x86_64");
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    (wd, dir, meta)
}

fn skopeo_json(args: &[&str]) -> Value {
    serde_json::from_str(&tool(Command::new("skopeo").args(args))).unwrap()
}

fn checkout(repo: &Path, commit: &str, dest: &Path) -> Vec<String> {
    tool(
        Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(["checkout", "-U", commit])
            .arg(dest),
    );
    list_tree(dest)
}

#[test]
fn ociarchive_push_inspect_copy_import() {
    if !have("skopeo") || !Path::new("/usr/bin/docker-registry").exists() {
        panic!("skopeo and docker-registry are needed: scripts/install-deps.sh");
    }
    let t = tempfile::tempdir().unwrap();
    let (wd, dir, meta) = sample_build(t.path());
    let id = meta["buildid"].as_str().unwrap().to_string();
    let commit = meta["ostree-commit"].as_str().unwrap().to_string();
    let rel = meta["images"]["ostree"]["path"].as_str().unwrap();
    assert_eq!(rel, format!("cosa-sample-{id}-ostree.x86_64.ociarchive"));
    let archive = dir.join(rel);
    let commitmeta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("commitmeta.json")).unwrap()).unwrap();

    // skopeo reads the local archive: labels of an ostree-native image.
    let local = skopeo_json(&["inspect", &format!("oci-archive:{}", archive.display())]);
    let labels = &local["Labels"];
    assert_eq!(labels["ostree.commit"], commit.as_str(), "{local}");
    assert_eq!(labels["containers.bootc"], "1");
    assert_eq!(labels["org.opencontainers.image.version"], id.as_str());
    if commitmeta["ostree.bootable"] == true {
        assert_eq!(labels["ostree.bootable"], "true");
    } else {
        assert!(labels.get("ostree.bootable").is_none());
    }
    assert_eq!(local["Architecture"], "amd64");
    let layers = local["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let raw = skopeo_json(&[
        "inspect",
        "--config",
        &format!("oci-archive:{}", archive.display()),
    ]);
    assert_eq!(
        labels["ostree.final-diffid"], raw["rootfs"]["diff_ids"][0],
        "{raw}"
    );

    // Deterministic: exporting the commit again gives the same bytes.
    let repo = cosa::ostree::Repo::open(&wd.join("tmp/repo")).unwrap();
    let again = t.path().join("again.ociarchive");
    let img = cosa::publish::oci::export_ociarchive(&repo, &commit, "x86_64", &again).unwrap();
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&archive).unwrap()
    );

    // The layer holds the ostree-ext layout: repo config, commit, content
    // objects with their xattrs links, and the files at their paths.
    let unpacked = t.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    tool(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked),
    );
    let blob = unpacked
        .join("blobs/sha256")
        .join(&layers[0].as_str().unwrap()[7..]);
    let listing = tool(Command::new("tar").arg("-tvzf").arg(&blob));
    let config_line = listing
        .lines()
        .find(|l| l.ends_with(" sysroot/ostree/repo/config"))
        .expect("repo config in the layer");
    assert!(config_line.starts_with("-rw-r--r-- 0/0"), "{config_line}");
    let obj = format!(
        "sysroot/ostree/repo/objects/{}/{}.commit",
        &commit[..2],
        &commit[2..]
    );
    assert!(listing.contains(&obj), "no {obj}");
    assert!(listing.contains(".file-xattrs-link link to sysroot/ostree/repo/objects/"));
    let osr = listing
        .lines()
        .find(|l| l.contains(" usr/lib/os-release "))
        .expect("usr/lib/os-release in the layer");
    assert!(
        osr.contains("link to sysroot/ostree/repo/objects/"),
        "{osr}"
    );
    let cfgtxt = tool(
        Command::new("tar")
            .arg("-xzOf")
            .arg(&blob)
            .arg("sysroot/ostree/repo/config"),
    );
    assert!(cfgtxt.contains("mode=bare-split-xattrs"), "{cfgtxt}");

    // Push to a real registry.
    let reg = Registry::start(&t.path().join("registry"));
    let dest = format!("{}/cosa/os", reg.addr);
    let o = run(
        cosa(&wd).args(["push-container", &format!("{dest}:extra"), "--tag", "t2"]),
        true,
    );
    let printed = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let meta2: Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    cosa::store::meta::validate(&meta2).expect("meta.json stays schema-valid");
    let boc = &meta2["base-oscontainer"];
    assert_eq!(boc["image"], dest.as_str());
    let digest = boc["digest"].as_str().unwrap().to_string();
    assert_eq!(digest, img.manifest_digest);
    assert_eq!(printed, format!("{dest}@{digest}"));

    let remote = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{dest}:{id}"),
    ]);
    assert_eq!(remote["Digest"], digest.as_str(), "{remote}");
    assert_eq!(remote["Labels"], local["Labels"]);
    let mut tags: Vec<&str> = remote["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    tags.sort();
    let mut want = vec!["extra", "t2", id.as_str()];
    want.sort();
    assert_eq!(tags, want);

    // A second push sends no blob again and gives the same digest.
    let o = run(cosa(&wd).args(["push-container", &dest]), true);
    assert!(stderr(&o).contains("already in"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("pushing blob"), "{}", stderr(&o));

    // Pull it back with skopeo and import it with cosa's importer.
    let policy = t.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let pulled = t.path().join("pulled.ociarchive");
    tool(
        Command::new("skopeo")
            .arg("--policy")
            .arg(&policy)
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{dest}:{id}"))
            .arg(format!("oci-archive:{}", pulled.display())),
    );
    let fresh_path = t.path().join("fresh");
    let fresh = cosa::ostree::Repo::init_archive(&fresh_path).unwrap();
    assert_eq!(
        cosa::publish::oci::import_ociarchive(&fresh, &pulled).unwrap(),
        commit
    );
    let fsck = tool(
        Command::new("ostree")
            .arg(format!("--repo={}", fresh_path.display()))
            .arg("fsck"),
    );
    assert!(fsck.contains("no errors"), "{fsck}");
    let a = checkout(&wd.join("tmp/repo"), &commit, &t.path().join("co-a"));
    let b = checkout(&fresh_path, &commit, &t.path().join("co-b"));
    assert!(a.len() > 10);
    assert_eq!(a, b);
    tool(
        Command::new("diff")
            .arg("-r")
            .arg("--no-dereference")
            .arg(t.path().join("co-a"))
            .arg(t.path().join("co-b")),
    );

    // A corrupted archive is refused, naming the bad blob.
    let mut data = std::fs::read(&pulled).unwrap();
    let n = data.len();
    data[n / 2] ^= 0x10;
    let bad = t.path().join("bad.ociarchive");
    std::fs::write(&bad, &data).unwrap();
    let other = cosa::ostree::Repo::init_archive(&t.path().join("other")).unwrap();
    let err = cosa::publish::oci::import_ociarchive(&other, &bad).unwrap_err();
    assert!(format!("{err:#}").contains("corrupt"), "{err:#}");

    // A digest is not a destination; a bad tag is refused before any push.
    let o = run(
        cosa(&wd).args(["push-container", &format!("{dest}:x"), "--tag", "a/b"]),
        false,
    );
    assert!(
        stderr(&o).contains("not a valid image tag"),
        "{}",
        stderr(&o)
    );
}
