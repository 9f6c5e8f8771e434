//! kola external tests in upstream's format: discovery of the hand-written
//! tree `tests/data/kola-ext/`, names, metadata, selection by pattern and
//! tag, the denylist, errors on bad metadata, report.json and JUnit read
//! back (JUnit with quick-xml), and `cosa kola list`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cosa::config::kola::{
    self, Choice, DenyEntry, DenyScope, Denylist, Selection, TestMeta, choose,
};
use cosa::testvm::report::{Report, TestReport, TestResult};

use crate::common::{cosa, run};

fn tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kola-ext")
}

fn names(tests: &[kola::ExtTest]) -> Vec<&str> {
    tests.iter().map(|t| t.name.as_str()).collect()
}

#[test]
fn kola_discovery_names_and_metadata_follow_upstream() {
    let tests = kola::discover(&tree()).unwrap();
    assert_eq!(
        names(&tests),
        [
            "ext.config.basic",
            "ext.config.files.check-data",
            "ext.config.files.check-inline",
            "ext.config.nested.deeper.other",
            "ext.config.nested.deeper.test.sh",
            "ext.config.plain.fails",
            "ext.config.reboot",
            "ext.config.special",
        ]
    );
    let by = |n: &str| tests.iter().find(|t| t.name == n).unwrap();

    let basic = by("ext.config.basic");
    assert_eq!(basic.tags, ["external", "smoke", "ignition"]);
    assert_eq!(basic.meta.timeout_min, Some(2));
    assert!(!basic.meta.exclusive);
    assert_eq!(basic.meta.description, "checks the harness's environment");
    assert_eq!(
        basic.config,
        Some(kola::ConfigFile::Ignition(
            tree().join("tests/kola/basic/config.ign")
        ))
    );
    assert!(basic.data.is_none());

    // kola.json is the directory's; inline metadata wins over it.
    let data = by("ext.config.files.check-data");
    assert_eq!(data.meta.architectures, "x86_64 aarch64");
    assert_eq!(data.meta.additional_disks, ["1G"]);
    assert_eq!(data.meta.min_memory, Some(2048));
    assert!(data.meta.exclusive, "upstream's default is exclusive");
    assert_eq!(
        data.data.as_deref(),
        Some(
            tree()
                .join("tests/kola/files/data")
                .canonicalize()
                .unwrap()
                .as_path()
        )
    );
    let inline = by("ext.config.files.check-inline");
    assert_eq!(inline.meta.description, "inline JSON");
    assert_eq!(inline.meta.architectures, "", "kola.json is not merged in");
    assert_eq!(inline.tags, ["external", "inline"]);
    assert_eq!(inline.meta.timeout_min, Some(1));

    let special = by("ext.config.special");
    assert_eq!(special.meta.required_tag, "special");
    assert!(special.meta.excluded_on("s390x", "qemu").is_some());
    assert!(special.meta.excluded_on("x86_64", "qemu").is_none());
    assert!(inline.meta.excluded_on("x86_64", "gcp").is_some());
    assert!(inline.meta.excluded_on("x86_64", "qemu").is_none());
    assert!(
        data.meta
            .excluded_on("ppc64le", "qemu")
            .unwrap()
            .contains("architectures")
    );
}

fn sel(patterns: &[&str], tags: &[&str]) -> Selection {
    Selection {
        patterns: patterns.iter().map(|s| s.to_string()).collect(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
        arch: "x86_64".into(),
        platform: "qemu".into(),
    }
}

fn chosen(s: &Selection) -> Vec<String> {
    kola::discover(&tree())
        .unwrap()
        .iter()
        .filter(|t| choose(&t.name, &t.tags, &t.meta, s).unwrap() == Choice::Run)
        .map(|t| t.name.clone())
        .collect()
}

#[test]
fn kola_selection_by_glob_and_tag() {
    let all = chosen(&sel(&[], &[]));
    assert_eq!(
        all.len(),
        7,
        "everything but the required-tag test: {all:?}"
    );
    assert!(!all.contains(&"ext.config.special".to_string()));
    assert_eq!(
        chosen(&sel(&["ext.config.files.*"], &[])),
        [
            "ext.config.files.check-data",
            "ext.config.files.check-inline"
        ]
    );
    assert_eq!(
        chosen(&sel(&["*.deeper.?ther", "ext.config.basic"], &[])),
        ["ext.config.basic", "ext.config.nested.deeper.other"]
    );
    // A tag alone picks tagged tests; with a pattern it widens it.
    assert_eq!(chosen(&sel(&[], &["smoke"])), ["ext.config.basic"]);
    assert_eq!(
        chosen(&sel(&["ext.config.reboot"], &["inline"])),
        ["ext.config.files.check-inline", "ext.config.reboot"]
    );
    // `!tag` leaves out; the required tag lets its test in.
    // check-inline has its own metadata (tag inline, not files).
    let without_files = chosen(&sel(&[], &["!files"]));
    assert!(!without_files.contains(&"ext.config.files.check-data".to_string()));
    assert!(without_files.contains(&"ext.config.files.check-inline".to_string()));
    assert_eq!(chosen(&sel(&[], &["special"])), ["ext.config.special"]);
    let t = kola::discover(&tree()).unwrap();
    let special = t.iter().find(|t| t.name == "ext.config.special").unwrap();
    assert_eq!(
        choose(
            &special.name,
            &special.tags,
            &special.meta,
            &sel(&["ext.config.special"], &[])
        )
        .unwrap(),
        Choice::Excluded("needs --tag special".into())
    );
    let mut on_ppc = sel(&["ext.config.files.*"], &[]);
    on_ppc.arch = "ppc64le".into();
    assert_eq!(chosen(&on_ppc), ["ext.config.files.check-inline"]);
    let e = choose("x", &[], &TestMeta::default(), &sel(&["[bad"], &[])).unwrap_err();
    assert!(format!("{e:#}").contains("bad test pattern"), "{e:#}");
}

fn scope(arch: &str, stream: Option<&str>, today: &str) -> DenyScope {
    DenyScope {
        arch: arch.into(),
        platform: "qemu".into(),
        stream: stream.map(String::from),
        osversion: None,
        today: today.into(),
    }
}

#[test]
fn kola_denylist_matches_upstream_keys() {
    let file = tree().join("kola-denylist.yaml");
    let d = Denylist::load(&file, &scope("x86_64", None, "2026-05-01")).unwrap();
    let denied = |n: &str| d.denied(n).map(|e| e.tracker.clone());
    assert_eq!(
        denied("ext.config.nested.deeper.other").as_deref(),
        Some("https://example.invalid/issues/1")
    );
    // arches-scoped to s390x; stream- and osversion-scoped with neither known.
    assert_eq!(denied("ext.config.files.check-inline"), None);
    assert_eq!(denied("ext.config.special"), None);
    assert_eq!(denied("ext.config.reboot"), None);
    // The snooze ended in 2000; warn: true runs and only warns.
    assert_eq!(denied("ext.config.basic"), None);
    assert_eq!(denied("ext.config.plain.fails"), None);
    assert!(d.warns("ext.config.plain.fails").is_some());

    let s390 = Denylist::load(&file, &scope("s390x", Some("testing-devel"), "1999-12-31")).unwrap();
    assert!(s390.denied("ext.config.files.check-inline").is_some());
    assert!(s390.denied("ext.config.special").is_some());
    assert!(
        s390.denied("ext.config.basic").is_some(),
        "snoozed until 2000-01-01"
    );
    let on_the_day = Denylist::load(&file, &scope("x86_64", None, "2000-01-01")).unwrap();
    assert!(on_the_day.denied("ext.config.basic").is_none());

    let entry = |snooze: &str| DenyEntry {
        pattern: "x".into(),
        snooze: Some(snooze.into()),
        ..DenyEntry::default()
    };
    let e = Denylist::from_entries(
        vec![entry("next week")],
        &scope("x86_64", None, "2026-01-01"),
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("is not YYYY-MM-DD"), "{e:#}");
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("kola-denylist.yaml");
    std::fs::write(&bad, "- pattern: a\n  arches: x86_64\n").unwrap();
    let e = Denylist::load(&bad, &scope("x86_64", None, "2026-01-01")).unwrap_err();
    let m = format!("{e:#}");
    assert!(
        m.contains("parsing") && m.contains("kola-denylist.yaml"),
        "{m}"
    );
    assert!(
        Denylist::load(
            &t.path().join("none.yaml"),
            &scope("x86_64", None, "2026-01-01")
        )
        .unwrap()
        .deny
        .is_empty()
    );
}

fn exe(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn kola_bad_metadata_names_the_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    let k = t.path().join("tests/kola");
    exe(
        &k,
        "a/test.sh",
        "#!/bin/sh\n# a comment\n# kola: { \"tags\": \"x\", }\necho\n",
    );
    let e = kola::discover(t.path()).unwrap_err();
    let m = format!("{e:#}");
    assert!(m.contains("a/test.sh:3: bad `# kola:` metadata"), "{m}");

    std::fs::remove_dir_all(&k).unwrap();
    exe(
        &k,
        "b/test.sh",
        "#!/bin/sh\n## kola:\n##   tags: x\n##   timeoutMin: [\n##   y: 1\necho\n",
    );
    let m = format!("{:#}", kola::discover(t.path()).unwrap_err());
    assert!(
        m.contains("b/test.sh:") && m.contains("bad `## kola:` metadata"),
        "{m}"
    );
    let line: usize = m
        .split("b/test.sh:")
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (4..=6).contains(&line),
        "line {line} should be in the block: {m}"
    );

    std::fs::remove_dir_all(&k).unwrap();
    exe(
        &k,
        "c/test.sh",
        "#!/bin/sh\n# kola: { \"tag\": \"typo\" }\n",
    );
    let m = format!("{:#}", kola::discover(t.path()).unwrap_err());
    assert!(
        m.contains("c/test.sh:2") && m.contains("unknown field `tag`"),
        "{m}"
    );

    std::fs::remove_dir_all(&k).unwrap();
    exe(&k, "d/x", "#!/bin/sh\n");
    std::fs::write(k.join("d/kola.json"), "{\"timeoutMin\": \"ten\"}").unwrap();
    let m = format!("{:#}", kola::discover(t.path()).unwrap_err());
    assert!(m.contains("parsing") && m.contains("d/kola.json"), "{m}");

    std::fs::remove_dir_all(&k).unwrap();
    exe(&k, "e/x", "#!/bin/sh\n");
    std::fs::write(k.join("e/config.fcc"), "").unwrap();
    let m = format!("{:#}", kola::discover(t.path()).unwrap_err());
    assert!(m.contains("rename it to config.bu"), "{m}");

    // No tests/kola at all: no tests.
    assert!(
        kola::discover(&t.path().join("nothing"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn kola_report_json_and_junit_read_back() {
    let t = tempfile::tempdir().unwrap();
    let tests = vec![
        TestReport::new(
            "ext.config.a",
            TestResult::Pass,
            Duration::from_millis(1500),
            "ok\n".into(),
        ),
        TestReport::new(
            "ext.config.b",
            TestResult::Fail,
            Duration::from_secs(2),
            "the test failed (exit status 3) <&> \"quoted\"\nmore\n".into(),
        ),
        TestReport::new(
            "ext.config.c",
            TestResult::Skip,
            Duration::ZERO,
            "denylisted".into(),
        ),
    ];
    let report = Report::new(tests, "qemu", "1.20260101.dev.0");
    assert_eq!(report.result, TestResult::Fail);
    let (json, junit) = report.write(t.path()).unwrap();
    assert_eq!(json, t.path().join("reports/report.json"));
    assert_eq!(Report::read(&json).unwrap(), report);
    // Upstream's shape, field by field.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["result"], "FAIL");
    assert_eq!(v["platform"], "qemu");
    assert_eq!(v["version"], "1.20260101.dev.0");
    assert_eq!(v["tests"][0]["name"], "ext.config.a");
    assert_eq!(v["tests"][0]["result"], "PASS");
    assert_eq!(v["tests"][0]["duration"], 1_500_000_000u64);
    assert_eq!(v["tests"][0]["subtests"], serde_json::Value::Null);
    assert_eq!(v["tests"][2]["result"], "SKIP");

    // JUnit, read with a real XML parser.
    use quick_xml::events::Event;
    let xml = std::fs::read_to_string(&junit).unwrap();
    let mut r = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut skipped, mut texts) = (Vec::new(), 0, 0, String::new());
    let mut suite_attrs = Vec::new();
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => {
                let attrs: Vec<(String, String)> = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            a.key.as_ref().to_string(),
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .unwrap()
                                .into_owned(),
                        )
                    })
                    .collect();
                match e.name().as_ref() {
                    "testsuite" => suite_attrs = attrs,
                    "testcase" => cases.push(attrs),
                    "failure" => failures += 1,
                    "skipped" => skipped += 1,
                    _ => {}
                }
            }
            Event::Text(t) => texts.push_str(&t.xml10_content()),
            Event::GeneralRef(g) => {
                // quick-xml reports entity references apart from the text.
                let name = g.xml10_content();
                texts.push_str(quick_xml::escape::resolve_predefined_entity(&name).unwrap());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let get = |a: &[(String, String)], k: &str| a.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(get(&suite_attrs, "tests"), "3");
    assert_eq!(get(&suite_attrs, "failures"), "1");
    assert_eq!(get(&suite_attrs, "skipped"), "1");
    assert_eq!((failures, skipped), (1, 1));
    assert_eq!(
        cases.iter().map(|c| get(c, "name")).collect::<Vec<_>>(),
        ["ext.config.a", "ext.config.b", "ext.config.c"]
    );
    assert_eq!(get(&cases[0], "time"), "1.500");
    assert!(texts.contains("exit status 3) <&> \"quoted\""), "{texts}");
}

#[test]
fn kola_list_json_and_errors_of_the_cli() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("src")).unwrap();
    std::os::unix::fs::symlink(tree(), t.path().join("src/config")).unwrap();
    let out = run(cosa(t.path()).args(["kola", "list", "--json"]), true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ext.config.basic") && names.contains(&"ext.config.reboot"),
        "{names:?}"
    );
    let basic = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ext.config.basic")
        .unwrap();
    assert_eq!(basic["kind"], "external");
    assert_eq!(basic["meta"]["timeoutMin"], 2);
    assert_eq!(basic["config"]["kind"], "ignition");
    let files = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ext.config.files.check-data")
        .unwrap();
    assert_eq!(files["meta"]["minMemory"], 2048);
    assert!(files["data"].as_str().unwrap().ends_with("files/data"));

    let out = run(cosa(t.path()).args(["kola", "list"]), true);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("ext.config.special\t")),
        "{text}"
    );

    // A run needs a build.
    let out = run(
        cosa(t.path()).args(["kola", "run", "basic", "--tag", "x"]),
        false,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no builds yet"));
    let out = run(
        cosa(t.path()).args(["kola", "run", "--parallel", "0"]),
        false,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--parallel"));
}
