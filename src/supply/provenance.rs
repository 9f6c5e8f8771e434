//! The build's provenance: an in-toto Statement v1 with a SLSA Provenance v1
//! predicate, signed as a DSSE envelope with the build's OpenPGP key
//! (`<name>-<id>-provenance.<arch>.intoto.json`, meta.json
//! `images.provenance`).
//!
//! - Subjects: every artifact of meta.json `images` (but the provenance
//!   itself) by file name and sha256, and the OSTree commit.
//! - Build definition: cosa's build type, the external parameters (config
//!   repo commit and dirty flag, arch, ref, version, the commit's timestamp)
//!   and the resolved dependencies: every RPM by purl and sha256 (from the
//!   build's SBOM) and every rpm-md repo by id and timestamp.
//! - Run details: the builder (cosa's version and the sha256 of its
//!   binary) and the build's id and time.
//!
//! Signed as a DSSE envelope ([`super::dsse`]).

use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::sign::{Keyring, PgpSigner, Signer};
use crate::store::meta::Meta;

pub const BUILD_TYPE: &str = "https://cosa.invalid/build/v1";

/// The provenance's file name for a build.
pub fn file_name(name: &str, version: &str, arch: &str) -> String {
    format!("{name}-{version}-provenance.{arch}.intoto.json")
}

/// The in-toto statement of build `m` whose files are in `dir`;
/// `commitmeta` is its commitmeta.json, `sbom` its SPDX document.
pub fn statement(m: &Meta, dir: &Path, commitmeta: &Value, sbom: Option<&Value>) -> Result<Value> {
    let mut subjects = Vec::new();
    for (key, a) in &m.images {
        if key == "provenance" {
            continue;
        }
        let (sha, _) = crate::util::digest::sha256_file(&dir.join(&a.path))?;
        ensure!(
            sha == a.sha256,
            "{}: sha256 {sha} differs from meta.json's {}",
            a.path,
            a.sha256
        );
        subjects.push(json!({"name": a.path, "digest": {"sha256": a.sha256}}));
    }
    subjects.push(json!({
        "name": format!("ostree-commit:{}", m.ostree_commit),
        "digest": {"sha256": m.ostree_commit},
    }));
    let mut deps = Vec::new();
    if let Some(s) = sbom {
        for p in s["packages"].as_array().into_iter().flatten() {
            let purl = p["externalRefs"]
                .as_array()
                .and_then(|r| r.iter().find(|e| e["referenceType"] == "purl"))
                .and_then(|e| e["referenceLocator"].as_str());
            let sha = p["checksums"]
                .as_array()
                .and_then(|c| c.iter().find(|e| e["algorithm"] == "SHA256"))
                .and_then(|e| e["checksumValue"].as_str());
            if let (Some(purl), Some(sha)) = (purl, sha) {
                deps.push(json!({"uri": purl, "digest": {"sha256": sha}}));
            }
        }
    }
    for r in commitmeta["rpmostree.rpmmd-repos"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(id) = r["id"].as_str() {
            deps.push(json!({
                "name": id,
                "uri": format!("rpm-md-repo:{id}"),
                "annotations": {"timestamp": r["timestamp"]},
            }));
        }
    }
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| crate::util::digest::sha256_file(&p).ok())
        .map(|(s, _)| s);
    let extra = |k: &str| m.extra.get(k).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "config": {
                        "gitrev": m.config_gitrev,
                        "dirty": m.config_dirty,
                    },
                    "arch": m.basearch,
                    "ref": m.ostree_ref,
                    "version": m.ostree_version,
                    "imageConfigChecksum": extra("coreos-assembler.image-config-checksum"),
                },
                "internalParameters": {
                    "ostreeTimestamp": m.ostree_timestamp,
                    "inputHash": m.rpm_ostree_inputhash,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": "https://cosa.invalid/builder",
                    "version": {
                        "cosa": env!("CARGO_PKG_VERSION"),
                        "cosa-sha256": exe,
                    },
                },
                "metadata": {
                    "invocationId": format!("{}/{}", m.buildid, m.basearch.clone().unwrap_or_default()),
                    "finishedOn": m.build_timestamp,
                },
            },
        },
    }))
}

/// Sign `statement` as a DSSE envelope.
pub fn envelope(statement: &Value, signer: &PgpSigner) -> Result<Value> {
    super::dsse::sign(statement, signer, "provenance")
}

/// Check a DSSE envelope against `keyring`: some signature verifies; then
/// every subject's digest equals meta.json's and the file's. Returns the
/// signer.
pub fn verify(envelope: &Value, keyring: &Keyring, m: &Meta, dir: &Path) -> Result<Signer> {
    let (signer, st) = super::dsse::open(envelope, keyring, "provenance")?;
    ensure!(
        st["predicateType"] == "https://slsa.dev/provenance/v1",
        "predicateType is {}",
        st["predicateType"]
    );
    for (name, sha) in super::dsse::artifact_subjects(&st, &m.ostree_commit, "provenance")? {
        let listed = m
            .images
            .values()
            .find(|a| a.path == name)
            .with_context(|| {
                format!("the provenance names {name}, which meta.json does not list")
            })?;
        ensure!(
            listed.sha256 == sha,
            "{name}: the provenance says sha256 {sha}, meta.json {}",
            listed.sha256
        );
        let (actual, _) = crate::util::digest::sha256_file(&dir.join(name))?;
        ensure!(
            actual == sha,
            "{name}: the file's sha256 is {actual}, the provenance says {sha}"
        );
    }
    Ok(signer)
}
