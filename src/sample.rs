//! The sample OS's packages, made with the `rpm` crate. The only host
//! binary used is Debian's static busybox (package busybox-static), so the
//! tree has a real shell and its scriptlets really run.

use std::path::Path;

use anyhow::{Context, Result};

use crate::rpm::fixture::{FileSpec, PkgSpec, RepoCompression, make_repo};

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "mkdir", "chmod", "chown", "id", "grep", "sed", "printf", "test",
    "[",
];

/// The package specs of the sample OS for `arch`.
pub fn packages(arch: &str) -> Result<Vec<PkgSpec>> {
    let arch = arch.to_string();
    let busybox = std::fs::read("/bin/busybox")
        .context("reading /bin/busybox (install Debian's busybox-static)")?;

    let filesystem = [
        "/usr",
        "/usr/bin",
        "/usr/lib",
        "/usr/share",
        "/etc",
        "/var",
        "/home",
        "/srv",
        "/opt",
        "/mnt",
    ]
    .iter()
    .fold(
        PkgSpec::new("filesystem", "3.18")
            .release("1.sample")
            .arch(&arch),
        |p, d| p.file(FileSpec::dir(d)),
    )
    .file(FileSpec::dir("/tmp").mode(0o1777))
    .file(FileSpec::dir("/root").mode(0o550))
    .file(FileSpec::symlink("/bin", "usr/bin"))
    .file(FileSpec::symlink("/lib", "usr/lib"));

    let setup = PkgSpec::new("setup", "2.14.5")
        .release("1.sample")
        .arch("noarch")
        .requires("filesystem")
        .file(FileSpec::file("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n").config())
        .file(FileSpec::file("/etc/group", "root:x:0:\nwheel:x:10:\n").config())
        .file(
            FileSpec::file("/etc/shadow", "root:!::0:99999:7:::\n")
                .mode(0)
                .config(),
        );

    let mut bb = PkgSpec::new("busybox", "1.35.0")
        .release("1.sample")
        .arch(&arch)
        .requires("filesystem")
        .provides("/bin/sh")
        .file(FileSpec::file("/usr/bin/busybox", busybox).mode(0o755));
    for a in APPLETS {
        bb = bb.file(FileSpec::symlink(&format!("/usr/bin/{a}"), "busybox"));
    }

    let release = PkgSpec::new("sample-release", "1")
        .release("1.sample")
        .arch("noarch")
        .provides("system-release = 1")
        .file(FileSpec::file(
            "/usr/lib/os-release",
            "NAME=\"cosa sample OS\"\nID=cosa-sample\nVERSION_ID=1\nPRETTY_NAME=\"cosa sample OS 1\"\n",
        ))
        .file(FileSpec::symlink("/etc/os-release", "../usr/lib/os-release"));

    let daemon = PkgSpec::new("sample-daemon", "0.3")
        .release("2.sample")
        .arch(&arch)
        .requires("system-release >= 1")
        .requires_pre("/bin/sh")
        .requires_pre("setup")
        .recommends("sample-extras")
        .pre("grep -q '^sampled:' /etc/passwd || { echo 'sampled:x:990:990:sample daemon:/var/lib/sampled:/sbin/nologin' >> /etc/passwd; echo 'sampled:x:990:' >> /etc/group; }")
        .post("echo \"configured by %post of sample-daemon ($1)\" > /etc/sample-daemon.conf")
        .file(FileSpec::file("/usr/bin/sampled", "#!/bin/sh\necho sampled running as $(id -un)\n").mode(0o755).caps("cap_net_bind_service=ep"))
        .file(FileSpec::dir("/usr/lib/sampled").owner("sampled", "sampled").mode(0o750))
        .file(FileSpec::file("/usr/lib/sampled/state", "ready\n").owner("sampled", "sampled"));

    let extras = PkgSpec::new("sample-extras", "0.3")
        .release("2.sample")
        .arch("noarch")
        .file(FileSpec::file(
            "/usr/share/sample-extras/README",
            "only installed with recommends: true\n",
        ));

    Ok(vec![filesystem, setup, bb, release, daemon, extras])
}

/// Build the sample repository into `dir/<arch>/` (replacing what was there).
pub fn make_sample_repo(dir: &Path, arch: &str) -> Result<()> {
    let out = dir.join(arch);
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    let pkgs = make_repo(&out, &packages(arch)?, RepoCompression::Gz)?;
    eprintln!(
        "Wrote {} packages and repodata to {}",
        pkgs.len(),
        out.display()
    );
    Ok(())
}
