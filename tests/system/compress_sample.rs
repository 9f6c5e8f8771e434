//! `cosa compress` / `cosa uncompress` on a real build of the sample OS
//! (`cosa build` makes the ostree tarball and the qemu image,
//! `cosa buildextend-metal` the raw one), checked with the real `xz`, `zstd`
//! and `gzip`: integrity tests, multithreaded xz blocks, decompressed bytes
//! against meta.json's uncompressed-sha256, meta.json against the schema, and
//! a byte-identical round trip back to the original meta.json.

use crate::common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Built {
    _t: tempfile::TempDir,
    wd: PathBuf,
    cfg: PathBuf,
    dir: PathBuf,
}

fn build_sample() -> Built {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    // A copy of the sample config, so the test can edit its image.yaml.
    let cfg = t.path().join("config");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    // -L: the sample config's files are symlinks into the source tree.
    let st = Command::new("cp")
        .arg("-rL")
        .arg(&manifests)
        .arg(&cfg)
        .status()
        .unwrap();
    assert!(st.success());
    let wd = t.path().join("wd");
    run(cosa(&wd).args(["init", "--transient"]).arg(&cfg), true);
    run(
        cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .arg("build"),
        true,
    );
    run(cosa(&wd).arg("buildextend-metal"), true);
    let bj: Value =
        serde_json::from_slice(&std::fs::read(wd.join("builds/builds.json")).unwrap()).unwrap();
    let id = bj["builds"][0]["id"].as_str().unwrap().to_string();
    let dir = wd.join(format!("builds/{id}/x86_64"));
    Built {
        _t: t,
        wd,
        cfg,
        dir,
    }
}

fn meta(b: &Built) -> Value {
    let v: Value =
        serde_json::from_slice(&std::fs::read(b.dir.join("meta.json")).unwrap()).unwrap();
    cosa::store::meta::validate(&v).expect("meta.json validates");
    v
}

fn sha256_of(path: &Path) -> String {
    cosa::image::compress::file_digest(path).unwrap().sha256
}

/// Run a real tool; its stdout.
fn tool(args: &[&str], file: &Path) -> Vec<u8> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// sha256 of what a real tool decompresses `file` to (streamed through sha256sum).
fn tool_decompressed_sha256(decompress: &str, file: &Path) -> String {
    let mut dec = Command::new(decompress)
        .args(["-dc"])
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Command::new("sha256sum")
        .stdin(dec.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(
        dec.wait().unwrap().success(),
        "{decompress} -dc {}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Check one compressed artifact against the original entry, with the real tool.
fn check_compressed(b: &Built, m: &Value, orig: &Value, name: &str, ext: &str) {
    let a = &m["images"][name];
    let o = &orig["images"][name];
    let path = a["path"].as_str().unwrap();
    assert_eq!(
        path,
        format!("{}.{ext}", o["path"].as_str().unwrap()),
        "{name}"
    );
    let file = b.dir.join(path);
    assert_eq!(a["sha256"].as_str().unwrap(), sha256_of(&file), "{name}");
    assert_eq!(
        a["size"].as_u64().unwrap(),
        std::fs::metadata(&file).unwrap().len()
    );
    assert_eq!(a["uncompressed-sha256"], o["sha256"], "{name}");
    assert_eq!(a["uncompressed-size"], o["size"], "{name}");
    assert!(
        !b.dir.join(o["path"].as_str().unwrap()).exists(),
        "{name}: the original is deleted"
    );
    let prog = match ext {
        "xz" => "xz",
        "zst" => "zstd",
        "gz" => "gzip",
        _ => unreachable!(),
    };
    tool(&[prog, "-t"], &file);
    assert_eq!(
        tool_decompressed_sha256(prog, &file),
        o["sha256"].as_str().unwrap(),
        "{name}: {prog} -dc gives the original bytes"
    );
    if ext == "xz" {
        // Multithreaded xz: several blocks, each with its sizes in its header.
        let list = String::from_utf8(tool(&["xz", "-l", "--robot"], &file)).unwrap();
        let totals: Vec<&str> = list
            .lines()
            .find(|l| l.starts_with("totals"))
            .unwrap()
            .split('\t')
            .collect();
        let blocks: u64 = totals[2].parse().unwrap();
        if cosa::image::compress::cores() >= 2 {
            assert!(blocks >= 2, "{name}: {blocks} xz block(s):\n{list}");
        }
        assert!(list.contains("CRC64"), "{list}");
    }
}

/// Nothing but the artifacts and meta.json files: no temp files left.
fn assert_no_leftovers(b: &Built) {
    for e in std::fs::read_dir(&b.dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with(".tmp-"), "leftover {n}");
    }
}

fn uncompress_and_check(b: &Built, orig: &Value) {
    run(cosa(&b.wd).arg("uncompress"), true);
    let back = meta(b);
    assert_eq!(back, *orig, "uncompress restores meta.json");
    for (name, a) in orig["images"].as_object().unwrap() {
        let file = b.dir.join(a["path"].as_str().unwrap());
        assert_eq!(
            sha256_of(&file),
            a["sha256"].as_str().unwrap(),
            "{name}: byte-identical after uncompress"
        );
    }
    assert_no_leftovers(b);
}

fn write_image_yaml(b: &Built, extra: &str) {
    // The sample's image.yaml as copied, kept beside the config.
    let p = b.cfg.join("image.yaml");
    let orig = b.cfg.with_file_name("image.yaml.orig");
    if !orig.exists() {
        std::fs::copy(&p, &orig).unwrap();
    }
    let base = std::fs::read_to_string(&orig).unwrap();
    assert!(!base.contains("compressor"), "{base}");
    std::fs::write(&p, format!("{base}\n{extra}")).unwrap();
}

#[test]
fn compress_uncompress_the_sample_build() {
    let b = build_sample();
    let orig = meta(&b);
    let images = orig["images"].as_object().unwrap();
    for k in ["ostree", "qemu", "metal"] {
        assert!(
            images.contains_key(k),
            "sample build has images.{k}: {orig}"
        );
    }

    // 1. image.yaml's compressor and platform-compressor; --artifact first.
    write_image_yaml(&b, "compressor: xz\nplatform-compressor:\n  qemu: zstd\n");
    run(cosa(&b.wd).args(["compress", "--artifact", "metal"]), true);
    let m = meta(&b);
    check_compressed(&b, &m, &orig, "metal", "xz");
    assert_eq!(
        m["images"]["qemu"], orig["images"]["qemu"],
        "--artifact metal only"
    );
    let out = run(cosa(&b.wd).arg("compress"), true);
    let m = meta(&b);
    check_compressed(&b, &m, &orig, "qemu", "zst");
    assert_eq!(
        m["images"]["metal"]["path"],
        format!("{}.xz", orig["images"]["metal"]["path"].as_str().unwrap())
    );
    // The OSTree tarball is never compressed.
    assert_eq!(m["images"]["ostree"], orig["images"]["ostree"]);
    assert!(
        stderr(&out).contains("Skipped compressing artifacts: ostree"),
        "{}",
        stderr(&out)
    );
    assert_no_leftovers(&b);

    // Twice is a no-op: meta.json is not even rewritten.
    let before = std::fs::read(b.dir.join("meta.json")).unwrap();
    let mtime = std::fs::metadata(b.dir.join("meta.json"))
        .unwrap()
        .modified()
        .unwrap();
    let out = run(cosa(&b.wd).arg("compress"), true);
    assert!(
        stderr(&out).contains("All artifacts already compressed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(b.dir.join("meta.json")).unwrap(), before);
    assert_eq!(
        std::fs::metadata(b.dir.join("meta.json"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );

    // A wrong uncompressed-sha256 is refused and changes nothing.
    let good = m["images"]["metal"]["uncompressed-sha256"]
        .as_str()
        .unwrap()
        .to_string();
    run(
        cosa(&b.wd).args([
            "meta",
            "--set",
            &format!("images.metal.uncompressed-sha256={}", "0".repeat(64)),
        ]),
        true,
    );
    let bad = meta(&b);
    let out = run(
        cosa(&b.wd).args(["uncompress", "--artifact", "metal"]),
        false,
    );
    assert!(
        stderr(&out).contains("does not decompress to what meta.json recorded"),
        "{}",
        stderr(&out)
    );
    assert_eq!(meta(&b), bad);
    assert!(
        b.dir
            .join(bad["images"]["metal"]["path"].as_str().unwrap())
            .exists()
    );
    assert_no_leftovers(&b);
    run(
        cosa(&b.wd).args([
            "meta",
            "--set",
            &format!("images.metal.uncompressed-sha256={good}"),
        ]),
        true,
    );
    uncompress_and_check(&b, &orig);
    let out = run(cosa(&b.wd).arg("uncompress"), true);
    assert!(stderr(&out).contains("All artifacts already uncompressed"));

    // 2. --compressor gzip: platform-compressor still wins for qemu, as upstream.
    run(cosa(&b.wd).args(["compress", "--compressor", "gzip"]), true);
    let m = meta(&b);
    check_compressed(&b, &m, &orig, "metal", "gz");
    check_compressed(&b, &m, &orig, "qemu", "zst");
    uncompress_and_check(&b, &orig);

    // 3. zstd --fast, with skip-compression on qemu.
    write_image_yaml(&b, "");
    run(
        cosa(&b.wd).args(["meta", "--set", "images.qemu.skip-compression=true"]),
        true,
    );
    let flagged = meta(&b);
    let out = run(
        cosa(&b.wd).args(["compress", "--compressor", "zstd", "--fast"]),
        true,
    );
    assert!(stderr(&out).contains("zstd -1"), "{}", stderr(&out));
    let m = meta(&b);
    check_compressed(&b, &m, &flagged, "metal", "zst");
    assert_eq!(
        m["images"]["qemu"], flagged["images"]["qemu"],
        "skip-compression honoured"
    );
    run(cosa(&b.wd).arg("uncompress"), true);
    assert_eq!(meta(&b), flagged);

    // 4. No compressor anywhere: gzip (upstream's default), and --fast alone is gzip -1.
    let out = run(
        cosa(&b.wd).args(["compress", "--artifact", "metal", "--fast"]),
        true,
    );
    assert!(stderr(&out).contains("gzip -1"), "{}", stderr(&out));
    check_compressed(&b, &meta(&b), &flagged, "metal", "gz");
    run(cosa(&b.wd).arg("uncompress"), true);
    assert_eq!(meta(&b), flagged);
}

/// A `cosa compress` killed at any moment leaves meta.json naming a complete
/// file with the recorded sha256, and the next run finishes the job.
#[test]
fn killed_compress_leaves_a_consistent_build() {
    let b = build_sample();
    let orig = meta(&b);
    // xz --fast: slow enough to be killed mid-artifact, quick enough for CI.
    for delay_ms in [300u64, 2000] {
        let mut child = cosa(&b.wd)
            .args(["compress", "--compressor", "xz", "--fast"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let m = meta(&b);
        for (name, a) in m["images"].as_object().unwrap() {
            let file = b.dir.join(a["path"].as_str().unwrap());
            assert_eq!(
                sha256_of(&file),
                a["sha256"].as_str().unwrap(),
                "{name} after kill"
            );
        }
        run(
            cosa(&b.wd).args(["compress", "--compressor", "xz", "--fast"]),
            true,
        );
        let m = meta(&b);
        check_compressed(&b, &m, &orig, "metal", "xz");
        check_compressed(&b, &m, &orig, "qemu", "xz");
        assert_no_leftovers(&b);
        uncompress_and_check(&b, &orig);
    }
}
