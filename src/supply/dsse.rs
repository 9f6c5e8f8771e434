//! DSSE envelopes around in-toto statements, as the provenance and the
//! rebuild verification summary are signed: an OpenPGP detached signature
//! over the PAE encoding of the payload, in base64, with the key's
//! fingerprint as keyid (<https://github.com/secure-systems-lab/dsse>).

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::sign::{Keyring, PgpSigner, Signer};

/// The payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    v.extend_from_slice(payload);
    v
}

/// Sign `statement` as a DSSE envelope; `what` names it in errors.
pub fn sign(statement: &Value, signer: &PgpSigner, what: &str) -> Result<Value> {
    let payload = serde_json::to_vec(statement)?;
    let sig = signer
        .sign_detached(&pae(PAYLOAD_TYPE, &payload)[..])
        .with_context(|| format!("signing the {what}"))?;
    Ok(json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": B64.encode(&payload),
        "signatures": [{"keyid": signer.fingerprint, "sig": B64.encode(sig)}],
    }))
}

/// Check that some signature of `envelope` verifies with `keyring`; returns
/// the signer and the statement it carries (`what` names it in errors).
pub fn open(envelope: &Value, keyring: &Keyring, what: &str) -> Result<(Signer, Value)> {
    ensure!(
        envelope["payloadType"] == PAYLOAD_TYPE,
        "payloadType is {}, not {PAYLOAD_TYPE}",
        envelope["payloadType"]
    );
    let payload = B64
        .decode(envelope["payload"].as_str().context("no payload")?)
        .context("payload is not base64")?;
    let sigs = envelope["signatures"].as_array().context("no signatures")?;
    let mut last = None;
    for s in sigs {
        let Some(sig) = s["sig"].as_str().and_then(|b| B64.decode(b).ok()) else {
            continue;
        };
        match keyring.verify_detached(&sig, &pae(PAYLOAD_TYPE, &payload)[..]) {
            Ok(who) => {
                let st = serde_json::from_slice(&payload).context("parsing the statement")?;
                return Ok((who, st));
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e.context(format!("no signature of the {what} verifies"))),
        None => bail!("the {what} has no signature"),
    }
}

/// The artifact subjects of in-toto statement `st` as (file name, sha256):
/// the `ostree-commit:<checksum>` subject is checked against `commit` and
/// left out, every other name must be an artifact file name (it becomes a
/// path). `what` names the statement in errors.
pub fn artifact_subjects<'a>(
    st: &'a Value,
    commit: &str,
    what: &str,
) -> Result<Vec<(&'a str, &'a str)>> {
    let mut out = Vec::new();
    for s in st["subject"].as_array().context("no subjects")? {
        let name = s["name"].as_str().context("subject without name")?;
        let sha = s["digest"]["sha256"]
            .as_str()
            .context("subject without sha256")?;
        if let Some(c) = name.strip_prefix("ostree-commit:") {
            ensure!(
                c == commit && sha == commit,
                "the {what} is about commit {c}, the build's is {commit}"
            );
            continue;
        }
        crate::store::names::artifact_file(name)?;
        out.push((name, sha));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
