//! The rpm database cosa writes into a composed tree, read back by Debian's
//! rpm (sqlite backend): the package set, dependencies and file lists equal
//! `rpm -qp` of the package files, `rpm -V` is clean on the untouched tree
//! and reports a changed file, file lookups go through the Basenames index,
//! and the file is the same bytes on every run.

use crate::common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

use cosa::rpm::PackageMeta;
use cosa::rpm::rpmdb;
use cosa_testkit::fixture::{FileSpec, PkgSpec, RepoCompression, make_repo};

const DB: &str = "usr/share/rpm";

fn specs() -> Vec<PkgSpec> {
    let busybox = std::fs::read("/bin/busybox").expect("apt-get install busybox-static");
    vec![
        PkgSpec::new("shell", "1")
            .file(FileSpec::file("/bin/busybox", busybox).mode(0o755))
            .file(FileSpec::symlink("/bin/sh", "busybox"))
            .file(FileSpec::file("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n").config())
            .file(FileSpec::file("/etc/group", "root:x:0:\n").config()),
        PkgSpec::new("base", "1.0")
            .release("3.fc40")
            .provides("base-api = 1.0")
            .file(FileSpec::dir("/usr/share/base"))
            .file(FileSpec::file("/usr/bin/base", vec![b'x'; 5000]).mode(0o755))
            .file(FileSpec::symlink("/usr/bin/base-link", "base"))
            .file(FileSpec::file("/usr/share/base/a", "same").hardlink("h"))
            .file(FileSpec::file("/usr/share/base/b", "same").hardlink("h"))
            .file(FileSpec::file("/etc/base.conf", "k=v\n").config())
            .file(FileSpec::ghost("/var/log/base.log")),
        PkgSpec::new("app", "2.1")
            .epoch(1)
            .requires("shell")
            .requires("base-api >= 1.0")
            .requires("/usr/bin/base")
            .requires_pre("base")
            .recommends("(extra if base)")
            .conflicts("oldapp < 2")
            .obsoletes("oldapp < 2")
            .post("echo installed > /usr/share/app/post-ran\n")
            .file(FileSpec::dir("/usr/share/app"))
            .file(FileSpec::file("/usr/bin/app", "app binary").mode(0o755))
            .file(FileSpec::file("/usr/share/app/removed", "gone")),
        PkgSpec::new("extra", "0.9")
            .arch("noarch")
            .supplements("app")
            .file(FileSpec::file("/usr/share/extra/data", "extra")),
    ]
}

/// A workdir whose manifest installs [`specs`] (weak dependencies on), with
/// `extra` manifest lines appended.
fn setup(t: &Path, extra: &str) -> (PathBuf, Vec<PathBuf>) {
    let repo = t.join("repo");
    let rpms = make_repo(&repo, &specs(), RepoCompression::Gz).unwrap();
    let manifest = format!(
        "ref: test/${{basearch}}\nrepos: [test]\npackages: [app]\n\
         remove-from-packages:\n  - [app, \"/usr/share/app/removed\"]\n{extra}"
    );
    let cfg = config_dir(t, &manifest, &repo);
    (init_transient(t, &cfg), rpms)
}

fn compose(wd: &Path, dest: &Path, ok: bool) -> std::process::Output {
    run(
        cosa(wd)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["compose", "rootfs"])
            .arg(dest),
        ok,
    )
}

fn rpm(args: &[&str]) -> (bool, String) {
    let out = Command::new("rpm").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn rpm_ok(args: &[&str]) -> String {
    let (ok, out) = rpm(args);
    assert!(ok, "rpm {args:?} failed:\n{out}");
    out
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn rpm_reads_the_database_of_a_composed_tree() {
    let t = tempfile::tempdir().unwrap();
    let (wd, rpms) = setup(t.path(), "");
    let tree = t.path().join("tree");
    compose(&wd, &tree, true);
    let names: Vec<_> = std::fs::read_dir(tree.join(DB))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["rpmdb.sqlite"], "no journal, -wal or -shm left");
    let written = std::fs::read(tree.join(DB).join("rpmdb.sqlite")).unwrap();
    let dbpath = tree.join(DB).display().to_string();
    let db = dbpath.as_str();

    // The installed set, exactly.
    let qa = rpm_ok(&["--dbpath", db, "-qa", "--qf", "%{NEVRA}\n"]);
    assert_eq!(
        sorted_lines(&qa),
        [
            "app-1:2.1-1.x86_64",
            "base-1.0-3.fc40.x86_64",
            "extra-0.9-1.noarch",
            "shell-1-1.x86_64"
        ]
    );

    // Dependencies and file lists equal those of the package files.
    for (name, file) in ["shell", "base", "app", "extra"].iter().zip(&rpms) {
        let file = file.display().to_string();
        for q in [
            "--requires",
            "--provides",
            "--conflicts",
            "--obsoletes",
            "--recommends",
            "--supplements",
            "-l",
            "--scripts",
        ] {
            let from_db = rpm_ok(&["--dbpath", db, "-q", q, name]);
            let from_file = rpm_ok(&["-qp", "--nosignature", "--nodigest", q, &file]);
            assert_eq!(from_db, from_file, "{name} {q}");
        }
        // The header in the database carries the package's digests.
        let qf = "%{SHA256HEADER} %{SIGMD5}";
        assert_eq!(
            rpm_ok(&["--dbpath", db, "-q", "--qf", qf, name]),
            rpm_ok(&["-qp", "--nosignature", "--nodigest", "--qf", qf, &file]),
            "{name}"
        );
    }
    // Install-time tags: the transaction is the timestamp, install times
    // follow the install order (app after base, which it needs).
    let times = rpm_ok(&[
        "--dbpath",
        db,
        "-q",
        "--qf",
        "%{INSTALLTID} %{INSTALLCOLOR} %{INSTALLTIME}\n",
        "base",
        "app",
    ]);
    let t: Vec<(&str, u32)> = times
        .lines()
        .map(|l| (&l[..13], l[13..].parse().unwrap()))
        .collect();
    assert_eq!(t[0].0, "1700000000 3 ");
    assert_eq!(t[1].0, "1700000000 3 ");
    assert!((1_700_000_000..1_700_000_004).contains(&t[0].1), "{times}");
    assert!(t[0].1 < t[1].1 && t[1].1 < 1_700_000_004, "{times}");

    // Index lookups: Basenames/Dirnames, Providename, Requirename, Sigmd5 ...
    assert_eq!(
        rpm_ok(&["--dbpath", db, "-q", "--whatprovides", "/usr/bin/base"]),
        "base-1.0-3.fc40.x86_64\n"
    );
    assert_eq!(
        rpm_ok(&["--dbpath", db, "-qf", "/usr/share/base/b"]),
        "base-1.0-3.fc40.x86_64\n"
    );
    assert_eq!(
        rpm_ok(&["--dbpath", db, "-q", "--whatprovides", "base-api"]),
        "base-1.0-3.fc40.x86_64\n"
    );
    assert_eq!(
        rpm_ok(&["--dbpath", db, "-q", "--whatrequires", "base-api"]),
        "app-2.1-1.x86_64\n"
    );
    // A Requires(pre) is install-only: not in the Requirename index.
    assert_eq!(
        rpm_ok(&["--dbpath", db, "-q", "--whatrequires", "/usr/bin/base"]),
        "app-2.1-1.x86_64\n"
    );
    assert!(!rpm(&["--dbpath", db, "-q", "--whatrequires", "base"]).0);
    assert_eq!(
        rpm_ok(&["--dbpath", db, "-q", "--whatrecommends", "extra"]),
        "app-2.1-1.x86_64\n"
    );
    assert_eq!(
        rpm_ok(&["--dbpath", db, "-q", "--whatsupplements", "app"]),
        "extra-0.9-1.noarch\n"
    );
    assert!(!rpm(&["--dbpath", db, "-qf", "/usr/bin/nothing"]).0);
    let (_, out) = rpm(&["--dbpath", db, "--verifydb"]);
    assert!(!out.contains("error"), "{out}");

    // The file removed by remove-from-packages is recorded as not installed.
    let states = rpm_ok(&[
        "--dbpath",
        db,
        "-q",
        "--qf",
        "[%{FILESTATES:fstate} %{FILENAMES}\n]",
        "app",
    ]);
    assert!(
        states.contains("not installed /usr/share/app/removed"),
        "{states}"
    );
    assert!(states.contains("normal /usr/bin/app"), "{states}");

    // rpm -V in the tree: clean, then a changed file is reported.
    let root = tree.display().to_string();
    for name in ["shell", "base", "app", "extra"] {
        let (ok, out) = rpm(&["--root", &root, "--dbpath", "/usr/share/rpm", "-V", name]);
        assert!(ok && out.is_empty(), "rpm -V {name}:\n{out}");
    }
    std::fs::write(tree.join("usr/bin/app"), "changed!!!").unwrap();
    let (ok, out) = rpm(&["--root", &root, "--dbpath", "/usr/share/rpm", "-V", "app"]);
    assert!(!ok, "rpm -V did not notice the change");
    assert!(out.contains("/usr/bin/app") && out.contains('5'), "{out}");

    // Placement as rpm-ostree: links, macro, the base copy (hard links).
    let link = |p: &str| std::fs::read_link(tree.join(p)).unwrap();
    assert_eq!(link("usr/lib/sysimage/rpm"), Path::new("../../share/rpm"));
    assert_eq!(link("var/lib/rpm"), Path::new("../../usr/share/rpm"));
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/lib/rpm/macros.d/macros.rpm-ostree")).unwrap(),
        "%_dbpath /usr/share/rpm\n"
    );
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(tree.join(p)).unwrap().ino();
    assert_eq!(
        ino("usr/share/rpm/rpmdb.sqlite"),
        ino("usr/lib/sysimage/rpm-ostree-base-db/rpmdb.sqlite")
    );
    // rpm only read it.
    assert!(std::fs::read(tree.join(DB).join("rpmdb.sqlite")).unwrap() == written);
    // rpm through the default-path link and the library's own reader agree.
    assert_eq!(
        sorted_lines(&rpm_ok(&[
            "--root",
            &root,
            "--dbpath",
            "/var/lib/rpm",
            "-qa",
            "--qf",
            "%{NEVRA}\n"
        ])),
        sorted_lines(&qa)
    );
    let mut ours: Vec<String> = rpmdb::read_packages(&tree.join(DB).join("rpmdb.sqlite"))
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    ours.sort();
    assert_eq!(ours, sorted_lines(&qa));
}

#[test]
fn the_database_is_the_same_bytes_every_time() {
    let t = tempfile::tempdir().unwrap();
    let (wd, _) = setup(t.path(), "rpmdb: sqlite\nrpmdb-normalize: true\n");
    let a = t.path().join("a");
    let b = t.path().join("b");
    compose(&wd, &a, true);
    compose(&wd, &b, true);
    let read = |p: &Path| std::fs::read(p.join(DB).join("rpmdb.sqlite")).unwrap();
    assert!(read(&a).len() > 4096);
    assert!(
        read(&a) == read(&b),
        "two composes wrote different databases"
    );
    // The file header: no WAL (bytes 18 and 19 are 1 for the rollback journal).
    assert_eq!(&read(&a)[18..20], &[1, 1]);
}

#[test]
fn unsupported_backends_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let (wd, _) = setup(t.path(), "rpmdb: bdb\n");
    let out = compose(&wd, &t.path().join("tree"), false);
    let e = stderr(&out);
    assert!(
        e.contains("treefile key rpmdb: \"bdb\" is not supported"),
        "{e}"
    );
    assert!(!t.path().join("tree").exists());
}

#[test]
fn a_truncated_header_names_the_file() {
    let t = tempfile::tempdir().unwrap();
    let spec = &specs()[1];
    let good = spec.build(t.path()).unwrap();
    let bad = t.path().join("truncated.rpm");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&bad, &bytes[..600]).unwrap();
    let meta = PackageMeta {
        name: spec.name.clone(),
        version: spec.version.clone(),
        release: spec.release.clone(),
        arch: spec.arch.clone(),
        ..Default::default()
    };
    let opts = rpmdb::WriteOptions {
        timestamp: 1,
        arch: "x86_64".into(),
        skips: Default::default(),
    };
    let dest = t.path().join("rpmdb.sqlite");
    let e = rpmdb::write(&dest, &[(meta, bad.clone())], &opts).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains(&bad.display().to_string()), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
    assert!(!dest.exists(), "nothing is left behind on failure");
    let leftovers = std::fs::read_dir(t.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".rpmdb-")
        })
        .count();
    assert_eq!(leftovers, 0);
}

/// (table, package name, key, idx) of an index row.
type Row = (String, String, String, i64);

/// Every index row, and each package's
/// header as `rpm -q --xml` prints it without the install times.
/// With `installed`, files recorded as not installed count as installed.
fn db_content(dbdir: &Path, installed: bool) -> (Vec<Row>, Vec<String>) {
    let conn = rusqlite::Connection::open_with_flags(
        dbdir.join("rpmdb.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let names: std::collections::BTreeMap<i64, String> =
        rpmdb::read_packages(&dbdir.join("rpmdb.sqlite"))
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, n)| (i as i64 + 1, n.name))
            .collect();
    let mut rows = Vec::new();
    for t in rpmdb::INDEXES {
        let mut st = conn
            .prepare(&format!("SELECT key, hnum, idx FROM '{}'", t.name))
            .unwrap();
        let mut q = st.query([]).unwrap();
        while let Some(r) = q.next().unwrap() {
            let key = match r.get_ref(0).unwrap() {
                rusqlite::types::ValueRef::Text(b) => String::from_utf8_lossy(b).into_owned(),
                rusqlite::types::ValueRef::Blob(b) => format!("{b:?}"),
                other => panic!("{}: key {other:?}", t.name),
            };
            let hnum: i64 = r.get(1).unwrap();
            rows.push((
                t.name.to_string(),
                names[&hnum].clone(),
                key,
                r.get(2).unwrap(),
            ));
        }
    }
    rows.sort();
    let db = dbdir.display().to_string();
    let mut headers = Vec::new();
    for name in names.values() {
        let xml = rpm_ok(&["--dbpath", &db, "-q", "--xml", name]);
        let mut kept = Vec::new();
        let mut skip = false;
        let mut states = false;
        for line in xml.lines() {
            states = (states || line.contains("<rpmTag name=\"Filestates\">"))
                && !line.contains("</rpmTag>");
            if states && installed && line == "\t<integer>2</integer>" {
                kept.push("\t<integer>0</integer>");
                continue;
            }
            if line.contains("<rpmTag name=\"Installtime\">")
                || line.contains("<rpmTag name=\"Installtid\">")
            {
                skip = true;
            }
            if !skip {
                kept.push(line);
            }
            if skip && line.contains("</rpmTag>") {
                skip = false;
            }
        }
        headers.push(kept.join("\n"));
    }
    headers.sort();
    (rows, headers)
}

/// The same packages installed by rpm itself (`rpm -i --justdb`) give the
/// same index rows and, install times aside, the same headers.
#[test]
fn indexes_and_headers_equal_rpms_own() {
    let t = tempfile::tempdir().unwrap();
    let (wd, rpms) = setup(t.path(), "");
    let tree = t.path().join("tree");
    compose(&wd, &tree, true);
    let reference = t.path().join("ref");
    let r = reference.display().to_string();
    rpm_ok(&["--dbpath", &r, "--initdb"]);
    let mut args = vec![
        "--dbpath",
        &r,
        "-i",
        "--justdb",
        "--nodeps",
        "--noscripts",
        "--nosignature",
        "--ignorearch",
        "--define",
        "_transaction_color 3",
    ];
    let files: Vec<String> = rpms.iter().map(|p| p.display().to_string()).collect();
    args.extend(files.iter().map(String::as_str));
    rpm_ok(&args);
    // remove-from-packages marks one file not installed; rpm installed it.
    let (ours_rows, ours_headers) = db_content(&tree.join(DB), true);
    let (ref_rows, ref_headers) = db_content(&reference, false);
    // Installtid keys are the install times (rpm's are now, ours the epoch).
    let no_tid =
        |rows: Vec<Row>| -> Vec<_> { rows.into_iter().filter(|r| r.0 != "Installtid").collect() };
    let ours_rows = no_tid(ours_rows);
    assert!(
        ours_rows
            .iter()
            .any(|r| r.0 == "Recommendname" && r.2 == "!base")
    );
    assert_eq!(ours_rows, no_tid(ref_rows));
    assert_eq!(ours_headers.len(), 4);
    for (a, b) in ours_headers.iter().zip(&ref_headers) {
        assert!(a == b, "headers differ:\n{a}\n---- rpm's:\n{b}");
    }
}
