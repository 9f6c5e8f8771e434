//! Unpacking: the tree we write matches what `rpm2cpio | cpio -idm` and
//! `rpm -i` make from the same packages.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use cosa::compose::install::install;
use cosa_testkit::fixture::{FileSpec, PkgSpec};
use cosa_testkit::install::*;

#[derive(Debug, PartialEq)]
struct Node {
    mode: u32,
    kind: String,
    size: u64,
    content: Vec<u8>,
}

/// Every non-directory below `root` (directories by mode only), plus the
/// groups of paths sharing an inode.
fn snapshot(root: &Path) -> (BTreeMap<String, Node>, Vec<Vec<String>>) {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let (kind, content) = if m.is_dir() {
                stack.push(p.clone());
                ("dir".to_string(), vec![])
            } else if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                ("link".into(), t.to_string_lossy().as_bytes().to_vec())
            } else {
                inodes.entry(m.ino()).or_default().push(rel.clone());
                ("file".into(), std::fs::read(&p).unwrap())
            };
            let mode = if kind == "link" {
                0
            } else {
                m.permissions().mode() & 0o7777
            };
            let size = if kind == "file" { m.len() } else { 0 };
            out.insert(
                rel,
                Node {
                    mode,
                    kind,
                    size,
                    content,
                },
            );
        }
    }
    let mut links: Vec<Vec<String>> = inodes
        .into_values()
        .filter(|v| v.len() > 1)
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    links.sort();
    (out, links)
}

fn rich_package(compression: &str) -> PkgSpec {
    PkgSpec::new(&format!("rich-{compression}"), "1.0")
        .compression(compression)
        .file(FileSpec::dir("/usr/lib/rich").mode(0o750))
        .file(FileSpec::file("/usr/bin/rich", vec![7u8; 300_000]).mode(0o755))
        .file(FileSpec::file("/usr/bin/ping2", "ping").mode(0o4755))
        .file(FileSpec::file("/usr/bin/sgid", "sgid").mode(0o2711))
        .file(FileSpec::dir("/var/tmp2").mode(0o1777))
        .file(
            FileSpec::file("/usr/bin/capped", "caps")
                .mode(0o755)
                .caps("cap_net_raw=ep"),
        )
        .file(FileSpec::symlink("/usr/bin/rich-link", "rich"))
        .file(FileSpec::symlink("/usr/lib/rich/abs", "/usr/bin/rich"))
        .file(FileSpec::file("/usr/lib/rich/a", "same inode").hardlink("h"))
        .file(FileSpec::file("/usr/lib/rich/b", "same inode").hardlink("h"))
        .file(FileSpec::file("/usr/lib/rich/c", "same inode").hardlink("h"))
        .file(FileSpec::file("/etc/rich.conf", "k=v\n").config())
        .file(FileSpec::file("/etc/empty", ""))
        .file(FileSpec::ghost("/var/log/rich.log"))
}

#[test]
fn matches_cpio_extraction_for_every_compression() {
    for comp in ["gzip", "xz", "zstd", "none"] {
        let t = tempfile::tempdir().unwrap();
        let pkgs = build(&t.path().join("rpms"), &[rich_package(comp)]);
        let ours = t.path().join("ours");
        let report = install(&ours, &pkgs, &opts()).unwrap();
        assert_eq!(report.packages, 1);
        assert!(report.bytes >= 300_000, "{report:?}");

        let theirs = t.path().join("theirs");
        std::fs::create_dir_all(&theirs).unwrap();
        run(&format!(
            "cd {} && umask 022 && rpm2cpio {} | cpio -idm --quiet",
            theirs.display(),
            pkgs[0].1.display()
        ));
        let (mut a, la) = snapshot(&ours);
        let (mut b, lb) = snapshot(&theirs);
        // cpio makes implicit parents with its own modes; compare those by kind only.
        for implicit in ["usr", "usr/bin", "usr/lib", "etc", "var"] {
            a.get_mut(implicit).unwrap().mode = 0;
            b.get_mut(implicit).unwrap().mode = 0;
        }
        assert_eq!(a, b, "{comp}");
        assert_eq!(la, lb, "{comp}");
        assert_eq!(
            la,
            vec![vec!["usr/lib/rich/a", "usr/lib/rich/b", "usr/lib/rich/c"]]
        );
        assert!(!ours.join("var/log/rich.log").exists(), "ghost created");
        assert_eq!(
            std::fs::symlink_metadata(ours.join("usr/bin/rich"))
                .unwrap()
                .mtime(),
            1_700_000_000
        );
    }
}

#[test]
fn matches_rpm_install_including_caps_and_mtimes() {
    let t = tempfile::tempdir().unwrap();
    let pkgs = build(&t.path().join("rpms"), &[rich_package("zstd")]);
    let ours = t.path().join("ours");
    install(&ours, &pkgs, &opts()).unwrap();
    let theirs = t.path().join("theirs");
    run(&format!(
        "rpm --root {} --dbpath /rpmdb -i --nodeps --noscripts --nosignature --nodigest {}",
        theirs.display(),
        pkgs[0].1.display()
    ));
    std::fs::remove_dir_all(theirs.join("rpmdb")).unwrap();
    let (mut a, la) = snapshot(&ours);
    let (mut b, lb) = snapshot(&theirs);
    for implicit in ["usr", "usr/bin", "usr/lib", "etc", "var", "var/log"] {
        a.get_mut(implicit).map(|n| n.mode = 0);
        b.get_mut(implicit).map(|n| n.mode = 0);
    }
    // rpm creates %ghost's parent directory; so do we, and neither creates the ghost.
    assert_eq!(a, b);
    assert_eq!(la, lb);
    for f in ["usr/bin/capped", "usr/bin/rich", "usr/lib/rich/abs"] {
        let ma = std::fs::symlink_metadata(ours.join(f)).unwrap();
        let mb = std::fs::symlink_metadata(theirs.join(f)).unwrap();
        assert_eq!(ma.mtime(), mb.mtime(), "{f}");
    }
    let getcap = |root: &Path| {
        run(&format!(
            "getfattr --absolute-names -e hex -n security.capability {}/usr/bin/capped",
            root.display()
        ))
        .lines()
        .filter(|l| l.starts_with("security.capability"))
        .collect::<String>()
    };
    let ca = getcap(&ours);
    assert!(!ca.is_empty());
    assert_eq!(ca, getcap(&theirs));
    assert!(run(&format!("getcap {}/usr/bin/capped", ours.display())).contains("cap_net_raw=ep"));
}

/// `install-langs` leaves out what rpm's `%_install_langs` leaves out, on
/// a package with `%lang` files built by the real rpmbuild, compared with
/// the real rpm installing the same package into a root.
#[test]
fn install_langs_matches_rpm() {
    use std::process::Command;
    let t = tempfile::tempdir().unwrap();
    let top = t.path().join("rpmbuild");
    for d in ["SPECS", "SOURCES", "BUILD", "RPMS", "SRPMS", "BUILDROOT"] {
        std::fs::create_dir_all(top.join(d)).unwrap();
    }
    let spec = top.join("SPECS/langs.spec");
    std::fs::write(
        &spec,
        "Name: langs\nVersion: 1\nRelease: 1\nSummary: l\nLicense: MIT\nBuildArch: noarch\n\
         %description\nl\n%install\n\
         for l in de de_AT en_US fr pt_BR; do mkdir -p %{buildroot}/usr/share/locale/$l; echo $l > %{buildroot}/usr/share/locale/$l/m.mo; done\n\
         mkdir -p %{buildroot}/usr/share/langs; echo x > %{buildroot}/usr/share/langs/plain\n\
         %files\n/usr/share/langs/plain\n\
         %lang(de) /usr/share/locale/de/m.mo\n%lang(de_AT) /usr/share/locale/de_AT/m.mo\n\
         %lang(en_US) /usr/share/locale/en_US/m.mo\n%lang(fr) /usr/share/locale/fr/m.mo\n\
         %lang(pt_BR) /usr/share/locale/pt_BR/m.mo\n",
    )
    .unwrap();
    let out = Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["--define", "_dbpath /nonexistent-db", "-bb"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rpm = top.join("RPMS/noarch/langs-1-1.noarch.rpm");
    let langs = ["de_DE".to_string(), "en".to_string(), "pt_BR".to_string()];

    let mut o = opts();
    o.install_langs = Some(langs.to_vec());
    let meta = cosa::rpm::PackageMeta {
        name: "langs".into(),
        version: "1".into(),
        release: "1".into(),
        arch: "noarch".into(),
        ..Default::default()
    };
    let ours = t.path().join("ours");
    let pkgs = [(meta, rpm.clone())];
    cosa::compose::install::install(&ours, &pkgs, &o).unwrap();
    // The rpm database records the left-out files as rpm does.
    let db = ours.join("usr/share/rpm");
    std::fs::create_dir_all(&db).unwrap();
    cosa::rpm::rpmdb::write(
        &db.join("rpmdb.sqlite"),
        &pkgs,
        &cosa::rpm::rpmdb::WriteOptions {
            timestamp: 1_700_000_000,
            arch: "x86_64".into(),
            skips: cosa::rpm::rpmdb::FileSkips {
                documentation: true,
                remove_from_packages: vec![],
                install_langs: Some(langs.to_vec()),
            },
        },
    )
    .unwrap();

    let theirs = t.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    let out = Command::new("rpm")
        .arg("--root")
        .arg(&theirs)
        .args(["--dbpath", "/var/lib/rpm"])
        .arg("--define")
        .arg(format!("_install_langs {}", langs.join(":")))
        .args(["-i", "--nodeps", "--noscripts", "--nosignature"])
        .arg(&rpm)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = |root: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = cosa_testkit::download::files_under(&root.join("usr/share"))
            .into_iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        v.sort();
        v
    };
    let ours_files = files(&ours);
    let mut theirs_files = files(&theirs);
    theirs_files.retain(|f| !f.starts_with("usr/share/rpm"));
    let ours_files: Vec<String> = ours_files
        .into_iter()
        .filter(|f| !f.starts_with("usr/share/rpm"))
        .collect();
    assert_eq!(ours_files, theirs_files);
    let states = |root: &std::path::Path, dbpath: &str| {
        let o = Command::new("rpm")
            .arg("--root")
            .arg(root)
            .args([
                "--dbpath",
                dbpath,
                "-q",
                "--qf",
                "[%{FILESTATES:fstate} %{FILENAMES}\\n]",
                "langs",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let s = states(&ours, "/usr/share/rpm");
    assert_eq!(s, states(&theirs, "/var/lib/rpm"));
    assert_eq!(s.matches("not installed").count(), 3, "{s}");
    let v = Command::new("rpm")
        .arg("--root")
        .arg(&ours)
        .args(["--dbpath", "/usr/share/rpm", "-V", "langs"])
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "rpm -V: {}",
        String::from_utf8_lossy(&v.stdout)
    );
    // `de` is a prefix of de_DE; `en_US` is not one of `en`.
    assert!(
        ours_files.contains(&"usr/share/locale/de/m.mo".to_string()),
        "{ours_files:?}"
    );
    assert!(ours_files.contains(&"usr/share/locale/pt_BR/m.mo".to_string()));
    assert!(!ours_files.contains(&"usr/share/locale/fr/m.mo".to_string()));
}
