//! The fixture generator makes packages that Debian's `rpm` reads as intended.

use cosa_testkit::fixture::{FileSpec, PkgSpec, RepoCompression, make_repo};
use std::process::Command;

fn rpm_q(path: &std::path::Path, fmt: &str) -> String {
    let out = Command::new("rpm")
        .args(["-qp", "--nosignature", "--nodigest", "--qf", fmt])
        .arg(path)
        .output()
        .expect("rpm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn generated_packages_read_back_with_rpm() {
    let dir = tempfile::tempdir().unwrap();
    let spec = PkgSpec::new("hello", "1.2")
        .epoch(3)
        .release("4.fc40")
        .requires("libfoo >= 2.0")
        .requires("(bar or baz)")
        .provides("hello-api = 1")
        .recommends("extra")
        .file(FileSpec::dir("/usr/lib/hello"))
        .file(FileSpec::file("/usr/bin/hello", "#!/bin/sh\necho hi\n").mode(0o4755))
        .file(FileSpec::symlink("/usr/bin/hi", "hello"))
        .post("echo post");
    let paths = make_repo(dir.path(), &[spec], RepoCompression::Gz).unwrap();
    let p = &paths[0];
    assert_eq!(
        rpm_q(p, "%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE}.%{ARCH}"),
        "hello 3:1.2-4.fc40.x86_64"
    );
    let reqs = rpm_q(p, "[%{REQUIRENEVRS}\n]");
    assert!(reqs.contains("libfoo >= 2.0"), "{reqs}");
    assert!(reqs.contains("(bar or baz)"), "{reqs}");
    let files = rpm_q(p, "[%{FILEMODES:perms} %{FILENAMES}\n]");
    assert!(files.contains("-rwsr-xr-x /usr/bin/hello"), "{files}");
    assert!(files.contains("lrwxrwxrwx /usr/bin/hi"), "{files}");
    assert!(dir.path().join("repodata/repomd.xml").exists());
}
