//! The native OSTree writer checked against Debian's `ostree` CLI:
//! identical checksums to `ostree commit`, fsck, ls, show, log, checkout,
//! summary, prune, export/import, reproducibility.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use cosa::ostree::objects::{self, COMMIT, DIRTREE, ObjectType};
use cosa::ostree::{Commit, Repo, Type, Value};

fn ostree(args: &[&str]) -> String {
    let out = Command::new("ostree")
        .args(args)
        .output()
        .expect("running ostree (apt-get install ostree)");
    assert!(
        out.status.success(),
        "ostree {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn repo_arg(repo: &Path) -> String {
    format!("--repo={}", repo.display())
}

/// Semi-compressible bytes: a repeating phrase with a counter mixed in.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    while out.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if x >> 62 == 0 {
            out.extend_from_slice(&x.to_le_bytes());
        } else {
            out.extend_from_slice(b"the quick brown fox ");
        }
    }
    out.truncate(len);
    out
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

/// A tree with every kind of entry the writer must handle.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("usr/lib/deep/er/still")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::create_dir_all(root.join("private")).unwrap();
    fs::write(root.join("empty-file"), b"").unwrap();
    fs::write(root.join("small.txt"), b"hello ostree\n").unwrap();
    fs::write(root.join("usr/lib/large.bin"), payload(5 << 20 | 123, 1)).unwrap();
    fs::write(root.join("usr/lib/medium.bin"), payload(300_000, 2)).unwrap();
    fs::write(root.join("usr/lib/deep/er/still/leaf"), b"leaf\n").unwrap();
    fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    chmod(&root.join("usr/bin/tool"), 0o755);
    fs::write(root.join("usr/bin/su"), b"setuid binary\n").unwrap();
    chmod(&root.join("usr/bin/su"), 0o4755);
    fs::write(root.join("usr/bin/ping"), b"ping with caps\n").unwrap();
    let st = Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(root.join("usr/bin/ping"))
        .status()
        .unwrap();
    assert!(st.success(), "setcap failed");
    fs::write(root.join("xattr-file"), b"user xattrs\n").unwrap();
    xattr::set(root.join("xattr-file"), "user.zeta", b"last").unwrap();
    xattr::set(root.join("xattr-file"), "user.alpha", b"first").unwrap();
    xattr::set(root.join("private"), "user.dir", b"on a directory").unwrap();
    chmod(&root.join("private"), 0o700);
    chown(&root.join("private"), 1000, 1000);
    fs::write(root.join("private/owned"), b"owned by 1000:5\n").unwrap();
    chown(&root.join("private/owned"), 1000, 5);
    chmod(&root.join("private/owned"), 0o640);
    symlink("small.txt", root.join("rel-link")).unwrap();
    symlink("/usr/bin/tool", root.join("abs-link")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    std::os::unix::fs::lchown(root.join("dangling"), Some(7), Some(8)).unwrap();
    fs::write(root.join("hard1"), b"hardlinked content\n").unwrap();
    fs::hard_link(root.join("hard1"), root.join("usr/hard2")).unwrap();
    chmod(root, 0o755);
}

/// Everything OSTree records about a tree: path -> (mode, uid, gid, link/content digest, xattrs).
fn describe(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = fs::symlink_metadata(&p).unwrap();
        let mut xs: Vec<String> = xattr::list(&p)
            .unwrap()
            .map(|n| {
                format!(
                    "{}={:?}",
                    n.to_string_lossy(),
                    xattr::get(&p, &n).unwrap().unwrap_or_default()
                )
            })
            .collect();
        xs.sort();
        let what = if md.file_type().is_symlink() {
            format!("-> {}", fs::read_link(&p).unwrap().display())
        } else if md.is_file() {
            objects::sha256_hex(&fs::read(&p).unwrap())
        } else {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            "dir".to_string()
        };
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        out.insert(
            rel,
            format!("{:o} {}:{} {what} {xs:?}", md.mode(), md.uid(), md.gid()),
        );
    }
    out
}

fn metadata() -> BTreeMap<String, Value> {
    let pkgs = vec![
        [
            "bash".to_string(),
            "0".into(),
            "5.2.26".into(),
            "1.fc40".into(),
            "x86_64".into(),
        ],
        [
            "kernel".to_string(),
            "0".into(),
            "6.8.5".into(),
            "301.fc40".into(),
            "x86_64".into(),
        ],
    ];
    let mut md = BTreeMap::new();
    md.insert("version".to_string(), Value::str("40.20240501.dev.0"));
    md.insert("rpmostree.rpmdb.pkglist".to_string(), Value::pkglist(&pkgs));
    md.insert("ostree.bootable".to_string(), Value::Bool(true));
    md.insert("rpmostree.inputhash".to_string(), Value::str("abc123"));
    md.insert("cosa.size".to_string(), Value::u64_be(123456789));
    md.insert(
        "ostree.ref-binding".to_string(),
        Value::string_array(&["fedora/x86_64/coreos"]),
    );
    md
}

fn commit_tree(repo: &Repo, src: &Path, parent: Option<String>, ts: u64) -> String {
    let root = repo.write_dir(src).unwrap();
    repo.write_commit(&Commit {
        parent,
        subject: "cosa test".into(),
        body: "a body".into(),
        timestamp: ts,
        metadata: metadata(),
        root,
    })
    .unwrap()
}

const TS: u64 = 1_714_521_600; // 2024-05-01T00:00:00Z

#[test]
fn commit_is_byte_identical_to_ostree_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    let theirs = tmp.path().join("theirs");
    ostree(&["init", &repo_arg(&theirs), "--mode=archive"]);
    let their_commit = ostree(&[
        "commit",
        &repo_arg(&theirs),
        "--branch=x",
        &format!("--tree=dir={}", src.display()),
        "--timestamp=2024-05-01T00:00:00Z",
        "--no-bindings",
        "--subject=same subject",
        "--add-metadata-string=version=1.2.3",
    ]);
    let their_commit = their_commit.trim();

    let ours = Repo::init_archive(&tmp.path().join("ours")).unwrap();
    let root = ours.write_dir(&src).unwrap();
    let mut md = BTreeMap::new();
    md.insert("version".to_string(), Value::str("1.2.3"));
    let spec = Commit {
        parent: None,
        subject: "same subject".into(),
        body: String::new(),
        timestamp: TS,
        metadata: md,
        root,
    };
    let our_commit = ours.write_commit(&spec).unwrap();
    ours.set_ref("x", &our_commit).unwrap();

    let ls = |r: &Path| ostree(&["ls", &repo_arg(r), "-R", "-C", "-X", "x"]);
    assert_eq!(
        ls(ours.path()),
        ls(&theirs),
        "dirtree/dirmeta/content checksums differ"
    );
    assert_eq!(our_commit, their_commit);
    let a = fs::read(ours.object_path(&our_commit, ObjectType::Commit)).unwrap();
    let b = fs::read(theirs.join(format!(
        "objects/{}/{}.commit",
        &their_commit[..2],
        &their_commit[2..]
    )))
    .unwrap();
    assert_eq!(a, b);

    // Our parser and serializer reproduce ostree's objects byte for byte.
    let their_repo = Repo::open(&theirs).unwrap();
    let c = their_repo.read_commit(their_commit).unwrap();
    assert_eq!(c, spec);
    let v = Value::parse(&Type::parse(COMMIT).unwrap(), &b).unwrap();
    assert_eq!(v.to_bytes(), b);
    let dt = fs::read(their_repo.object_path(&c.root.0, ObjectType::DirTree)).unwrap();
    assert_eq!(
        Value::parse(&Type::parse(DIRTREE).unwrap(), &dt)
            .unwrap()
            .to_bytes(),
        dt
    );
    ostree(&["summary", "-u", &repo_arg(&theirs)]);
    let summary = fs::read(theirs.join("summary")).unwrap();
    let t = Type::parse("(a(s(taya{sv}))a{sv})").unwrap();
    assert_eq!(Value::parse(&t, &summary).unwrap().to_bytes(), summary);
    // Every content object ostree wrote parses and verifies with our reader.
    for (name, path) in their_repo.list_objects().unwrap() {
        if name.kind == ObjectType::File {
            let (meta, content) = objects::parse_filez(&fs::read(path).unwrap()).unwrap();
            assert_eq!(objects::content_checksum(&meta, &content), name.checksum);
        }
    }
}

#[test]
fn ostree_accepts_and_checks_out_our_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    let repo = Repo::init_archive(&tmp.path().join("repo")).unwrap();
    let r = repo_arg(repo.path());
    let c1 = commit_tree(&repo, &src, None, TS);
    repo.set_ref("fedora/x86_64/coreos", &c1).unwrap();
    ostree(&["fsck", &r]);

    let show = ostree(&["show", &r, "fedora/x86_64/coreos"]);
    assert!(show.contains(&format!("commit {c1}")), "{show}");
    assert!(show.contains("Version: 40.20240501.dev.0"), "{show}");
    assert!(show.contains("cosa test"), "{show}");
    let key = |k: &str| {
        ostree(&[
            "show",
            &r,
            "fedora/x86_64/coreos",
            &format!("--print-metadata-key={k}"),
        ])
    };
    assert_eq!(
        key("rpmostree.rpmdb.pkglist").trim(),
        "[('bash', '0', '5.2.26', '1.fc40', 'x86_64'), ('kernel', '0', '6.8.5', '301.fc40', 'x86_64')]"
    );
    assert_eq!(key("ostree.bootable").trim(), "true");
    assert_eq!(key("cosa.size").trim(), "uint64 123456789");
    assert_eq!(key("ostree.ref-binding").trim(), "['fedora/x86_64/coreos']");

    // Detached metadata.
    let mut det = BTreeMap::new();
    det.insert("cosa.signed-by".to_string(), Value::str("test key"));
    repo.write_commit_detached_metadata(&c1, &det).unwrap();
    let d = ostree(&[
        "show",
        &r,
        &c1,
        "--print-detached-metadata-key=cosa.signed-by",
    ]);
    assert_eq!(d.trim(), "'test key'");
    assert_eq!(repo.read_commit_detached_metadata(&c1).unwrap(), Some(det));

    // ls -R lists what we committed, with xattrs.
    let ls = ostree(&["ls", &r, "-R", "-X", "fedora/x86_64/coreos"]);
    assert!(ls.contains("/rel-link -> small.txt"), "{ls}");
    assert!(ls.contains("/dangling -> does/not/exist"), "{ls}");
    assert!(ls.contains("security.capability"), "{ls}");
    assert!(ls.contains("-04755 0 0"), "{ls}");
    assert!(ls.contains("d00700 1000 1000"), "{ls}");

    // Checkout equals the source: paths, modes, owners, targets, content, xattrs.
    let co = tmp.path().join("checkout");
    ostree(&["checkout", &r, "fedora/x86_64/coreos", co.to_str().unwrap()]);
    assert_eq!(describe(&co), describe(&src));

    // A second commit with a parent: log shows the chain; read_commit agrees.
    fs::write(src.join("small.txt"), b"changed\n").unwrap();
    let c2 = commit_tree(&repo, &src, Some(c1.clone()), TS + 86400);
    repo.set_ref("fedora/x86_64/coreos", &c2).unwrap();
    ostree(&["fsck", &r]);
    let log = ostree(&["log", &r, "fedora/x86_64/coreos"]);
    let (p2, p1) = (
        log.find(&format!("commit {c2}")),
        log.find(&format!("commit {c1}")),
    );
    assert!(p2.is_some() && p1.is_some() && p2 < p1, "{log}");
    let back = repo.read_commit(&c2).unwrap();
    assert_eq!(back.parent.as_deref(), Some(c1.as_str()));
    assert_eq!(back.timestamp, TS + 86400);
    assert_eq!(back.metadata, metadata());
    assert_eq!(
        repo.resolve_ref("fedora/x86_64/coreos").unwrap(),
        Some(c2.clone())
    );
    assert_eq!(repo.resolve_ref("no/such/ref").unwrap(), None);

    // Summary.
    repo.update_summary().unwrap();
    let view = ostree(&["summary", "--view", &r]);
    assert!(view.contains("* fedora/x86_64/coreos"), "{view}");
    assert!(view.contains(&c2), "{view}");
    let size = fs::metadata(repo.object_path(&c2, ObjectType::Commit))
        .unwrap()
        .len();
    assert!(
        view.contains(&format!("Latest Commit ({size} bytes)")),
        "{view}"
    );
    assert!(
        view.contains("Timestamp (ostree.commit.timestamp): 2024-05-02T00:00:00+00"),
        "{view}"
    );
}

#[test]
fn same_inputs_give_the_same_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    let a = Repo::init_archive(&tmp.path().join("a")).unwrap();
    let b = Repo::init_archive(&tmp.path().join("b")).unwrap();
    let ca = commit_tree(&a, &src, None, TS);
    // Touch every mtime: OSTree records none, so nothing may change.
    filetime::set_file_mtime(
        src.join("small.txt"),
        filetime::FileTime::from_unix_time(1, 0),
    )
    .unwrap();
    let cb = commit_tree(&b, &src, None, TS);
    assert_eq!(ca, cb);
    // Committing again into the same repo writes nothing new.
    let before = a.list_objects().unwrap().len();
    assert_eq!(commit_tree(&a, &src, None, TS), ca);
    assert_eq!(a.list_objects().unwrap().len(), before);
    // A different timestamp is a different commit over the same tree.
    let cc = commit_tree(&a, &src, None, TS + 1);
    assert_ne!(cc, ca);
    assert_eq!(
        a.read_commit(&cc).unwrap().root,
        a.read_commit(&ca).unwrap().root
    );
}

#[test]
fn prune_removes_only_what_dropped_commits_use() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    let repo = Repo::init_archive(&tmp.path().join("repo")).unwrap();
    let c1 = commit_tree(&repo, &src, None, TS);
    let old = repo.reachable_objects(&c1).unwrap();
    fs::write(src.join("usr/lib/medium.bin"), payload(200_000, 9)).unwrap();
    fs::write(src.join("new-file"), b"new\n").unwrap();
    let c2 = commit_tree(&repo, &src, Some(c1.clone()), TS + 1);
    repo.set_ref("stream", &c2).unwrap();
    let new = repo.reachable_objects(&c2).unwrap();
    let only_old: Vec<_> = old.difference(&new).cloned().collect();
    assert!(
        only_old.iter().any(|o| o.kind == ObjectType::File),
        "{only_old:?}"
    );

    let stats = repo.prune(std::slice::from_ref(&c2)).unwrap();
    assert_eq!(stats.objects_removed, only_old.len());
    for o in &only_old {
        assert!(
            !repo.has_object(&o.checksum, o.kind),
            "{o:?} survived prune"
        );
    }
    for o in &new {
        assert!(repo.has_object(&o.checksum, o.kind), "{o:?} was pruned");
    }
    ostree(&["fsck", &repo_arg(repo.path())]);
    // Nothing more to prune.
    assert_eq!(
        repo.prune(std::slice::from_ref(&c2))
            .unwrap()
            .objects_removed,
        0
    );
}

#[test]
fn export_import_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    let repo = Repo::init_archive(&tmp.path().join("repo")).unwrap();
    let c = commit_tree(&repo, &src, None, TS);
    let mut det = BTreeMap::new();
    det.insert("k".to_string(), Value::str("v"));
    repo.write_commit_detached_metadata(&c, &det).unwrap();
    let tar1 = tmp.path().join("commit1.tar");
    let tar2 = tmp.path().join("commit2.tar");
    repo.export_commit(&c, &tar1).unwrap();
    repo.export_commit(&c, &tar2).unwrap();
    assert_eq!(
        fs::read(&tar1).unwrap(),
        fs::read(&tar2).unwrap(),
        "export is not reproducible"
    );

    // GNU tar reads it, and the extracted directory is a valid ostree repo.
    let x = tmp.path().join("extracted");
    fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&tar1)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    ostree(&["fsck", &repo_arg(&x)]);
    assert!(ostree(&["show", &repo_arg(&x), &c]).contains("cosa test"));

    let fresh = Repo::init_archive(&tmp.path().join("fresh")).unwrap();
    assert_eq!(fresh.import_commit(&tar1).unwrap(), c);
    fresh.set_ref("imported", &c).unwrap();
    ostree(&["fsck", &repo_arg(fresh.path())]);
    assert_eq!(fresh.read_commit_detached_metadata(&c).unwrap(), Some(det));
    assert_eq!(
        fresh.reachable_objects(&c).unwrap(),
        repo.reachable_objects(&c).unwrap()
    );

    // A corrupted object is refused.
    let mut bytes = fs::read(&tar1).unwrap();
    let n = bytes.len();
    let i = (0..n - 1024).rev().find(|&i| bytes[i] != 0).unwrap();
    bytes[i] ^= 0xff;
    let bad = tmp.path().join("bad.tar");
    fs::write(&bad, bytes).unwrap();
    let other = Repo::init_archive(&tmp.path().join("other")).unwrap();
    assert!(other.import_commit(&bad).is_err());
}

#[test]
fn unsupported_files_are_refused_with_their_path() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let fifo = src.join("a-fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let repo = Repo::init_archive(&tmp.path().join("repo")).unwrap();
    let err = format!("{:#}", repo.write_dir(&src).unwrap_err());
    assert!(err.contains("a-fifo"), "{err}");
    let bare = tmp.path().join("bare");
    ostree(&["init", &repo_arg(&bare), "--mode=bare"]);
    assert!(Repo::open(&bare).is_err());
    assert!(repo.set_ref("../escape", &"0".repeat(64)).is_err());
}

/// The treefile's `gpg-key`: the commit is signed with a key of a GnuPG
/// keyring, and the real ostree finds a good signature.
#[test]
fn gpg_key_signs_the_commit_for_ostree() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("gnupg");
    fs::create_dir(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    gpg(&[
        "--quick-gen-key",
        "Cosa Compose <compose@example.org>",
        "ed25519",
        "sign",
        "never",
    ]);
    let repo = Repo::init_archive(&t.path().join("repo")).unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("usr")).unwrap();
    fs::write(src.join("usr/f"), "x").unwrap();
    let c = commit_tree(&repo, &src, None, TS);
    cosa::sign::ostree::sign_commit_with_gpg(&repo, &c, "compose@example.org", Some(&home))
        .unwrap();
    // Twice: the same key's signature is replaced, not added.
    cosa::sign::ostree::sign_commit_with_gpg(&repo, &c, "compose@example.org", Some(&home))
        .unwrap();
    // ostree reads the *.gpg keyrings of the directory it is given.
    let ring = t.path().join("ring");
    fs::create_dir(&ring).unwrap();
    gpg(&[
        "--output",
        ring.join("key.gpg").to_str().unwrap(),
        "--export",
        "compose@example.org",
    ]);
    let out = Command::new("ostree")
        .arg(repo_arg(repo.path()))
        .args(["show", &c])
        .arg(format!("--gpg-homedir={}", ring.display()))
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        so.contains("Good signature from \"Cosa Compose <compose@example.org>\""),
        "{so}"
    );
    assert_eq!(so.matches("Good signature").count(), 1, "{so}");
    let e = cosa::sign::ostree::sign_commit_with_gpg(&repo, &c, "nobody@example.org", Some(&home))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nobody@example.org") && e.contains("gpg-key"),
        "{e}"
    );
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "gpg-agent"])
        .status();
}
