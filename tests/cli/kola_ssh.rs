//! The SSH side of kola against a real OpenSSH server on 127.0.0.1 (our
//! own `sshd -D` with a temp host key and config, logging in as root):
//! commands with their exit status and stderr, the wait for SSH with its
//! deadline, copying in, the external-test runner (environment, data/,
//! failures, the autopkgtest reboot marks) and the harness with its
//! reports and kept logs. The local host stands in for a machine; its
//! "reboot" only counts (a real reboot needs the Fedora CoreOS-like OS).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use cosa::config::kola::{self, DenyScope, Denylist, Selection};
use cosa::testvm::MachineOptions;
use cosa::testvm::ext;
use cosa::testvm::guest::Guest;
use cosa::testvm::harness::{self, Booter, Harness, UpgradeFrom};
use cosa::testvm::report::{Report, TestResult};
use cosa::testvm::ssh::{Ssh, SshKey};
use serde_json::Value;

const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd that lets `key` in as root.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd(dir: &Path, key: &SshKey) -> Sshd {
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} is missing: install Debian's openssh-server (scripts/install-deps.sh)"
    );
    let host_key = dir.join("host_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .status()
        .unwrap();
    assert!(st.success());
    let auth = dir.join("authorized_keys");
    std::fs::write(&auth, format!("{}\n", key.public)).unwrap();
    // sshd refuses to start without its privilege separation directory.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = cosa::testvm::free_port().unwrap();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "ListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPermitRootLogin \
             prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nStrictModes no\nPidFile none\nLogLevel VERBOSE\n",
            host_key.display(),
            auth.display()
        ),
    )
    .unwrap();
    let log = dir.join("sshd.log");
    let child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .arg("-p")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Sshd { child, port, log }
}

/// A key, an sshd and a root login to it, ready.
fn setup(dir: &Path) -> (SshKey, Sshd, Ssh) {
    let key = SshKey::generate(dir).unwrap();
    let mut d = sshd(dir, &key);
    let ssh = Ssh::local(d.port, "root", &key.private);
    let log = d.log.clone();
    let child = &mut d.child;
    ssh.wait_ready(
        Duration::from_secs(20),
        &log,
        &mut || match child.try_wait()? {
            Some(st) => anyhow::bail!("sshd exited ({st})"),
            None => Ok(()),
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    (key, d, ssh)
}

#[test]
fn kola_ssh_runs_commands_with_status_stderr_and_copies_in() {
    let t = tempfile::tempdir().unwrap();
    let (key, _d, ssh) = setup(t.path());
    assert!(key.public.starts_with("ssh-ed25519 ") && key.public.ends_with("cosa-kola"));

    let out = ssh.output("echo out; echo err >&2; exit 7").unwrap();
    assert_eq!(out.code, Some(7));
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_text(), "err\n");
    assert_eq!(ssh.run("id -u").unwrap().trim(), "0");
    let e = ssh.run("echo the reason >&2; false").unwrap_err();
    let m = format!("{e:#}");
    assert!(
        m.contains("exit status 1") && m.contains("the reason") && m.contains("127.0.0.1"),
        "{m}"
    );
    // A command killed by the timeout says 124.
    let out = ssh
        .output_with("sleep 30", None, Some(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(out.code, Some(124));

    // Copying in: a file to a new directory, a directory with modes.
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "alpha").unwrap();
    std::fs::write(src.join("sub/b.sh"), "#!/bin/sh\necho b\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(src.join("sub/b.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dest = t.path().join("guest");
    let scratch = t.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let file_dest = format!("{}/one/two/renamed.txt", dest.display());
    ssh.copy_in(&src.join("a.txt"), &file_dest, &scratch)
        .unwrap();
    assert_eq!(ssh.run(&format!("cat {file_dest}")).unwrap(), "alpha");
    let dir_dest = format!("{}/tree", dest.display());
    ssh.copy_in(&src, &dir_dest, &scratch).unwrap();
    assert_eq!(ssh.run(&format!("{dir_dest}/sub/b.sh")).unwrap(), "b\n");
    assert_eq!(
        ssh.run(&format!("cat '{dir_dest}/a.txt'")).unwrap(),
        "alpha"
    );
    let e = ssh
        .copy_in(&src.join("a.txt"), "/proc/nope/x", &scratch)
        .unwrap_err();
    assert!(format!("{e:#}").contains("copying"), "{e:#}");

    let hint = ssh.login_hint();
    assert!(
        hint.starts_with("ssh -i ") && hint.ends_with(&format!("-p {} root@127.0.0.1", ssh.port)),
        "{hint}"
    );
}

#[test]
fn kola_ssh_wait_times_out_naming_the_console_log() {
    let t = tempfile::tempdir().unwrap();
    let key = SshKey::generate(t.path()).unwrap();
    // A port nobody listens on.
    let port = cosa::testvm::free_port().unwrap();
    let mut ssh = Ssh::local(port, "core", &key.private);
    ssh.connect_timeout = Duration::from_secs(1);
    let console = t.path().join("console.txt");
    let started = Instant::now();
    let e = ssh
        .wait_ready(Duration::from_secs(3), &console, &mut || Ok(()))
        .unwrap_err();
    let m = format!("{e:#}");
    assert!(
        m.contains("did not answer within 3s") && m.contains(&console.display().to_string()),
        "{m}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // A machine that stops ends the wait at once, with its reason.
    let e = ssh
        .wait_ready(Duration::from_secs(60), &console, &mut || {
            anyhow::bail!("QEMU exited (status 1)")
        })
        .unwrap_err();
    let m = format!("{e:#}");
    assert!(
        m.contains("stopped before SSH answered") && m.contains("QEMU exited"),
        "{m}"
    );
}

/// This host over SSH as a stand-in machine: rebooting only counts.
struct LocalGuest {
    ssh: Ssh,
    reboots: usize,
}

impl Guest for LocalGuest {
    fn ssh(&self) -> &Ssh {
        &self.ssh
    }
    fn reboot(&mut self) -> Result<()> {
        self.reboots += 1;
        Ok(())
    }
}

fn ext_test(name: &str) -> kola::ExtTest {
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kola-ext");
    kola::discover(&tree)
        .unwrap()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap()
}

#[test]
fn kola_ext_runner_on_a_local_sshd() {
    let t = tempfile::tempdir().unwrap();
    let (_key, _d, ssh) = setup(t.path());
    let root = t.path().join("guest-root");
    let root = root.to_str().unwrap();
    let scratch = t.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut g = LocalGuest { ssh, reboots: 0 };

    let o = ext::run(&mut g, &ext_test("ext.config.basic"), root, &scratch).unwrap();
    assert_eq!(o.failure, None, "{}", o.output);
    assert!(
        o.output.contains("KOLA_TEST=ext.config.basic\n"),
        "{}",
        o.output
    );
    assert!(
        o.output.contains("KOLA_TEST_EXE=test.sh\n") && o.output.contains("mark=none"),
        "{}",
        o.output
    );

    let o = ext::run(
        &mut g,
        &ext_test("ext.config.files.check-data"),
        root,
        &scratch,
    )
    .unwrap();
    assert_eq!(o.failure, None, "{}", o.output);
    assert_eq!(o.output, "hello from data\nnested data\ntool ran\n");
    assert!(
        Path::new(root)
            .join("ext.config.files.check-data/data/sub/nested.txt")
            .exists()
    );

    let o = ext::run(&mut g, &ext_test("ext.config.plain.fails"), root, &scratch).unwrap();
    assert_eq!(
        o.failure.as_deref(),
        Some("the test failed (exit status 3)")
    );
    assert!(
        o.output.contains("about to fail\n") && o.output.contains("the reason it failed"),
        "{}",
        o.output
    );

    // The autopkgtest reboot API: a kill at mark1, a prepared mark2.
    let o = ext::run(&mut g, &ext_test("ext.config.reboot"), root, &scratch).unwrap();
    assert_eq!(o.failure, None, "{}", o.output);
    assert_eq!(o.reboots, ["mark1", "mark2"]);
    assert_eq!(g.reboots, 2);
    let lines: Vec<&str> = o
        .output
        .lines()
        .filter(|l| !l.contains("Terminated"))
        .collect();
    assert_eq!(
        lines,
        [
            "test beginning",
            "--- kola: rebooting for mark \"mark1\" ---",
            "test in mark1",
            "after the reboot call (only without a kill)",
            "--- kola: rebooting for mark \"mark2\" ---",
            "test in mark2",
            "after the reboot call (only without a kill)",
        ],
        "{}",
        o.output
    );

    // timeoutMin ends a test that runs too long.
    let slow = t.path().join("slow/tests/kola/slow");
    std::fs::create_dir_all(&slow).unwrap();
    std::fs::write(
        slow.join("test.sh"),
        "#!/bin/sh\n# kola: {\"timeoutMin\": 0}\nsleep 30\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(slow.join("test.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let test = kola::discover(&t.path().join("slow")).unwrap().remove(0);
    let started = Instant::now();
    let o = ext::run(&mut g, &test, root, &scratch).unwrap();
    assert!(o.failure.unwrap().contains("timed out"));
    assert!(started.elapsed() < Duration::from_secs(25));
}

/// Boots nothing: every test gets the local sshd, and the config and
/// machine options it would have booted with are recorded.
struct LocalBooter {
    ssh: Ssh,
    configs: Mutex<Vec<(String, Option<Value>)>>,
    options: Mutex<Vec<(String, MachineOptions)>>,
    at_once: AtomicUsize,
    most_at_once: AtomicUsize,
}

struct CountedGuest<'a> {
    inner: LocalGuest,
    booter: &'a LocalBooter,
}

impl Guest for CountedGuest<'_> {
    fn ssh(&self) -> &Ssh {
        &self.inner.ssh
    }
    fn reboot(&mut self) -> Result<()> {
        self.inner.reboot()
    }
    fn console_log(&self) -> Option<PathBuf> {
        Some(PathBuf::from("/nonexistent/console.txt"))
    }
}

impl Drop for CountedGuest<'_> {
    fn drop(&mut self) {
        self.booter.at_once.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Booter for LocalBooter {
    fn boot(
        &self,
        test: &str,
        config: Option<&Value>,
        options: &MachineOptions,
        outdir: &Path,
    ) -> Result<Box<dyn Guest + '_>> {
        assert!(outdir.is_dir());
        self.configs
            .lock()
            .unwrap()
            .push((test.to_string(), config.cloned()));
        self.options
            .lock()
            .unwrap()
            .push((test.to_string(), options.clone()));
        let n = self.at_once.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(n, Ordering::SeqCst);
        // Give the other worker time to start its test too.
        std::thread::sleep(Duration::from_millis(300));
        Ok(Box::new(CountedGuest {
            inner: LocalGuest {
                ssh: self.ssh.clone(),
                reboots: 0,
            },
            booter: self,
        }))
    }
}

#[test]
fn kola_harness_reports_and_keeps_failure_logs() {
    let t = tempfile::tempdir().unwrap();
    let (_key, _d, ssh) = setup(t.path());
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kola-ext");
    // The external tests: the built-in ones need a real OS.
    let sel = Selection {
        patterns: vec!["ext.*".into()],
        tags: vec![],
        arch: "x86_64".into(),
        platform: "qemu".into(),
    };
    let deny = Denylist::load(
        &tree.join("kola-denylist.yaml"),
        &DenyScope {
            arch: "x86_64".into(),
            platform: "qemu".into(),
            stream: None,
            osversion: None,
            today: "2026-05-01".into(),
        },
    )
    .unwrap();
    let (planned, excluded) = harness::plan(kola::discover(&tree).unwrap(), &sel, &deny).unwrap();
    assert_eq!(
        excluded,
        [(
            "ext.config.special".to_string(),
            "needs --tag special".to_string()
        )]
    );
    let booter = LocalBooter {
        ssh,
        configs: Mutex::new(Vec::new()),
        options: Mutex::new(Vec::new()),
        at_once: AtomicUsize::new(0),
        most_at_once: AtomicUsize::new(0),
    };
    let outdir = t.path().join("tmp/kola");
    let h = Harness {
        booter: &booter,
        outdir: outdir.clone(),
        guest_root: t.path().join("guest-root").display().to_string(),
        parallel: 2,
        build: Default::default(),
        upgrade: UpgradeFrom::Unavailable("no build before 1.0 for x86_64 to upgrade from".into()),
        secure_boot: false,
    };
    // An upgrade test without an earlier build is skipped, with the reason.
    let up_sel = Selection {
        patterns: vec!["ostree.*".into()],
        ..sel.clone()
    };
    let (up, _) = harness::plan(vec![], &up_sel, &deny).unwrap();
    assert_eq!(up.len(), 1);
    let r = h.run(&up);
    assert_eq!(r[0].result, TestResult::Skip);
    assert!(
        r[0].output.contains("no build before 1.0"),
        "{}",
        r[0].output
    );
    assert!(
        booter.configs.lock().unwrap().is_empty(),
        "no machine booted"
    );
    let reports = h.run(&planned);
    let result = |n: &str| reports.iter().find(|r| r.name == n).unwrap();
    assert_eq!(reports.len(), 7);
    for n in [
        "ext.config.basic",
        "ext.config.files.check-data",
        "ext.config.files.check-inline",
        "ext.config.reboot",
    ] {
        assert_eq!(
            result(n).result,
            TestResult::Pass,
            "{n}: {}",
            result(n).output
        );
    }
    for n in [
        "ext.config.nested.deeper.other",
        "ext.config.nested.deeper.test.sh",
    ] {
        assert_eq!(result(n).result, TestResult::Skip);
        assert!(result(n).output.contains("issues/1"));
    }
    // warn: true in the denylist: the failure only warns.
    let fails = result("ext.config.plain.fails");
    assert_eq!(fails.result, TestResult::Warn, "{}", fails.output);
    assert!(
        fails.output.contains("exit status 3") && fails.output.contains("the reason it failed"),
        "{}",
        fails.output
    );
    assert!(
        fails
            .output
            .contains("console log: /nonexistent/console.txt"),
        "{}",
        fails.output
    );
    let dir = outdir.join("ext.config.plain.fails");
    assert!(dir.join("output.txt").exists());
    // The journal is kept, or the report says why not (no journald here).
    assert!(
        dir.join("journal.txt").exists() || fails.output.contains("journal not collected"),
        "{}",
        fails.output
    );
    assert_eq!(
        booter.most_at_once.load(Ordering::SeqCst),
        2,
        "--parallel 2"
    );
    // The machine for ext.config.basic boots with its config.ign.
    {
        let configs = booter.configs.lock().unwrap();
        let basic = &configs
            .iter()
            .find(|(n, _)| n == "ext.config.basic")
            .unwrap()
            .1;
        assert_eq!(basic.as_ref().unwrap()["ignition"]["version"], "3.2.0");
    }

    // A real failure makes the run FAIL; report.json says so.
    let fail_only: Vec<_> = harness::plan(
        kola::discover(&tree).unwrap(),
        &Selection {
            patterns: vec!["ext.config.plain.fails".into()],
            ..sel.clone()
        },
        &Denylist::default(),
    )
    .unwrap()
    .0;
    let reports = h.run(&fail_only);
    assert_eq!(reports[0].result, TestResult::Fail);
    let report = Report::new(reports, "qemu", "1");
    let (json, _) = report.write(&outdir).unwrap();
    let back = Report::read(&json).unwrap();
    assert_eq!(back.result, TestResult::Fail);
    assert!(back.tests[0].output.contains(&format!(
        "output: {}",
        outdir.join("ext.config.plain.fails/output.txt").display()
    )));
}

/// A test's `minMemory` and `additionalDisks` reach the booter as
/// [`MachineOptions`]; a disk option cosa does not support fails that
/// test, naming its file and the option, without booting a machine.
#[test]
fn kola_harness_hands_a_tests_machine_options_to_the_booter() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let (_key, _d, ssh) = setup(t.path());
    let config = t.path().join("config");
    let write = |dir: &str, text: &str| {
        let d = config.join("tests/kola").join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("test.sh"), text).unwrap();
        std::fs::set_permissions(d.join("test.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        d.join("test.sh")
    };
    write(
        "disks",
        "#!/bin/sh\n## kola:\n##   minMemory: 4096\n##   additionalDisks: [\"5G\", \
         \"1G:4k,serial=scratch\"]\necho ok\n",
    );
    write("plain", "#!/bin/sh\necho ok\n");
    let mpath = write(
        "mpath",
        "#!/bin/sh\n## kola:\n##   additionalDisks: [\"5G:mpath\"]\necho ok\n",
    );
    let sel = Selection {
        patterns: vec!["ext.*".into()],
        tags: vec![],
        arch: "x86_64".into(),
        platform: "qemu".into(),
    };
    let (planned, _) =
        harness::plan(kola::discover(&config).unwrap(), &sel, &Denylist::default()).unwrap();
    let booter = LocalBooter {
        ssh,
        configs: Mutex::new(Vec::new()),
        options: Mutex::new(Vec::new()),
        at_once: AtomicUsize::new(0),
        most_at_once: AtomicUsize::new(0),
    };
    let h = Harness {
        booter: &booter,
        outdir: t.path().join("tmp/kola"),
        guest_root: t.path().join("guest-root").display().to_string(),
        parallel: 1,
        build: Default::default(),
        upgrade: UpgradeFrom::Unavailable("none".into()),
        secure_boot: false,
    };
    let reports = h.run(&planned);
    let report = |n: &str| reports.iter().find(|r| r.name == n).unwrap();
    assert_eq!(report("ext.config.disks").result, TestResult::Pass);
    assert_eq!(report("ext.config.plain").result, TestResult::Pass);
    let options = booter.options.lock().unwrap().clone();
    let got = |n: &str| options.iter().find(|(t, _)| t == n).map(|(_, o)| o.clone());
    let disks = got("ext.config.disks").unwrap();
    assert_eq!(disks.min_memory_mib, Some(4096));
    assert_eq!(disks.memory_mib(1024), 4096);
    assert_eq!(
        disks
            .disks
            .iter()
            .map(|d| (d.size, d.sectors))
            .collect::<Vec<_>>(),
        [(5 << 30, None), (1 << 30, Some((4096, 4096)))]
    );
    assert_eq!(disks.serials(), ["disk1", "scratch"]);
    assert_eq!(got("ext.config.plain").unwrap(), MachineOptions::default());
    // The unsupported option: FAIL, no machine, the file and option named.
    let m = report("ext.config.mpath");
    assert_eq!(m.result, TestResult::Fail);
    assert!(
        m.output.contains(&mpath.display().to_string())
            && m.output.contains("\"5G:mpath\"")
            && m.output
                .contains("mpath (a multipath disk) is not supported"),
        "{}",
        m.output
    );
    assert!(got("ext.config.mpath").is_none(), "{options:?}");
}

/// A real QEMU in the background: a machine with nothing to boot keeps
/// running (SeaBIOS waits), forwards its SSH port on 127.0.0.1, does not
/// power off, and stops when told; one that cannot start says why.
#[test]
fn kola_machine_runs_in_the_background_and_stops() {
    use cosa::testvm::{Machine, Media};
    let t = tempfile::tempdir().unwrap();
    let iso = t.path().join("blank.iso");
    std::fs::write(&iso, vec![0u8; 1 << 20]).unwrap();
    let ign = t.path().join("config.ign");
    std::fs::write(&ign, r#"{"ignition":{"version":"3.0.0"}}"#).unwrap();
    let port = cosa::testvm::free_port().unwrap();
    let m = Machine {
        arch: "x86_64".into(),
        media: Media::Cdrom(iso),
        firmware: cosa::cli::Firmware::Bios,
        secure_boot: false,
        memory_mib: 256,
        ssh_port: Some(port),
        ignition: Some(ign),
        disks: Vec::new(),
    };
    let console = t.path().join("m/console.txt");
    let mut inst = m.spawn(t.path(), &console).unwrap();
    // The forward listens once QEMU is up.
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        inst.check_running().unwrap();
        assert!(
            Instant::now() < until,
            "nothing listens on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let e = inst.wait_poweroff(Duration::from_secs(1)).unwrap_err();
    assert!(
        format!("{e:#}").contains("did not power off") && format!("{e:#}").contains("console.txt"),
        "{e:#}"
    );
    inst.check_running().unwrap();
    inst.stop().unwrap();
    assert!(console.exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // A kernel that is not there: QEMU exits, and the error says why.
    let bad = Machine {
        media: Media::Kernel {
            kernel: t.path().join("no-kernel"),
            initrd: t.path().join("no-initrd"),
            append: String::new(),
        },
        ..m
    };
    let mut inst = bad
        .spawn(t.path(), &t.path().join("bad/console.txt"))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    let e = loop {
        if let Err(e) = inst.check_running() {
            break e;
        }
        assert!(Instant::now() < until, "QEMU kept running without a kernel");
        std::thread::sleep(Duration::from_millis(100));
    };
    let msg = format!("{e:#}");
    assert!(
        msg.contains("QEMU exited") && msg.contains("no-kernel"),
        "{msg}"
    );
}
