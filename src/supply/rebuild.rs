//! `cosa rebuild-verify`: what a rebuild is compared on and how the result
//! is told. A rebuild makes the recorded build again from its recorded
//! inputs (src/cmd/rebuild_verify.rs runs it); here:
//!
//! - the rows compared: the OSTree commit, every artifact of meta.json
//!   `images` (the uncompressed digest of a compressed one) and the
//!   generated lockfile, each identical, different, not rebuilt (an
//!   artifact the rebuild does not know how to make) or skipped (the
//!   provenance: a signed statement about the build, not made by it);
//! - the table and the JSON;
//! - the signed statement `--attest` writes: an in-toto Statement v1 with a
//!   SLSA Verification Summary (VSA v1) predicate, in a DSSE envelope
//!   ([`super::dsse`]), and its check by `cosa verify`.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde::Serialize;
use serde_json::{Value, json};

use crate::ostree::diff::CommitDiff;
use crate::sign::{Keyring, Signer};
use crate::store::meta::{Artifact, Meta};

pub const PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// What "verified" means here: every recorded digest made again.
pub const POLICY_URI: &str = "https://cosa.invalid/rebuild-verify/v1";
pub const VERIFIER_ID: &str = "https://cosa.invalid/rebuild-verify";
/// The name of the commit's row and subject.
pub const COMMIT_ROW: &str = "ostree-commit";
/// The name of the generated lockfile's row.
pub const LOCKFILE_ROW: &str = "lockfile";
/// Hex digits of a digest in the table.
const SHORT: usize = 12;
/// Differing paths of a commit kept in the report (the count is complete).
const LISTED_PATHS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Identical,
    Different,
    /// Recorded, but the rebuild does not make it.
    NotRebuilt,
    /// Not a build output (the provenance): not compared.
    Skipped,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Identical => "identical",
            Status::Different => "DIFFERENT",
            Status::NotRebuilt => "NOT REBUILT",
            Status::Skipped => "skipped",
        }
    }

    /// Whether the row lets the verification pass.
    pub fn passes(self) -> bool {
        matches!(self, Status::Identical | Status::Skipped)
    }
}

/// One compared item.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `ostree-commit`, an images key, or `lockfile`.
    pub artifact: String,
    /// Its file name in the build directory (none for the commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// sha256 (the commit checksum for the commit).
    pub recorded: Option<String>,
    pub rebuilt: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

fn row(artifact: &str, file: Option<&str>, recorded: Option<&str>, rebuilt: Option<&str>) -> Row {
    let status = match (recorded, rebuilt) {
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => Status::Identical,
        (Some(_), Some(_)) => Status::Different,
        _ => Status::NotRebuilt,
    };
    Row {
        artifact: artifact.to_string(),
        file: file.map(str::to_string),
        recorded: recorded.map(str::to_string),
        rebuilt: rebuilt.map(str::to_string),
        status,
        detail: String::new(),
    }
}

/// The digest a rebuild makes again: the uncompressed one of a compressed
/// artifact (a rebuild does not compress).
fn made_digest(a: &Artifact) -> &str {
    a.uncompressed_sha256.as_deref().unwrap_or(&a.sha256)
}

/// Why a recorded artifact is not made by a rebuild, if it is one of those.
pub fn skip_reason(key: &str) -> Option<&'static str> {
    match key {
        "provenance" => Some("a signed statement about the build, not made by it"),
        _ => None,
    }
}

/// The commit's row; with the diff of the two when they differ.
pub fn commit_row(recorded: &str, rebuilt: &str, diff: Option<&CommitDiff>) -> Row {
    let mut r = row(COMMIT_ROW, None, Some(recorded), Some(rebuilt));
    if let Some(d) = diff {
        r.detail = describe_diff(d);
    }
    r
}

/// One line about a commit diff: the first differing file and the counts.
pub fn describe_diff(d: &CommitDiff) -> String {
    let mut parts = Vec::new();
    if let Some(c) = d.files.first() {
        let mut s = format!("first differing file: {} {}", c.kind.letter(), c.path);
        if !c.detail.is_empty() {
            s.push_str(&format!(" ({})", c.detail));
        }
        parts.push(s);
        if d.files.len() > 1 {
            parts.push(format!("{} paths differ in all", d.files.len()));
        }
    } else {
        parts.push("no file differs".to_string());
    }
    if !d.commit.is_empty() {
        parts.push(format!("commit fields: {}", d.commit.join("; ")));
    }
    parts.join("; ")
}

/// The rows of every artifact of the recorded build against the rebuild's.
pub fn image_rows(recorded: &Meta, rebuilt: &Meta) -> Vec<Row> {
    recorded
        .images
        .iter()
        .map(|(key, a)| {
            if let Some(why) = skip_reason(key) {
                let mut r = row(key, Some(&a.path), Some(&a.sha256), None);
                r.status = Status::Skipped;
                r.detail = why.to_string();
                return r;
            }
            let made = rebuilt.images.get(key).map(|b| b.sha256.as_str());
            let mut r = row(key, Some(&a.path), Some(made_digest(a)), made);
            if made.is_none() {
                r.detail = "the rebuild does not make this artifact".to_string();
            } else if a.uncompressed_sha256.is_some() {
                r.detail = format!("compared uncompressed ({} is compressed)", a.path);
            }
            r
        })
        .collect()
}

/// The generated lockfile's row: the packages and repos the rebuild
/// resolved, against the recorded ones.
pub fn lockfile_row(file: &str, recorded: &Path, rebuilt: &Path) -> Result<Row> {
    let digest = |p: &Path| -> Result<Option<String>> {
        if !p.exists() {
            return Ok(None);
        }
        Ok(Some(crate::util::digest::sha256_file(p)?.0))
    };
    Ok(row(
        LOCKFILE_ROW,
        Some(file),
        digest(recorded)?.as_deref(),
        digest(rebuilt)?.as_deref(),
    ))
}

/// Everything a rebuild found.
#[derive(Debug, Serialize)]
pub struct Report {
    pub build: String,
    pub arch: String,
    /// Where the recorded build came from (a path or the store's URL).
    pub source: String,
    pub rows: Vec<Row>,
    /// The commits' differences, when they differ (paths capped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_diff: Option<CommitDiff>,
    /// Warnings about the inputs (a dirty config, overrides...).
    pub warnings: Vec<String>,
    pub seconds: f64,
}

impl Report {
    pub fn new(build: &str, arch: &str, source: &str) -> Report {
        Report {
            build: build.to_string(),
            arch: arch.to_string(),
            source: source.to_string(),
            rows: Vec::new(),
            commit_diff: None,
            warnings: Vec::new(),
            seconds: 0.0,
        }
    }

    /// Keep a commit diff, its path list capped.
    pub fn set_commit_diff(&mut self, mut d: CommitDiff) {
        d.files.truncate(LISTED_PATHS);
        self.commit_diff = Some(d);
    }

    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.status.passes())
    }

    /// The rows that fail the verification.
    pub fn failing(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| !r.status.passes()).collect()
    }

    /// `ARTIFACT RECORDED REBUILT RESULT`, digests cut to 12 hex digits,
    /// then one line per detail.
    pub fn table(&self) -> String {
        let short = |d: &Option<String>| -> String {
            d.as_deref()
                .map(|s| s.chars().take(SHORT).collect())
                .unwrap_or_else(|| "-".to_string())
        };
        let w = self
            .rows
            .iter()
            .map(|r| r.artifact.len())
            .chain([8])
            .max()
            .unwrap_or(8);
        let mut out = format!(
            "{:<w$}  {:<SHORT$}  {:<SHORT$}  RESULT\n",
            "ARTIFACT", "RECORDED", "REBUILT"
        );
        for r in &self.rows {
            out.push_str(&format!(
                "{:<w$}  {:<SHORT$}  {:<SHORT$}  {}\n",
                r.artifact,
                short(&r.recorded),
                short(&r.rebuilt),
                r.status.label()
            ));
        }
        for r in self.rows.iter().filter(|r| !r.detail.is_empty()) {
            out.push_str(&format!("{}: {}\n", r.artifact, r.detail));
        }
        out
    }

    /// A one-line summary of what failed, for the error message.
    pub fn failure_summary(&self) -> String {
        self.failing()
            .iter()
            .map(|r| {
                let what = r.file.as_deref().unwrap_or(&r.artifact);
                let name = if what == r.artifact {
                    what.to_string()
                } else {
                    format!("{} ({what})", r.artifact)
                };
                match (r.status, r.artifact.as_str()) {
                    (Status::Different, COMMIT_ROW) => format!("{name}: {}", r.detail),
                    (Status::Different, _) => format!("{name} differs"),
                    _ => format!("{name} not rebuilt"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The in-toto statement (SLSA VSA v1) about `report`: subjects are the
/// recorded digests of everything compared (the commit as
/// `ostree-commit:<checksum>`); `inputAttestations` the build's provenance
/// when it has one.
pub fn statement(report: &Report, m: &Meta, resource_uri: &str, time_verified: &str) -> Value {
    let subjects: Vec<Value> = report
        .rows
        .iter()
        .filter(|r| r.status != Status::Skipped)
        .filter_map(|r| {
            let sha = r.recorded.as_deref()?;
            let name = match &r.file {
                Some(f) => f.clone(),
                None => format!("{COMMIT_ROW}:{sha}"),
            };
            Some(json!({"name": name, "digest": {"sha256": sha}}))
        })
        .collect();
    let inputs: Vec<Value> = m
        .images
        .get("provenance")
        .map(|a| json!({"uri": a.path, "digest": {"sha256": a.sha256}}))
        .into_iter()
        .collect();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| crate::util::digest::sha256_file(&p).ok())
        .map(|(s, _)| s);
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verifier": {
                "id": VERIFIER_ID,
                "version": {"cosa": env!("CARGO_PKG_VERSION"), "cosa-sha256": exe},
            },
            "timeVerified": time_verified,
            "resourceUri": resource_uri,
            "policy": {"uri": POLICY_URI},
            "inputAttestations": inputs,
            "verificationResult": if report.passed() { "PASSED" } else { "FAILED" },
            // A rebuild says nothing about SLSA build levels.
            "verifiedLevels": [],
            "slsaVersion": "1.0",
            // Beyond VSA (consumers ignore unknown fields): what was compared.
            "rebuild": {
                "build": report.build,
                "arch": report.arch,
                "artifacts": report.rows,
                "commitDiff": report.commit_diff,
                "warnings": report.warnings,
            },
        },
    })
}

/// What `cosa verify` learns from a rebuild statement.
pub struct Checked {
    pub signer: Signer,
    /// `PASSED` or `FAILED`.
    pub result: String,
    pub time_verified: String,
}

/// Check a rebuild statement of build `m` (files in `dir`): its signature,
/// its predicate type, and that its subjects are this build's (the commit,
/// and each file by meta.json's digest, or the file's for the lockfile).
pub fn verify_statement(
    envelope: &Value,
    keyring: &Keyring,
    m: &Meta,
    dir: &Path,
) -> Result<Checked> {
    let what = "rebuild statement";
    let (signer, st) = super::dsse::open(envelope, keyring, what)?;
    ensure!(
        st["predicateType"] == PREDICATE_TYPE,
        "predicateType is {}, not {PREDICATE_TYPE}",
        st["predicateType"]
    );
    for (name, sha) in super::dsse::artifact_subjects(&st, &m.ostree_commit, what)? {
        match m.images.values().find(|a| a.path == name) {
            Some(a) => ensure!(
                made_digest(a) == sha,
                "{name}: the {what} says sha256 {sha}, meta.json {}",
                made_digest(a)
            ),
            None => {
                let (actual, _) = crate::util::digest::sha256_file(&dir.join(name))
                    .with_context(|| format!("the {what} names {name}"))?;
                ensure!(
                    actual == sha,
                    "{name}: the file's sha256 is {actual}, the {what} says {sha}"
                );
            }
        }
    }
    let p = &st["predicate"];
    Ok(Checked {
        signer,
        result: p["verificationResult"]
            .as_str()
            .context("no verificationResult")?
            .to_string(),
        time_verified: p["timeVerified"].as_str().unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        let mut m = Meta {
            buildid: "1.20240101.dev.0".into(),
            ostree_commit: "c".repeat(64),
            ..Default::default()
        };
        for (k, sha) in [("ostree", "a"), ("qemu", "b"), ("provenance", "d")] {
            m.images.insert(
                k.into(),
                Artifact {
                    path: format!("x-{k}"),
                    sha256: sha.repeat(64),
                    ..Default::default()
                },
            );
        }
        m
    }

    #[test]
    fn rows_compare_made_digests_and_skip_the_provenance() {
        let recorded = meta();
        let mut rebuilt = meta();
        rebuilt.images.remove("provenance");
        rebuilt.images.get_mut("qemu").unwrap().sha256 = "e".repeat(64);
        let mut compressed = recorded.clone();
        let q = compressed.images.get_mut("qemu").unwrap();
        q.uncompressed_sha256 = Some(q.sha256.clone());
        q.sha256 = "f".repeat(64);
        for m in [&recorded, &compressed] {
            let rows = image_rows(m, &rebuilt);
            let st: Vec<(&str, Status)> = rows
                .iter()
                .map(|r| (r.artifact.as_str(), r.status))
                .collect();
            assert_eq!(
                st,
                [
                    ("ostree", Status::Identical),
                    ("provenance", Status::Skipped),
                    ("qemu", Status::Different)
                ]
            );
        }
        rebuilt.images.remove("qemu");
        let rows = image_rows(&recorded, &rebuilt);
        assert_eq!(rows[2].status, Status::NotRebuilt);
    }

    #[test]
    fn table_and_summary_name_what_failed() {
        let mut r = Report::new("1.20240101.dev.0", "x86_64", "here");
        r.rows
            .push(commit_row(&"c".repeat(64), &"c".repeat(64), None));
        let mut q = row("qemu", Some("x-qemu"), Some("aaaa"), Some("bbbb"));
        q.detail = "why".into();
        r.rows.push(q);
        assert!(!r.passed());
        let t = r.table();
        assert!(
            t.contains("ostree-commit  cccccccccccc  cccccccccccc  identical"),
            "{t}"
        );
        assert!(
            t.contains("qemu           aaaa          bbbb          DIFFERENT"),
            "{t}"
        );
        assert!(t.contains("qemu: why"), "{t}");
        assert_eq!(r.failure_summary(), "qemu (x-qemu) differs");
    }
}
