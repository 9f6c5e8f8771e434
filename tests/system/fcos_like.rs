//! The FCOS-like sample OS (sample-fcos/) from end to end: its repository
//! of converted Debian packages, `cosa build`, and `cosa kola run` over
//! SSH under UEFI (the built-in `basic` and `ostree.upgrade`, from the
//! first build to a second, and the config's external tests, Ignition and
//! the reboot API among them), `basic` and `ostree.upgrade` under BIOS, and
//! `basic` under Secure Boot. Two
//! tests added to a copy of the config must fail, and say why: one whose
//! Ignition config Ignition refuses (its own message is shown), one that
//! exits non-zero (its output is shown).

use std::path::Path;

use crate::common::*;

fn copy_dir(from: &Path, to: &Path) {
    sh(
        "cp -a",
        std::process::Command::new("cp").arg("-a").arg(from).arg(to),
    );
}

/// `cosa` in `wd` with the sample's repository at `repo`.
fn cosa_with(wd: &Path, repo: &Path) -> std::process::Command {
    let mut c = cosa(wd);
    c.env("DNF_VAR_cosa_sample_fcos_repo", repo);
    c
}

/// A working directory `dir/wd` made with `cosa init --transient cfg`.
fn init_workdir(dir: &Path, repo: &Path, cfg: &Path) -> std::path::PathBuf {
    let wd = dir.join("wd");
    std::fs::create_dir_all(&wd).unwrap();
    run(
        cosa_with(&wd, repo).args(["init", "--transient"]).arg(cfg),
        true,
    );
    wd
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn fcos_like_sample_builds_boots_and_passes_kola() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    cosa_testkit::sample::fcos::make_repo(&repo, "x86_64").unwrap();
    // The sample config, plus two tests that must fail.
    let cfg = t.path().join("config");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-fcos"),
        &cfg,
    );
    let bad_ign = cfg.join("tests/kola/negative/bad-ignition");
    write_exec(
        &bad_ign.join("test.sh"),
        "#!/usr/bin/bash\n## kola:\n##   tags: negative\necho unreachable\n",
    );
    // Valid JSON that Ignition refuses: a relative path.
    std::fs::write(
        bad_ign.join("config.ign"),
        r#"{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "relative/file"}]}}"#,
    )
    .unwrap();
    write_exec(
        &cfg.join("tests/kola/negative/exits-nonzero/test.sh"),
        "#!/usr/bin/bash\n## kola:\n##   tags: negative\necho kola-sample-output-before-failing\nexit 3\n",
    );

    let wd = init_workdir(t.path(), &repo, &cfg);
    let out = run(cosa_with(&wd, &repo).arg("build"), true);
    let log = stderr(&out);
    assert!(log.contains("Made the initramfs from the tree"), "{log}");
    // A second build of the same inputs (a new version, a new commit), for
    // ostree.upgrade to upgrade the first one to.
    run(cosa_with(&wd, &repo).args(["build", "--force"]), true);

    // The sample's own tests, basic and ostree.upgrade, under UEFI.
    let out = run(
        cosa(&wd).args(["kola", "run", "--tag", "!negative", "--parallel", "2"]),
        true,
    );
    let log = stderr(&out);
    for name in [
        "basic",
        "ostree.upgrade",
        "ext.config.ignition.file-and-unit",
        "ext.config.os.immutable-usr",
        "ext.config.reboot",
    ] {
        assert!(log.contains(&format!("--- PASS: {name}")), "{log}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.join("tmp/kola/reports/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["result"], "PASS");
    assert!(wd.join("tmp/kola/reports/junit.xml").exists());

    // The upgrade wrote GRUB's menu with ostree's grub2 backend.
    let up = std::fs::read_to_string(wd.join("tmp/kola/ostree.upgrade/output.txt")).unwrap();
    assert!(
        up.contains("ostree's grub2 backend wrote /boot/loader/grub.cfg"),
        "{up}"
    );
    assert!(up.contains("(rollback)"), "{up}");

    // basic and ostree.upgrade under BIOS.
    let out = run(
        cosa(&wd).args([
            "kola",
            "run",
            "basic",
            "ostree.upgrade",
            "--parallel",
            "2",
            "--firmware",
            "bios",
        ]),
        true,
    );
    for name in ["basic", "ostree.upgrade"] {
        assert!(
            stderr(&out).contains(&format!("--- PASS: {name}")),
            "{}",
            stderr(&out)
        );
    }

    // basic under Secure Boot (the tree's Microsoft-signed shim, Debian's
    // signed GRUB and kernel): the OS sees SecureBoot=1 and is locked down.
    let out = run(
        cosa(&wd).args(["kola", "run", "basic", "--secure-boot"]),
        true,
    );
    assert!(stderr(&out).contains("--- PASS: basic"), "{}", stderr(&out));
    let basic = std::fs::read_to_string(wd.join("tmp/kola/basic/output.txt")).unwrap();
    assert!(
        basic.contains("Secure Boot: on (SecureBoot=1); lockdown: integrity"),
        "{basic}"
    );

    // The failing tests fail kola, each with its reason.
    let out = run(
        cosa(&wd).args(["kola", "run", "--tag", "negative", "--parallel", "2"]),
        false,
    );
    let log = stderr(&out);
    assert!(
        log.contains("--- FAIL: ext.config.negative.bad-ignition"),
        "{log}"
    );
    assert!(
        log.contains("--- FAIL: ext.config.negative.exits-nonzero"),
        "{log}"
    );
    // Ignition's own words about the config, from the console.
    assert!(
        log.contains("relative/file") || log.contains("absolute"),
        "{log}"
    );
    assert!(log.contains("COSA-BOOT-FAILED: Ignition failed"), "{log}");
    assert!(log.contains("kola-sample-output-before-failing"), "{log}");
    assert!(log.contains("exit status 3"), "{log}");
}

/// The same OS for aarch64, composed on this x86_64 host (no script runs
/// for another arch: what Debian's scripts would do comes from the
/// overlay), booted under AAVMF with TCG: `basic` passes over SSH.
#[test]
fn fcos_like_sample_for_aarch64_builds_and_passes_basic() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    cosa_testkit::sample::fcos::make_repo(&repo, "aarch64").unwrap();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-fcos");
    let wd = init_workdir(t.path(), &repo, &cfg);
    let out = run(
        cosa_with(&wd, &repo).args(["build", "--arch", "aarch64"]),
        true,
    );
    let log = stderr(&out);
    assert!(log.contains("Made the initramfs from the tree"), "{log}");
    assert!(log.contains("NOT run: target arch aarch64"), "{log}");
    let out = run(
        cosa(&wd).args([
            "kola",
            "run",
            "basic",
            "--arch",
            "aarch64",
            "--timeout",
            "900",
        ]),
        true,
    );
    assert!(stderr(&out).contains("--- PASS: basic"), "{}", stderr(&out));
}
