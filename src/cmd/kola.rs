//! `cosa kola run`, `cosa kola list` and `cosa run`: boot a build's image
//! in QEMU, for the console boot check (`basic`), for the tests that reach
//! the machine over SSH, or by hand.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::cli::{Firmware, GlobalOpts, KolaListOpts, KolaRunOpts, RunOpts};
use crate::config::kola::{self, DenyScope, Denylist, Selection};
use crate::config::workdir::Workdir;
use crate::image;
use crate::store::builds::{self, BuildsJson};
use crate::store::meta::{self, Meta};
use crate::testvm::builtin::{BuildFacts, UpgradeFacts};
use crate::testvm::harness::{self, Harness, QemuBooter, TestKind, UpgradeFrom};
use crate::testvm::report::{Report, TestResult};
use crate::testvm::serve::DirServer;
use crate::testvm::ssh::{Ssh, SshKey};
use crate::testvm::{self, Machine, ext, ignition};
use crate::util;
use crate::util::cmd::CommandRunExt;

fn firmware_name(f: Firmware) -> &'static str {
    match f {
        Firmware::Uefi => "uefi",
        Firmware::Bios => "bios",
    }
}

/// The build's meta.json and the machine for its `platform` image.
fn machine_for(
    wd: &Workdir,
    build: Option<&str>,
    arch: Option<&str>,
    platform: &str,
    firmware: Firmware,
    memory_mib: u32,
    scratch: &std::path::Path,
) -> Result<(String, Meta, Machine)> {
    let builds = BuildsJson::load(&wd.builds_dir())?;
    let arch = util::target_arch(arch)?;
    let id = builds.resolve(build)?;
    let m = Meta::read(&meta::meta_path(&wd.builds_dir(), &id, &arch))?;
    let target = image::target(platform)?;
    let art = m.images.get(platform).with_context(|| {
        format!("build {id} has no {platform} image; make it with `cosa buildextend-{platform}`")
    })?;
    let disk = builds::build_dir(&wd.builds_dir(), &id, &arch).join(&art.path);
    ensure!(disk.exists(), "{} is missing", disk.display());
    if firmware == Firmware::Bios && target.sector != 512 {
        bail!(
            "{platform} has {}-byte sectors: boot it with --firmware uefi",
            target.sector
        );
    }
    // Compressed by `cosa compress`, not by its format (gcp's tar.gz,
    // powervs's ova.gz).
    let is_compressed = [".xz", ".zst", ".gz"]
        .iter()
        .any(|e| art.path.ends_with(e) && !target.ext.ends_with(e));
    if is_compressed {
        bail!("{} is compressed; run `cosa uncompress` first", art.path);
    }
    // Formats QEMU cannot attach directly are unpacked into scratch.
    let (disk, format) = match target.format {
        image::Format::GcpTarGz => {
            std::process::Command::new("tar")
                .arg("-xSzf")
                .arg(&disk)
                .arg("-C")
                .arg(scratch)
                .arg("disk.raw")
                .run_capture("unpacking disk.raw from the GCP tarball")?;
            (scratch.join("disk.raw"), "raw")
        }
        image::Format::PowervsOvaGz => {
            let raw = scratch.join("disk.raw");
            image::formats::unpack_powervs_disk(&disk, &raw)?;
            (raw, "raw")
        }
        image::Format::Ova { .. } => {
            std::process::Command::new("tar")
                .arg("-xf")
                .arg(&disk)
                .arg("-C")
                .arg(scratch)
                .arg("disk.vmdk")
                .run_capture("unpacking disk.vmdk from the OVA")?;
            (scratch.join("disk.vmdk"), "vmdk")
        }
        _ => (
            disk,
            target.qemu_format().with_context(|| {
                format!("cosa kola cannot boot {platform} artifacts; boot the qemu image instead")
            })?,
        ),
    };
    Ok((
        id,
        m,
        Machine {
            arch,
            media: testvm::Media::Disk {
                path: disk,
                format: format.to_string(),
                sector: target.sector,
            },
            firmware,
            secure_boot: false,
            ssh_port: None,
            ignition: None,
            memory_mib,
            disks: Vec::new(),
        },
    ))
}

/// `--secure-boot`: UEFI on x86_64 and aarch64.
fn with_secure_boot(mut machine: Machine, secure_boot: bool) -> Result<Machine> {
    if secure_boot {
        ensure!(
            machine.firmware == Firmware::Uefi,
            "--secure-boot boots with UEFI: drop --firmware bios"
        );
        ensure!(
            ["x86_64", "aarch64"].contains(&machine.arch.as_str()),
            "--secure-boot needs UEFI firmware with Secure Boot (OVMF on x86_64, AAVMF on \
             aarch64); this build is {}",
            machine.arch
        );
        machine.secure_boot = true;
    }
    Ok(machine)
}

/// `cosa kola run`: `basic` alone is the console boot check; anything
/// else runs the SSH tests.
pub fn run(global: &GlobalOpts, opts: KolaRunOpts) -> Result<()> {
    if opts.patterns == ["basic"] && console_only(global, &opts)? {
        ensure!(
            opts.tags.is_empty(),
            "`basic` is the console boot check and takes no --tag"
        );
        return run_basic(global, opts);
    }
    run_tests(global, opts)
}

/// Whether `basic` is the console boot check: live media, and trees
/// without an SSH server (`/usr/sbin/sshd`), which kola cannot log in to.
fn console_only(global: &GlobalOpts, opts: &KolaRunOpts) -> Result<bool> {
    if opts.platform.starts_with("live-") {
        return Ok(true);
    }
    let wd = Workdir::open(&global.workdir)?;
    let (id, arch) = super::resolve_part(
        &wd,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
    )?;
    let m = Meta::read(&meta::meta_path(&wd.builds_dir(), &id, &arch))?;
    let repo = crate::ostree::Repo::open_or_init(&wd.repo_dir())?;
    let build_dir = builds::build_dir(&wd.builds_dir(), &id, &arch);
    crate::publish::oci::ensure_build_commit(&repo, &m, &build_dir)?;
    let sshd = repo
        .read_commit_file(&m.ostree_commit, "usr/sbin/sshd")
        .with_context(|| {
            format!(
                "looking for sshd in commit {} of build {id}",
                m.ostree_commit
            )
        })?;
    Ok(sshd.is_none())
}

/// The denylist's view of this build: arch, platform, the stream of its
/// OCI labels (as upstream reads it), today.
fn deny_scope(m: &Meta, arch: &str, platform: &str) -> DenyScope {
    let stream = m
        .extra
        .get("coreos-assembler.oci-imported-labels")
        .and_then(|l| l.get("com.coreos.stream"))
        .and_then(|s| s.as_str())
        .map(String::from);
    DenyScope {
        arch: arch.to_string(),
        platform: platform.to_string(),
        stream,
        osversion: None,
        // The real date, not SOURCE_DATE_EPOCH: snoozes end on calendar days.
        today: util::time::format_rfc3339(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        )[..10]
            .to_string(),
    }
}

/// The build before `id` that has `arch` (builds.json lists the newest
/// first).
fn previous_build(builds: &BuildsJson, id: &str, arch: &str) -> Option<String> {
    builds
        .builds
        .iter()
        .skip_while(|b| b.id != id)
        .skip(1)
        .find(|b| b.arches.iter().any(|a| a == arch))
        .map(|b| b.id.clone())
}

/// What upgrade tests start from: the machine of the build before `id`
/// (its `platform` image, same firmware) and that build's facts; the build
/// under test's commit is made sure to be in tmp/repo, which the caller
/// serves.
fn upgrade_source(
    wd: &Workdir,
    id: &str,
    m: &Meta,
    opts: &KolaRunOpts,
    arch: &str,
    scratch: &std::path::Path,
) -> Result<(Machine, BuildFacts)> {
    let builds = BuildsJson::load(&wd.builds_dir())?;
    let prev = previous_build(&builds, id, arch).with_context(|| {
        format!(
            "no build before {id} for {arch} to upgrade from (build twice, e.g. `cosa build --force`)"
        )
    })?;
    let repo = crate::ostree::Repo::open_or_init(&wd.repo_dir())?;
    crate::publish::oci::ensure_build_commit(
        &repo,
        m,
        &builds::build_dir(&wd.builds_dir(), id, arch),
    )
    .with_context(|| {
        format!(
            "putting the commit of build {id} into {}",
            wd.repo_dir().display()
        )
    })?;
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let (prev, pm, machine) = machine_for(
        wd,
        Some(&prev),
        Some(arch),
        &opts.platform,
        opts.firmware,
        opts.memory,
        scratch,
    )
    .with_context(|| format!("the image of build {prev}, to upgrade from"))?;
    let facts = BuildFacts::read(&pm, &builds::build_dir(&wd.builds_dir(), &prev, arch))?;
    Ok((with_secure_boot(machine, opts.secure_boot)?, facts))
}

/// The SSH tests: discover, choose, boot a machine for each, report.
fn run_tests(global: &GlobalOpts, opts: KolaRunOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    ensure!(
        !opts.platform.starts_with("live-"),
        "SSH tests boot disk images; the live media run `basic` only"
    );
    let ext = kola::discover(&wd.config_dir())?;
    let kola_dir = wd.tmp_dir().join("kola");
    let scratch = image::scratch_dir(&wd.tmp_dir())?;
    let (id, m, machine) = machine_for(
        &wd,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
        &opts.platform,
        opts.firmware,
        opts.memory,
        scratch.path(),
    )?;
    let machine = with_secure_boot(machine, opts.secure_boot)?;
    let sel = Selection {
        patterns: opts.patterns.clone(),
        tags: opts.tags.clone(),
        arch: machine.arch.clone(),
        platform: opts.platform.clone(),
    };
    let deny_file = opts
        .denylist
        .clone()
        .unwrap_or_else(|| wd.config_dir().join("kola-denylist.yaml"));
    let deny = Denylist::load(&deny_file, &deny_scope(&m, &machine.arch, &opts.platform))?;
    let (planned, excluded) = harness::plan(ext, &sel, &deny)?;
    for (name, why) in &excluded {
        eprintln!("kola: not running {name}: {why}");
    }
    if planned.is_empty() {
        bail!(
            "no test matches {}{} (`cosa kola list` shows the tests)",
            if opts.patterns.is_empty() {
                "all tests".to_string()
            } else {
                opts.patterns.join(" ")
            },
            if opts.tags.is_empty() {
                String::new()
            } else {
                format!(" with --tag {}", opts.tags.join(","))
            }
        );
    }
    let key = SshKey::generate(scratch.path())?;
    let booter = QemuBooter {
        machine,
        scratch: scratch.path().to_path_buf(),
        key,
        boot_timeout: Duration::from_secs(opts.timeout),
    };
    let build_dir = builds::build_dir(&wd.builds_dir(), &id, &booter.machine.arch);
    // Upgrade tests: a machine of the build before, and tmp/repo served.
    let wants_upgrade = planned
        .iter()
        .any(|p| p.denied.is_none() && matches!(&p.kind, TestKind::Builtin(b) if b.upgrade));
    let mut upgrade_why = String::from("no upgrade test runs");
    // The earlier build's machines, where they pull from, and the server.
    let mut from = None;
    if wants_upgrade {
        let from_scratch = scratch.path().join("upgrade-from");
        match upgrade_source(&wd, &id, &m, &opts, &booter.machine.arch, &from_scratch) {
            Ok((machine, facts)) => {
                let srv = DirServer::start(&wd.repo_dir())?;
                eprintln!(
                    "kola: upgrade tests boot build {} and pull build {id} from {} (127.0.0.1:{})",
                    facts.id,
                    wd.repo_dir().display(),
                    srv.port
                );
                let facts = UpgradeFacts {
                    from: facts,
                    repo_url: srv.guest_url(),
                };
                let from_booter = QemuBooter {
                    machine,
                    scratch: from_scratch,
                    key: booter.key.clone(),
                    boot_timeout: booter.boot_timeout,
                };
                from = Some((from_booter, facts, srv));
            }
            Err(e) => upgrade_why = format!("{e:#}"),
        }
    }
    let upgrade = match &from {
        Some((b, facts, _)) => UpgradeFrom::Build {
            booter: b,
            facts: facts.clone(),
        },
        None => UpgradeFrom::Unavailable(upgrade_why),
    };
    let h = Harness {
        booter: &booter,
        outdir: kola_dir.clone(),
        guest_root: ext::GUEST_ROOT.to_string(),
        parallel: opts.parallel as usize,
        build: BuildFacts::read(&m, &build_dir)?,
        upgrade,
        secure_boot: booter.machine.secure_boot,
    };
    eprintln!(
        "kola: {} test(s) on {} ({} at once)",
        planned.len(),
        booter.machine.media.describe(),
        h.parallel
    );
    let tests = h.run(&planned);
    if let Some((_, _, srv)) = &from {
        eprintln!(
            "kola: served {} files of {}",
            srv.served(),
            wd.repo_dir().display()
        );
    }
    let report = Report::new(tests, &opts.platform, &m.ostree_version);
    let (json, junit) = report.write(&kola_dir)?;
    let failed: Vec<&str> = report
        .tests
        .iter()
        .filter(|t| t.result == TestResult::Fail)
        .map(|t| t.name.as_str())
        .collect();
    eprintln!(
        "kola: build {id}: {}, report {} (JUnit {})",
        report.result,
        json.display(),
        junit.display()
    );
    if !failed.is_empty() {
        bail!(
            "{} of {} tests failed: {} (logs in {}/<test>/)",
            failed.len(),
            report.tests.len(),
            failed.join(", "),
            kola_dir.display()
        );
    }
    Ok(())
}

/// `cosa kola list`.
pub fn list(global: &GlobalOpts, opts: KolaListOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    let ext = kola::discover(&wd.config_dir())?;
    if opts.json {
        let mut all: Vec<serde_json::Value> = harness::BUILTIN
            .iter()
            .map(|b| {
                serde_json::json!({
                    "name": b.name, "kind": "builtin", "tags": b.tags,
                    "description": b.description,
                })
            })
            .collect();
        for t in &ext {
            let mut v = serde_json::to_value(t).context("serializing a test")?;
            v["kind"] = "external".into();
            all.push(v);
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&all).context("serializing the tests")?
        );
        return Ok(());
    }
    for b in harness::BUILTIN {
        println!("{}	{}	{}", b.name, b.tags.join(" "), b.description);
    }
    for t in &ext {
        println!("{}	{}	{}", t.name, t.tags.join(" "), t.meta.description);
    }
    Ok(())
}

/// `cosa kola run basic`: the console boot check.
fn run_basic(global: &GlobalOpts, opts: KolaRunOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    let scratch = image::scratch_dir(&wd.tmp_dir())?;
    let (id, m, machine, want) = if opts.platform.starts_with("live-") {
        ensure!(
            !(opts.secure_boot && opts.platform == "live-pxe"),
            "--secure-boot boots through shim, which a PXE-style direct kernel boot does not \
             have: boot the live ISO (--platform live-iso) instead"
        );
        let (id, m, machine, want) = live_machine(&wd, &opts, scratch.path())?;
        (id, m, with_secure_boot(machine, opts.secure_boot)?, want)
    } else {
        let (id, m, machine) = machine_for(
            &wd,
            opts.target.build.as_deref(),
            opts.target.arch.as_deref(),
            &opts.platform,
            opts.firmware,
            1024,
            scratch.path(),
        )?;
        let platform_id = image::target(&opts.platform)?.ignition_id();
        let want = vec![format!("ignition.platform.id={platform_id}")];
        (id, m, with_secure_boot(machine, opts.secure_boot)?, want)
    };
    // s390x images boot by direct kernel boot (no zipl): no firmware;
    // ppc64le ones with SLOF, pseries' Open Firmware.
    let fw = match machine.arch.as_str() {
        "s390x" => "direct",
        "ppc64le" => "slof",
        _ if opts.secure_boot => "uefi-secure-boot",
        _ => firmware_name(opts.firmware),
    };
    let log = wd
        .tmp_dir()
        .join("kola")
        .join(format!("basic-{id}-{}-{fw}.log", opts.platform));
    eprintln!(
        "kola basic: booting {} ({fw}, TCG, timeout {}s)",
        machine.media.describe(),
        opts.timeout
    );
    let (console, elapsed) =
        machine.boot_capture(scratch.path(), &log, Duration::from_secs(opts.timeout))?;
    let boot = testvm::BasicBoot {
        build: &id,
        platform: &opts.platform,
        firmware: fw,
        secure_boot: opts.secure_boot,
        console: &console,
        log: &log,
        elapsed,
    };
    println!(
        "{}",
        testvm::basic_verdict(&boot, &m.ostree_commit, &m.ostree_version, &want)?
    );
    Ok(())
}

/// `--platform live-iso|live-pxe`: the ISO as a CD-ROM, or the PXE kernel
/// with the initramfs and the rootfs appended as one initrd (QEMU's
/// `-kernel`/`-initrd`, laid out as a PXE loader passes two initrds); and
/// what the booted kernel command line must hold.
fn live_machine(
    wd: &Workdir,
    opts: &KolaRunOpts,
    scratch: &std::path::Path,
) -> Result<(String, Meta, Machine, Vec<String>)> {
    use crate::image::live;
    let pxe = match opts.platform.as_str() {
        "live-iso" => false,
        "live-pxe" => true,
        other => bail!("unknown live platform {other:?} (live-iso or live-pxe)"),
    };
    let builds = BuildsJson::load(&wd.builds_dir())?;
    let arch = util::target_arch(opts.target.arch.as_deref())?;
    ensure!(
        arch == "x86_64" || arch == "aarch64",
        "booting {arch} live media is not supported yet (x86_64 and aarch64)"
    );
    let id = builds.resolve(opts.target.build.as_deref())?;
    let build_dir = builds::build_dir(&wd.builds_dir(), &id, &arch);
    let m = Meta::read(&meta::meta_path(&wd.builds_dir(), &id, &arch))?;
    let file = |key: &str| -> Result<std::path::PathBuf> {
        let art = m.images.get(key).with_context(|| {
            format!("build {id} has no {key}; make the live media with `cosa buildextend-live`")
        })?;
        let p = build_dir.join(&art.path);
        ensure!(p.exists(), "{} is missing", p.display());
        Ok(p)
    };
    let mut want = vec!["ignition.platform.id=metal".to_string()];
    let media = if pxe {
        let kernel = file("live-kernel")?;
        let initramfs = file("live-initramfs")?;
        let append = live::pxe_kargs(&wd.config_dir(), &arch, &m.name, &kernel, &initramfs)?;
        let initrd = scratch.join("initrd-with-rootfs.img");
        testvm::concat_initrds(&[initramfs, file("live-rootfs")?], &initrd)?;
        testvm::Media::Kernel {
            kernel,
            initrd,
            append: append.join(" "),
        }
    } else {
        want.push(format!(
            "coreos.liveiso={}",
            live::volume_label(&m.name, &id)
        ));
        testvm::Media::Cdrom(file("live-iso")?)
    };
    let machine = Machine {
        arch,
        media,
        firmware: opts.firmware,
        secure_boot: false,
        ssh_port: None,
        ignition: None,
        memory_mib: 1536,
        disks: Vec::new(),
    };
    Ok((id, m, machine, want))
}

pub fn interactive(global: &GlobalOpts, opts: RunOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    let scratch = image::scratch_dir(&wd.tmp_dir())?;
    let (_, _, machine) = machine_for(
        &wd,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
        "qemu",
        opts.firmware,
        opts.memory,
        scratch.path(),
    )?;
    let mut machine = with_secure_boot(machine, opts.secure_boot)?;
    let config = match &opts.ignition {
        Some(p) => {
            let text = ignition::read_config(p)?;
            Some((text, p.display().to_string()))
        }
        None => None,
    };
    let mut hint = None;
    let config = if opts.ssh {
        // The key outlives the machine's scratch, so the printed command
        // keeps working for the whole session.
        let key_dir = wd.tmp_dir().join("kola/ssh");
        let key_file = key_dir.join("id_ed25519");
        let key = if key_file.exists() {
            let public = std::fs::read_to_string(key_file.with_extension("pub"))
                .with_context(|| format!("reading {}.pub", key_file.display()))?;
            SshKey {
                private: key_file,
                public: public.trim().to_string(),
            }
        } else {
            std::fs::create_dir_all(&key_dir)
                .with_context(|| format!("creating {}", key_dir.display()))?;
            SshKey::generate(&key_dir)?
        };
        let port = testvm::free_port()?;
        machine.ssh_port = Some(port);
        hint = Some(Ssh::local(port, ignition::USER, &key.private).login_hint());
        let (text, source) = match &config {
            Some((t, s)) => (Some(t.as_str()), s.as_str()),
            None => (None, "none"),
        };
        Some(ignition::with_ssh_key(text, source, &key.public)?)
    } else {
        config.map(|(t, s)| ignition::parse(&t, &s)).transpose()?
    };
    if let Some(c) = &config {
        let path = scratch.path().join("config.ign");
        ignition::write(c, &path)?;
        machine.ignition = Some(path);
    }
    let mut cmd = machine.command(scratch.path(), true)?;
    eprintln!("Booting {} (Ctrl-a x quits)", machine.media.describe());
    if let Some(h) = hint {
        eprintln!("Log in from another terminal once it is up:");
        println!("{h}");
    }
    let status = cmd
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}
