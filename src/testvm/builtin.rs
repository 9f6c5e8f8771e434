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

/// Where `ostree.upgrade` starts: the build the machine boots, and where
/// it pulls the build under test from.
#[derive(Debug, Clone)]
pub struct UpgradeFacts {
    pub from: BuildFacts,
    /// The archive repository holding the build under test's commit, as
    /// the machine reaches it.
    pub repo_url: String,
}

/// What a built-in test is given besides the machine.
#[derive(Debug, Clone, Copy)]
pub struct TestFacts<'a> {
    /// The build under test.
    pub build: &'a BuildFacts,
    /// For a test that boots the build before it ([`crate::testvm::harness::BuiltinTest::upgrade`]).
    pub upgrade: Option<&'a UpgradeFacts>,
    /// The machine booted with Secure Boot enforced: `basic` checks that
    /// the OS sees it on and the kernel locked down.
    pub secure_boot: bool,
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
pub fn basic(g: &mut dyn Guest, f: &TestFacts) -> Result<String> {
    let b = f.build;
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
    let booted = check_booted(&status, b)?;
    out.push_str(&format!("ostree: booted {booted}\n"));
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
    if f.secure_boot {
        out.push_str(&check_secure_boot(g)?);
    }
    Ok(out)
}

/// The EFI variable that says whether Secure Boot is on (its last byte).
const SECURE_BOOT_VAR: &str =
    "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// Inside the OS: the firmware's `SecureBoot` variable is 1 and the kernel
/// is locked down (`/sys/kernel/security/lockdown`), as a shim-booted
/// signed kernel puts itself.
fn check_secure_boot(g: &mut dyn Guest) -> Result<String> {
    let var = g.ssh().run(&format!("od -An -t u1 {SECURE_BOOT_VAR}"))?;
    let on = var.split_whitespace().last() == Some("1");
    ensure!(
        on,
        "the machine booted with Secure Boot enforced, but the OS's SecureBoot variable says \
         {:?} (bytes of {SECURE_BOOT_VAR})",
        var.trim()
    );
    let lockdown = g.ssh().run("cat /sys/kernel/security/lockdown")?;
    let mode = lockdown
        .split_whitespace()
        .find(|w| w.starts_with('['))
        .map(|w| w.trim_matches(['[', ']']).to_string())
        .unwrap_or_default();
    ensure!(
        mode == "integrity" || mode == "confidentiality",
        "Secure Boot is on but the kernel is not locked down: /sys/kernel/security/lockdown \
         says {:?}",
        lockdown.trim()
    );
    Ok(format!(
        "Secure Boot: on (SecureBoot=1); lockdown: {mode}\n"
    ))
}

/// One deployment of `ostree admin status`.
#[derive(Debug)]
struct StatusEntry {
    commit: String,
    booted: bool,
    /// Its lines: `* osname CHECKSUM.SERIAL (pending)`, `Version: ...`.
    block: String,
}

impl StatusEntry {
    /// The first line, without the booted mark.
    fn header(&self) -> &str {
        self.block
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("* ")
            .trim()
    }
}

/// `ostree admin status` as deployments, in ostree's order (the default
/// deployment first).
fn deployments(status: &str) -> Vec<StatusEntry> {
    let mut v: Vec<StatusEntry> = Vec::new();
    for line in status.lines() {
        if !line.starts_with("    ") && !line.trim().is_empty() {
            let id = line
                .trim_start_matches("* ")
                .split_whitespace()
                .nth(1)
                .unwrap_or("");
            let commit = id.split_once('.').map_or(id, |(c, _serial)| c);
            v.push(StatusEntry {
                commit: commit.to_string(),
                booted: line.starts_with("* "),
                block: line.to_string(),
            });
        } else if let Some(last) = v.last_mut() {
            last.block.push('\n');
            last.block.push_str(line);
        }
    }
    v
}

/// Check that `ostree admin status` shows build `b` booted, with its
/// version; the booted deployment's first line.
fn check_booted(status: &str, b: &BuildFacts) -> Result<String> {
    let deps = deployments(status);
    let booted = deps
        .iter()
        .find(|d| d.booted)
        .with_context(|| format!("ostree admin status marks no booted deployment:\n{status}"))?;
    ensure!(
        booted.commit == b.commit,
        "the booted deployment is not commit {} of build {}:\n{status}",
        b.commit,
        b.id
    );
    ensure!(
        booted.block.contains(&format!("Version: {}", b.version)),
        "ostree admin status does not show version {} booted:\n{status}",
        b.version
    );
    Ok(booted.header().to_string())
}

/// `ostree.upgrade`: the machine boots the build before the one under
/// test, pulls the build under test's commit from the host's repository
/// over HTTP, deploys it (ostree writes the new boot entries, and with
/// `sysroot.bootloader=grub2` the new GRUB menu), reboots into it, and
/// keeps the build it came from as the rollback deployment.
pub fn ostree_upgrade(g: &mut dyn Guest, f: &TestFacts) -> Result<String> {
    let up = f
        .upgrade
        .context("ostree.upgrade needs an earlier build to start from")?;
    let (from, to) = (&up.from, f.build);
    let mut out = String::new();
    let status = g.ssh().run(&g.as_root("ostree admin status"))?;
    let booted = check_booted(&status, from).context("before the upgrade")?;
    out.push_str(&format!("before: booted {booted}\n"));
    let remote = "kola-upgrade";
    let steps = [
        format!(
            "ostree remote add --if-not-exists --no-gpg-verify {remote} {}",
            up.repo_url
        ),
        format!("ostree pull {remote} {}", to.commit),
        format!("ostree admin deploy {}", to.commit),
    ];
    for step in &steps {
        let o = g.ssh().output(&g.as_root(step))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        ensure!(
            o.success(),
            "`{step}` failed in the machine:\n{}",
            text.trim_end()
        );
        out.push_str(&format!("$ {step}\n{text}"));
    }
    let status = g.ssh().run(&g.as_root("ostree admin status"))?;
    let deps = deployments(&status);
    ensure!(
        deps.first().map(|d| d.commit.as_str()) == Some(to.commit.as_str()),
        "after `ostree admin deploy` the default deployment is not commit {} of build {}:\n{status}",
        to.commit,
        to.id
    );
    g.reboot()
        .context("rebooting into the upgraded deployment (a console log that shows the old version in GRUB's menu means the boot loader did not see the new entries)")?;
    let status = g.ssh().run(&g.as_root("ostree admin status"))?;
    let booted = check_booted(&status, to).context("after the upgrade and a reboot")?;
    out.push_str(&format!("after: booted {booted}\n"));
    let deps = deployments(&status);
    ensure!(
        deps.len() == 2 && deps[1].commit == from.commit && deps[1].block.contains("(rollback)"),
        "build {} (commit {}) is not the rollback deployment after the upgrade:\n{status}",
        from.id,
        from.commit
    );
    out.push_str(&format!("rollback: {}\n", deps[1].header()));
    let grub = g
        .ssh()
        .output(&g.as_root("test -f /boot/loader/grub.cfg"))?;
    if grub.success() {
        out.push_str("boot loader: ostree's grub2 backend wrote /boot/loader/grub.cfg\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
  sample-fcos ee78.0 (pending)
    Version: 1.2
    origin refspec: ee78
* sample-fcos 4cba.0
    Version: 1.1
    origin refspec: sample-fcos/x86_64/dev
";

    #[test]
    fn reads_ostree_admin_status() {
        let d = deployments(STATUS);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].commit.as_str(), d[0].booted), ("ee78", false));
        assert_eq!(d[0].header(), "sample-fcos ee78.0 (pending)");
        assert_eq!((d[1].commit.as_str(), d[1].booted), ("4cba", true));
        assert!(d[1].block.contains("Version: 1.1"));
        let b = BuildFacts {
            id: "1.1".into(),
            commit: "4cba".into(),
            version: "1.1".into(),
            packages: vec![],
        };
        assert_eq!(check_booted(STATUS, &b).unwrap(), "sample-fcos 4cba.0");
        let wrong = BuildFacts {
            commit: "ee78".into(),
            ..b.clone()
        };
        let e = check_booted(STATUS, &wrong).unwrap_err();
        assert!(format!("{e:#}").contains("is not commit ee78"), "{e:#}");
        let wrong_version = BuildFacts {
            version: "1.2".into(),
            ..b
        };
        assert!(check_booted(STATUS, &wrong_version).is_err());
    }
}
