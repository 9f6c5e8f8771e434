//! Test results as upstream kola writes them, `reports/report.json`
//! (mantle `harness/reporters/json.go`): `{"tests": [{"name", "subtests",
//! "result", "duration", "output"}], "result", "platform", "version"}`,
//! with results `PASS`/`FAIL`/`SKIP` (and `WARN`, a failure the denylist
//! only warns about) and durations in nanoseconds (Go's `time.Duration`);
//! plus JUnit XML (`reports/junit.xml`) for CI engines' test views.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// A test's or the run's result (upstream's `testresult.TestResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestResult {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
    #[serde(rename = "SKIP")]
    Skip,
    /// Failed, but the denylist says to only warn.
    #[serde(rename = "WARN")]
    Warn,
}

impl std::fmt::Display for TestResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TestResult::Pass => "PASS",
            TestResult::Fail => "FAIL",
            TestResult::Skip => "SKIP",
            TestResult::Warn => "WARN",
        })
    }
}

/// One test in the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    pub name: String,
    /// Upstream's subtests (null when there are none).
    pub subtests: Option<Vec<String>>,
    pub result: TestResult,
    /// Nanoseconds.
    pub duration: u64,
    pub output: String,
}

impl TestReport {
    pub fn new(name: &str, result: TestResult, duration: Duration, output: String) -> TestReport {
        TestReport {
            name: name.to_string(),
            subtests: None,
            result,
            duration: duration.as_nanos().min(u64::MAX as u128) as u64,
            output,
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration)
    }
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tests: Vec<TestReport>,
    pub result: TestResult,
    pub platform: String,
    /// The build's version.
    pub version: String,
}

impl Report {
    /// The run's result: FAIL when any test failed, else PASS.
    pub fn new(tests: Vec<TestReport>, platform: &str, version: &str) -> Report {
        let result = if tests.iter().any(|t| t.result == TestResult::Fail) {
            TestResult::Fail
        } else {
            TestResult::Pass
        };
        Report {
            tests,
            result,
            platform: platform.to_string(),
            version: version.to_string(),
        }
    }

    /// Write `reports/report.json` and `reports/junit.xml` under `dir`
    /// (each to a temp file first, then renamed); their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        let reports = dir.join("reports");
        std::fs::create_dir_all(&reports)
            .with_context(|| format!("creating {}", reports.display()))?;
        let json = reports.join("report.json");
        let mut text = serde_json::to_vec(self).context("serializing the report")?;
        text.push(b'\n');
        write_atomic(&json, &text)?;
        let junit = reports.join("junit.xml");
        write_atomic(&junit, &self.junit()?)?;
        Ok((json, junit))
    }

    /// Read a report.json back.
    pub fn read(path: &Path) -> Result<Report> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The report as JUnit XML: one `<testsuite name="kola">`, a
    /// `<testcase>` per test with `<failure>` (FAIL), `<skipped>` (SKIP)
    /// and the output in `<system-out>`; time in seconds.
    pub fn junit(&self) -> Result<Vec<u8>> {
        use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
        let count = |r| {
            self.tests
                .iter()
                .filter(|t| t.result == r)
                .count()
                .to_string()
        };
        let total: f64 = self.tests.iter().map(|t| t.duration().as_secs_f64()).sum();
        let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
        let mut put = |e: Event| w.write_event(e).context("writing JUnit XML");
        put(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let mut suites = BytesStart::new("testsuites");
        suites.push_attribute(("name", "cosa kola"));
        put(Event::Start(suites))?;
        let mut suite = BytesStart::new("testsuite");
        let tests = self.tests.len().to_string();
        let (failures, skipped) = (count(TestResult::Fail), count(TestResult::Skip));
        let time = format!("{total:.3}");
        suite.push_attribute(("name", "kola"));
        suite.push_attribute(("tests", tests.as_str()));
        suite.push_attribute(("failures", failures.as_str()));
        suite.push_attribute(("errors", "0"));
        suite.push_attribute(("skipped", skipped.as_str()));
        suite.push_attribute(("time", time.as_str()));
        put(Event::Start(suite))?;
        for t in &self.tests {
            let mut case = BytesStart::new("testcase");
            let time = format!("{:.3}", t.duration().as_secs_f64());
            case.push_attribute(("name", t.name.as_str()));
            case.push_attribute(("classname", format!("kola.{}", self.platform).as_str()));
            case.push_attribute(("time", time.as_str()));
            put(Event::Start(case))?;
            let first_line = t
                .output
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            match t.result {
                TestResult::Fail => {
                    let mut f = BytesStart::new("failure");
                    f.push_attribute(("message", first_line));
                    put(Event::Start(f))?;
                    put(Event::Text(BytesText::new(&t.output)))?;
                    put(Event::End(BytesEnd::new("failure")))?;
                }
                TestResult::Skip => {
                    let mut s = BytesStart::new("skipped");
                    s.push_attribute(("message", first_line));
                    put(Event::Empty(s))?;
                }
                TestResult::Pass | TestResult::Warn => {}
            }
            if t.result != TestResult::Fail && !t.output.is_empty() {
                put(Event::Start(BytesStart::new("system-out")))?;
                put(Event::Text(BytesText::new(&t.output)))?;
                put(Event::End(BytesEnd::new("system-out")))?;
            }
            put(Event::End(BytesEnd::new("testcase")))?;
        }
        put(Event::End(BytesEnd::new("testsuite")))?;
        put(Event::End(BytesEnd::new("testsuites")))?;
        let mut out = w.into_inner();
        out.push(b'\n');
        Ok(out)
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("making a temp file in {}", dir.display()))?;
    tmp.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}
