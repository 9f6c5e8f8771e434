//! The kola harness: runs the chosen tests, each in a machine of its own
//! (upstream's `exclusive` tests; non-exclusive batching is not done),
//! up to `parallel` machines at once, and turns what happened into a
//! [`TestReport`] per test. A failing test keeps its console log, journal
//! and output under `tmp/kola/<test>/`, and its report names them.
//!
//! Tests are of two kinds: built-in ones, plain named functions over a
//! [`Guest`] ([`BUILTIN`]), and the config repo's external tests
//! ([`super::ext`]). Machines come from a [`Booter`], so the harness runs
//! as well against any SSH host as against QEMU.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use super::builtin::{BuildFacts, TestFacts, UpgradeFacts};
use super::ext;
use super::guest::{Guest, QemuGuest};
use super::ignition;
use super::report::{TestReport, TestResult};
use super::ssh::SshKey;
use super::{Machine, MachineOptions};
use crate::config::kola::{Choice, DenyEntry, Denylist, ExtTest, Selection, TestMeta, choose};

/// A built-in test: a named function over a booted machine.
pub struct BuiltinTest {
    pub name: &'static str,
    pub description: &'static str,
    pub tags: &'static [&'static str],
    /// The Ignition config it boots with (None: only the harness's key).
    pub config: Option<fn() -> Value>,
    /// It boots the build before the one under test and upgrades to it
    /// ([`Harness::upgrade`]).
    pub upgrade: bool,
    /// The test: its output for the report, or why it failed.
    pub run: fn(&mut dyn Guest, &TestFacts) -> Result<String>,
}

/// The built-in tests that run over SSH (a tree without sshd, such as the
/// busybox OS, gets `cosa kola run basic` as a console boot check).
pub const BUILTIN: &[BuiltinTest] = &[
    BuiltinTest {
        name: "basic",
        description: "SSH in; systemd running or degraded; the build's commit booted with its \
                      packages; provisioned once; /sysroot and /usr read-only; SELinux labels on \
                      disk (a tree without sshd, and live media: the console boot check)",
        tags: &[],
        config: None,
        upgrade: false,
        run: super::builtin::basic,
    },
    BuiltinTest {
        name: "ostree.upgrade",
        description: "boot the build before this one, pull this build's commit over HTTP from the \
                      host, `ostree admin deploy` it, reboot: this build booted, the earlier one \
                      the rollback (skipped when there is no earlier build with the image)",
        tags: &["upgrade"],
        config: None,
        upgrade: true,
        run: super::builtin::ostree_upgrade,
    },
];

/// Where upgrade tests start from.
pub enum UpgradeFrom<'a> {
    /// The earlier build: machines of its image, and where they pull the
    /// build under test from.
    Build {
        booter: &'a dyn Booter,
        facts: UpgradeFacts,
    },
    /// There is none, for this reason: upgrade tests are skipped.
    Unavailable(String),
}

/// What a planned test runs.
pub enum TestKind {
    Builtin(&'static BuiltinTest),
    External(ExtTest),
}

/// One test the run will report on.
pub struct Planned {
    pub name: String,
    pub kind: TestKind,
    /// The denylist entry that skips it.
    pub denied: Option<DenyEntry>,
    /// The denylist entry under which a failure only warns.
    pub warn_only: Option<DenyEntry>,
}

/// Starts a machine for a test.
pub trait Booter: Sync {
    /// Boot a machine with `config` (the test's Ignition config, or
    /// None) and what the test's metadata asks of the machine
    /// (`options`: memory, extra disks), keeping its logs in `outdir`;
    /// return once SSH answers.
    fn boot(
        &self,
        test: &str,
        config: Option<&Value>,
        options: &MachineOptions,
        outdir: &Path,
    ) -> Result<Box<dyn Guest + '_>>;
}

/// QEMU machines from one image.
pub struct QemuBooter {
    pub machine: Machine,
    /// Per-machine scratch directories go in here.
    pub scratch: PathBuf,
    pub key: SshKey,
    pub boot_timeout: Duration,
}

impl Booter for QemuBooter {
    fn boot(
        &self,
        test: &str,
        config: Option<&Value>,
        options: &MachineOptions,
        outdir: &Path,
    ) -> Result<Box<dyn Guest + '_>> {
        let scratch = self.scratch.join(test);
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let g = QemuGuest::boot(
            &self.machine,
            options,
            &scratch,
            outdir,
            config,
            &self.key,
            self.boot_timeout,
        )?;
        Ok(Box::new(g))
    }
}

/// How the tests run.
pub struct Harness<'a> {
    pub booter: &'a dyn Booter,
    /// `tmp/kola`: a directory per test.
    pub outdir: PathBuf,
    /// Where external tests are installed in the machine.
    pub guest_root: String,
    /// Machines at once.
    pub parallel: usize,
    /// The build the built-in tests compare the machine with.
    pub build: BuildFacts,
    /// Where upgrade tests start from.
    pub upgrade: UpgradeFrom<'a>,
    /// The machines boot with Secure Boot enforced.
    pub secure_boot: bool,
}

impl Harness<'_> {
    /// Run `tests`, `parallel` at a time; their reports in the same order.
    pub fn run(&self, tests: &[Planned]) -> Vec<TestReport> {
        let next = Mutex::new(0usize);
        let results: Mutex<Vec<Option<TestReport>>> = Mutex::new(vec![None; tests.len()]);
        std::thread::scope(|s| {
            for _ in 0..self.parallel.max(1).min(tests.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let i = {
                            let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                            let i = *n;
                            *n += 1;
                            i
                        };
                        let Some(t) = tests.get(i) else { break };
                        let r = self.run_one(t);
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                    }
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .flatten()
            .collect()
    }

    /// Run one test and report it (messages as upstream prints them:
    /// `=== RUN`, `--- PASS: name (1.2s)`).
    pub fn run_one(&self, t: &Planned) -> TestReport {
        if let Some(d) = &t.denied {
            let why = format!(
                "denylisted by pattern {:?}{}",
                d.pattern,
                if d.tracker.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", d.tracker)
                }
            );
            eprintln!("--- SKIP: {} ({why})", t.name);
            return TestReport::new(&t.name, TestResult::Skip, Duration::ZERO, why);
        }
        if let (TestKind::Builtin(b), UpgradeFrom::Unavailable(why)) = (&t.kind, &self.upgrade)
            && b.upgrade
        {
            eprintln!("--- SKIP: {} ({why})", t.name);
            return TestReport::new(&t.name, TestResult::Skip, Duration::ZERO, why.clone());
        }
        eprintln!("=== RUN   {}", t.name);
        let started = Instant::now();
        let dir = self.outdir.join(&t.name);
        let (mut result, output) = match self.attempt(t, &dir) {
            Ok(out) => (TestResult::Pass, out),
            Err(e) => (TestResult::Fail, format!("{e:#}\n")),
        };
        if result == TestResult::Fail && t.warn_only.is_some() {
            result = TestResult::Warn;
        }
        let elapsed = started.elapsed();
        let out_file = dir.join("output.txt");
        let _ = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&out_file, &output));
        eprintln!(
            "--- {result}: {} ({:.1}s){}",
            t.name,
            elapsed.as_secs_f64(),
            if result == TestResult::Pass {
                String::new()
            } else {
                format!("\n    {}", tail_lines(&output, 20).replace('\n', "\n    "))
            }
        );
        TestReport::new(&t.name, result, elapsed, output)
    }

    /// Boot, run, and on failure collect the journal: the test's output,
    /// or an error holding it and naming the logs kept.
    fn attempt(&self, t: &Planned, dir: &Path) -> Result<String> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let config = match &t.kind {
            TestKind::External(x) => match &x.config {
                Some(c) => {
                    let text = ignition::read_config(c.path())?;
                    Some(ignition::parse(&text, &c.path().display().to_string())?)
                }
                None => None,
            },
            TestKind::Builtin(b) => b.config.map(|f| f()),
        };
        let options = match &t.kind {
            TestKind::External(x) => {
                MachineOptions::from_meta(&x.meta, &x.exe.display().to_string())?
            }
            TestKind::Builtin(_) => MachineOptions::default(),
        };
        let (booter, upgrade) = match (&t.kind, &self.upgrade) {
            (TestKind::Builtin(b), UpgradeFrom::Build { booter, facts }) if b.upgrade => {
                (*booter, Some(facts))
            }
            _ => (self.booter, None),
        };
        let mut guest = booter
            .boot(&t.name, config.as_ref(), &options, dir)
            .with_context(|| match upgrade {
                Some(u) => format!("booting the machine of build {}", u.from.id),
                None => "booting the machine".to_string(),
            })?;
        let scratch = tempfile::tempdir_in(dir).context("making a scratch directory")?;
        let (output, failure) = match &t.kind {
            TestKind::External(x) => {
                match ext::run(guest.as_mut(), x, &self.guest_root, scratch.path()) {
                    Ok(o) => (o.output, o.failure),
                    Err(e) => (String::new(), Some(format!("{e:#}"))),
                }
            }
            TestKind::Builtin(b) => match (b.run)(
                guest.as_mut(),
                &TestFacts {
                    build: &self.build,
                    upgrade,
                    secure_boot: self.secure_boot,
                },
            ) {
                Ok(out) => (out, None),
                Err(e) => (String::new(), Some(format!("{e:#}"))),
            },
        };
        let Some(failure) = failure else {
            return Ok(output);
        };
        let journal = dir.join("journal.txt");
        let journal_note = match guest.journal() {
            Ok(j) => std::fs::write(&journal, j)
                .map(|_| format!("journal: {}", journal.display()))
                .unwrap_or_else(|e| format!("journal not written: {e}")),
            Err(e) => format!("journal not collected: {e:#}"),
        };
        let console_note = guest
            .console_log()
            .map(|c| format!("console log: {}\n", c.display()))
            .unwrap_or_default();
        anyhow::bail!(
            "{failure}\n{output}{}{console_note}{journal_note}\noutput: {}",
            if output.is_empty() || output.ends_with('\n') {
                ""
            } else {
                "\n"
            },
            dir.join("output.txt").display()
        )
    }
}

fn tail_lines(s: &str, n: usize) -> String {
    super::tail(s.trim_end(), n)
}

/// What planning left out: a test and why.
pub type Excluded = (String, String);

/// The tests to run from the built-in ones and `ext`, as `sel` and
/// `deny` choose: planned ones (denylisted ones included, to be reported
/// as SKIP), and those left out for their architecture, platform or
/// required tag.
pub fn plan(
    ext: Vec<ExtTest>,
    sel: &Selection,
    deny: &Denylist,
) -> Result<(Vec<Planned>, Vec<Excluded>)> {
    let mut planned = Vec::new();
    let mut excluded = Vec::new();
    let mut consider = |name: String, tags: Vec<String>, meta: &TestMeta, kind: TestKind| {
        match choose(&name, &tags, meta, sel)? {
            Choice::Run => planned.push(Planned {
                denied: deny.denied(&name).cloned(),
                warn_only: deny.warns(&name).cloned(),
                name,
                kind,
            }),
            Choice::Excluded(why) => excluded.push((name, why)),
            Choice::NotSelected => {}
        }
        anyhow::Ok(())
    };
    let plain = TestMeta::default();
    for b in BUILTIN {
        let tags = b.tags.iter().map(|t| t.to_string()).collect();
        consider(b.name.to_string(), tags, &plain, TestKind::Builtin(b))?;
    }
    for x in ext {
        let (name, tags, meta) = (x.name.clone(), x.tags.clone(), x.meta.clone());
        consider(name, tags, &meta, TestKind::External(x))?;
    }
    Ok((planned, excluded))
}
