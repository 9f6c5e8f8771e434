//! Signatures of an OSTree commit, kept in its detached metadata as libostree
//! keeps them: `ostree.gpgsigs` (`aay`, detached binary OpenPGP signatures
//! of the commit object's bytes) and `ostree.sign.ed25519` (`aay`, raw
//! 64-byte ed25519 signatures of the same bytes, as `ostree sign` writes).
//!
//! ed25519 key files are `ostree sign`'s: base64 of the 64-byte secret key
//! (seed then public key), or of the 32-byte seed; public key files hold one
//! base64 32-byte public key per line.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};

use super::{Keyring, PgpSigner, Signer, read_private_file, signature_issuer};
use crate::ostree::{ObjectType, Repo, Type, Value};

/// Detached metadata key of OpenPGP signatures.
pub const GPGSIGS: &str = "ostree.gpgsigs";
/// Detached metadata key of ed25519 signatures.
pub const ED25519: &str = "ostree.sign.ed25519";

/// Load an ed25519 secret key in `ostree sign`'s format from a private file.
pub fn load_ed25519_secret(path: &Path) -> Result<SigningKey> {
    let data = read_private_file(path, "ed25519 key")?;
    let text = std::str::from_utf8(&data)
        .with_context(|| format!("ed25519 key {} is not base64 text", path.display()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .with_context(|| format!("ed25519 key {} is empty", path.display()))?;
    let raw = zeroize::Zeroizing::new(
        B64.decode(line)
            .with_context(|| format!("ed25519 key {} is not base64", path.display()))?,
    );
    let seed: [u8; 32] = raw
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .with_context(|| format!("ed25519 key {}: too short", path.display()))?;
    let key = SigningKey::from_bytes(&seed);
    match raw.len() {
        32 => {}
        64 => {
            if raw[32..] != key.verifying_key().to_bytes() {
                bail!(
                    "ed25519 key {}: its public half does not belong to its seed",
                    path.display()
                );
            }
        }
        n => bail!(
            "ed25519 key {}: {n} bytes, expected 64 (seed and public key) or 32 (seed)",
            path.display()
        ),
    }
    Ok(key)
}

/// Load ed25519 public keys (base64, one per line).
pub fn load_ed25519_public(path: &Path) -> Result<Vec<VerifyingKey>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading ed25519 public key {}", path.display()))?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().map(str::trim).enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let raw = B64
            .decode(line)
            .with_context(|| format!("{} line {}: not base64", path.display(), i + 1))?;
        let bytes: [u8; 32] = raw.as_slice().try_into().with_context(|| {
            format!(
                "{} line {}: {} bytes, an ed25519 public key has 32",
                path.display(),
                i + 1,
                raw.len()
            )
        })?;
        keys.push(VerifyingKey::from_bytes(&bytes).with_context(|| {
            format!(
                "{} line {}: not an ed25519 public key",
                path.display(),
                i + 1
            )
        })?);
    }
    if keys.is_empty() {
        bail!("{} holds no ed25519 public key", path.display());
    }
    Ok(keys)
}

/// The byte strings of an `aay` entry of detached metadata.
pub fn signatures(md: &BTreeMap<String, Value>, key: &str) -> Result<Vec<Vec<u8>>> {
    let Some(v) = md.get(key) else {
        return Ok(Vec::new());
    };
    let items = v
        .as_array()
        .with_context(|| format!("detached metadata {key} is not an aay"))?;
    items
        .iter()
        .map(|it| match it {
            Value::Bytes(b) => Ok(b.clone()),
            Value::Array(Type::Byte, bytes) => bytes
                .iter()
                .map(|b| match b {
                    Value::Byte(x) => Ok(*x),
                    _ => bail!("detached metadata {key} is not an aay"),
                })
                .collect(),
            _ => bail!("detached metadata {key} is not an aay"),
        })
        .collect()
}

fn aay(sigs: Vec<Vec<u8>>) -> Value {
    Value::Array(
        Type::Array(Box::new(Type::Byte)),
        sigs.into_iter().map(Value::Bytes).collect(),
    )
}

/// The bytes every commit signature covers: the commit object as stored.
pub fn commit_bytes(repo: &Repo, commit: &str) -> Result<Vec<u8>> {
    repo.read_commit(commit)?;
    repo.read_object(commit, ObjectType::Commit)
}

/// Add signatures to `commit`'s detached metadata, keeping the others (a
/// previous signature by the same key is replaced). Returns the new
/// detached metadata.
pub fn sign_commit(
    repo: &Repo,
    commit: &str,
    pgp: Option<&PgpSigner>,
    ed25519: Option<&SigningKey>,
) -> Result<BTreeMap<String, Value>> {
    let data = commit_bytes(repo, commit)?;
    let mut md = repo
        .read_commit_detached_metadata(commit)?
        .unwrap_or_default();
    if let Some(s) = pgp {
        let mut sigs = signatures(&md, GPGSIGS)?;
        sigs.retain(|old| signature_issuer(old).as_deref() != Some(s.fingerprint.as_str()));
        sigs.push(
            s.sign_detached(&data[..])
                .with_context(|| format!("signing commit {commit}"))?,
        );
        md.insert(GPGSIGS.into(), aay(sigs));
    }
    if let Some(k) = ed25519 {
        let mut sigs = signatures(&md, ED25519)?;
        let public = k.verifying_key();
        sigs.retain(|old| !ed25519_ok(&public, &data, old));
        sigs.push(k.sign(&data).to_bytes().to_vec());
        md.insert(ED25519.into(), aay(sigs));
    }
    repo.write_commit_detached_metadata(commit, &md)?;
    Ok(md)
}

/// Sign `commit` with the key `keyid` of the build user's GnuPG keyring
/// (`GNUPGHOME` or ~/.gnupg), as rpm-ostree does for the treefile's
/// `gpg-key`: `gpg --detach-sign` of the commit object, added to
/// `ostree.gpgsigs` in the detached metadata (replacing an older signature
/// by the same key).
pub fn sign_commit_with_gpg(
    repo: &Repo,
    commit: &str,
    keyid: &str,
    homedir: Option<&Path>,
) -> Result<()> {
    let data = commit_bytes(repo, commit)?;
    let mut gpg = duct::cmd!(
        "gpg",
        "--batch",
        "--no-tty",
        "--local-user",
        keyid,
        "--detach-sign",
        "--output",
        "-"
    );
    if let Some(h) = homedir {
        gpg = gpg.env("GNUPGHOME", h);
    }
    let out = gpg
        .stdin_bytes(data)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .context("running gpg to sign the commit (treefile key gpg-key)")?;
    if !out.status.success() {
        bail!(
            "gpg could not sign commit {commit} with key {keyid:?} (treefile key gpg-key): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let sig = out.stdout;
    let issuer = signature_issuer(&sig);
    let mut md = repo
        .read_commit_detached_metadata(commit)?
        .unwrap_or_default();
    let mut sigs = signatures(&md, GPGSIGS)?;
    if issuer.is_some() {
        sigs.retain(|old| signature_issuer(old) != issuer);
    }
    sigs.push(sig);
    md.insert(GPGSIGS.into(), aay(sigs));
    repo.write_commit_detached_metadata(commit, &md)
}

fn ed25519_ok(key: &VerifyingKey, data: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
        return false;
    };
    key.verify(data, &sig).is_ok()
}

/// What a commit's signatures say.
#[derive(Debug, Default)]
pub struct CommitCheck {
    /// One entry per `ostree.gpgsigs` signature.
    pub gpg: Vec<std::result::Result<Signer, String>>,
    /// How many `ostree.sign.ed25519` signatures there are, and how many of
    /// them a given public key verifies (None when no key was given).
    pub ed25519_total: usize,
    pub ed25519_good: Option<usize>,
}

/// Check a commit's signatures against `keyring` and ed25519 `public` keys.
pub fn verify_commit(
    repo: &Repo,
    commit: &str,
    keyring: &Keyring,
    public: Option<&[VerifyingKey]>,
) -> Result<CommitCheck> {
    let data = commit_bytes(repo, commit)?;
    let md = repo
        .read_commit_detached_metadata(commit)?
        .unwrap_or_default();
    let mut out = CommitCheck::default();
    for sig in signatures(&md, GPGSIGS)? {
        out.gpg.push(
            keyring
                .verify_detached(&sig, &data[..])
                .map_err(|e| format!("{e:#}")),
        );
    }
    let eds = signatures(&md, ED25519)?;
    out.ed25519_total = eds.len();
    out.ed25519_good = public.map(|keys| {
        eds.iter()
            .filter(|s| keys.iter().any(|k| ed25519_ok(k, &data, s)))
            .count()
    });
    Ok(out)
}

/// Detached metadata signature entries as commitmeta.json renders bytes
/// (each signature a hex string), for the keys that are present.
pub fn commitmeta_json_entries(md: &BTreeMap<String, Value>) -> Vec<(String, serde_json::Value)> {
    [GPGSIGS, ED25519]
        .into_iter()
        .filter_map(|k| md.get(k).map(|v| (k.to_string(), v.to_json())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aay_round_trips_through_detached_metadata_bytes() {
        let mut md = BTreeMap::new();
        md.insert(GPGSIGS.to_string(), aay(vec![vec![1, 2, 3], vec![4; 70]]));
        let bytes = Value::dict(&md).to_bytes();
        let back = crate::ostree::objects::parse_metadata(&bytes).unwrap();
        assert_eq!(
            signatures(&back, GPGSIGS).unwrap(),
            vec![vec![1, 2, 3], vec![4; 70]]
        );
        assert!(signatures(&back, ED25519).unwrap().is_empty());
    }

    #[test]
    fn ed25519_key_files_in_ostree_format() {
        let d = tempfile::tempdir().unwrap();
        let k = SigningKey::from_bytes(&[7u8; 32]);
        let mut full = k.to_bytes().to_vec();
        full.extend_from_slice(&k.verifying_key().to_bytes());
        let p = d.path().join("ed");
        std::fs::write(&p, B64.encode(&full) + "\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_ed25519_secret(&p).unwrap().to_bytes(), k.to_bytes());
        // A public half that does not match is refused.
        full[40] ^= 1;
        std::fs::write(&p, B64.encode(&full)).unwrap();
        assert!(load_ed25519_secret(&p).is_err());
        let pubf = d.path().join("ed.pub");
        std::fs::write(&pubf, B64.encode(k.verifying_key().to_bytes()) + "\n").unwrap();
        assert_eq!(load_ed25519_public(&pubf).unwrap(), vec![k.verifying_key()]);
    }
}
