//! The built-in tests that run over SSH, named as upstream's kola names
//! them. Each is a function over a booted [`Guest`] and the facts of the
//! build under test ([`BuildFacts`]).

use anyhow::{Context, Result, bail, ensure};

use super::guest::Guest;

/// What the build under test is, for the tests to compare the machine with.
#[derive(Debug, Clone, Default)]
pub struct BuildFacts {
    pub id: String,
    pub commit: String,
    pub version: String,
    /// `name-version-release.arch` of every package of the commit
    /// (commitmeta.json's `rpmostree.rpmdb.pkglist`), sorted.
    pub packages: Vec<String>,
}

impl BuildFacts {
    /// The facts of a build from its meta.json and commitmeta.json.
    pub fn read(meta: &crate::store::meta::Meta, build_dir: &std::path::Path) -> Result<Self> {
        let cm = build_dir.join("commitmeta.json");
        let v = crate::store::meta::read_value(&cm)?;
        let mut packages: Vec<String> = crate::store::diff::packages_from_commitmeta(&v)
            .with_context(|| format!("reading the package list of {}", cm.display()))?
            .iter()
            .map(|p| {
                let release = p.evr.release.as_deref().unwrap_or("");
                format!("{}-{}-{release}.{}", p.name, p.evr.version, p.arch)
            })
            .collect();
        packages.sort();
        Ok(BuildFacts {
            id: meta.buildid.clone(),
            commit: meta.ostree_commit.clone(),
            version: meta.ostree_version.clone(),
            packages,
        })
    }
}

/// `basic`, as upstream's basic checks: the machine came up, runs the
/// build's commit with its packages, was provisioned once, keeps /usr and
/// the physical root read-only, and its files carry SELinux labels.
pub fn basic(g: &mut dyn Guest, b: &BuildFacts) -> Result<String> {
    let ssh = g.ssh();
    let mut out = String::new();
    // systemd's verdict, once the boot is done.
    let state = ssh.output("systemctl is-system-running --wait")?;
    let state_text = String::from_utf8_lossy(&state.stdout).trim().to_string();
    match state_text.as_str() {
        "running" => out.push_str("systemd: running\n"),
        "degraded" => {
            let failed = ssh.run("systemctl --failed --no-legend --plain")?;
            out.push_str(&format!("systemd: degraded; failed units:\n{failed}"));
        }
        other => bail!(
            "systemctl is-system-running says {other:?} (running or degraded expected): {}",
            String::from_utf8_lossy(&state.stderr).trim()
        ),
    }
    // The booted deployment is the build's commit.
    let status = ssh.run(&g.as_root("ostree admin status"))?;
    let booted = status
        .lines()
        .find(|l| l.starts_with("* "))
        .with_context(|| format!("ostree admin status marks no booted deployment:\n{status}"))?;
    ensure!(
        booted.contains(&format!("{}.", b.commit)),
        "the booted deployment is not commit {} of build {}: {booted}",
        b.commit,
        b.id
    );
    out.push_str(&format!(
        "ostree: booted {}\n",
        booted.trim_start_matches("* ")
    ));
    ensure!(
        status.contains(&format!("Version: {}", b.version)),
        "ostree admin status does not show version {}:\n{status}",
        b.version
    );
    // rpm inside reads the commit's database: the same packages.
    let qa = ssh.run("rpm -qa --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n'")?;
    let mut have: Vec<String> = qa.lines().map(str::to_string).collect();
    have.sort();
    if have != b.packages {
        let missing: Vec<&String> = b.packages.iter().filter(|p| !have.contains(p)).collect();
        let extra: Vec<&String> = have.iter().filter(|p| !b.packages.contains(p)).collect();
        bail!(
            "rpm -qa in the machine differs from the build's package list: missing {missing:?}, extra {extra:?}"
        );
    }
    out.push_str(&format!("rpm -qa: the build's {} packages\n", have.len()));
    // Provisioned once: the first-boot stamp on the boot file system is
    // gone, so the next boot does not run Ignition again; checked by
    // rebooting (which also shows the machine comes back).
    let boot = ssh.output("findmnt -no SOURCE /boot")?;
    ensure!(
        boot.success(),
        "/boot is not mounted, so the first-boot stamp cannot be checked"
    );
    let stamp = ssh.output("test -e /boot/ignition.firstboot")?;
    ensure!(
        !stamp.success(),
        "/boot/ignition.firstboot is still there after the first boot"
    );
    g.reboot().context("rebooting after the first boot")?;
    let ssh = g.ssh();
    let cmdline = ssh.run("cat /proc/cmdline")?;
    ensure!(
        !cmdline
            .split_whitespace()
            .any(|w| w == "ignition.firstboot"),
        "the second boot's kernel command line still has ignition.firstboot: {cmdline}"
    );
    out.push_str("first boot: the stamp is gone; the second boot ran without ignition.firstboot\n");
    // Read-only /sysroot and /usr.
    for m in ["/sysroot", "/usr"] {
        let opts = ssh.run(&format!("findmnt -no OPTIONS {m}"))?;
        ensure!(
            opts.trim().split(',').next() == Some("ro"),
            "{m} is mounted {} (read-only expected)",
            opts.trim()
        );
    }
    out.push_str("/sysroot and /usr: read-only\n");
    // SELinux labels on disk.
    let label = ssh.run("stat -c %C /usr/bin/bash")?;
    ensure!(
        label.trim().contains("_t:"),
        "/usr/bin/bash has no SELinux label: {}",
        label.trim()
    );
    out.push_str(&format!("SELinux: /usr/bin/bash is {}\n", label.trim()));
    Ok(out)
}
