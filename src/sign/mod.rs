//! OpenPGP and ed25519 signing and verification, in Rust (rPGP and
//! ed25519-dalek): no GnuPG at run time.
//!
//! - [`PgpSigner`]: an OpenPGP secret key (armored or binary) unlocked with a
//!   passphrase; makes detached binary signatures (`<artifact>.sig`, the
//!   commit's `ostree.gpgsigs`) and signed messages (container "simple
//!   signing" signatures).
//! - [`Keyring`]: OpenPGP public keys (armored or binary, one or many) that
//!   check those signatures.
//! - [`ostree`]: signatures of an OSTree commit in its detached metadata.
//! - [`oci`]: containers' simple signing payloads in a lookaside layout.
//!
//! Secrets are read only from files the caller alone can read
//! ([`check_private_file`]), are never printed, and stay in memory that is
//! wiped when dropped.

pub mod oci;
pub mod ostree;

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use pgp::composed::{
    Deserializable, DetachedSignature, MessageBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{PublicKey, PublicSubkey, SecretKey, SecretSubkey, Signature};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, SigningKey};
use zeroize::Zeroizing;

/// Environment variable holding the signing key's passphrase.
pub const PASSPHRASE_ENV: &str = "COSA_SIGN_PASSPHRASE";

/// Refuse a secret file that its group or others may read or write.
pub fn check_private_file(path: &Path, what: &str) -> Result<()> {
    let md =
        std::fs::metadata(path).with_context(|| format!("reading {what} {}", path.display()))?;
    if !md.is_file() {
        bail!("{what} {} is not a regular file", path.display());
    }
    let mode = md.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        bail!(
            "refusing {what} {}: its mode {mode:04o} lets group or others access it; \
             run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Read a secret file (after [`check_private_file`]) into wiped memory.
pub fn read_private_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    check_private_file(path, what)?;
    let mut buf = Zeroizing::new(Vec::new());
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .with_context(|| format!("reading {what} {}", path.display()))?;
    Ok(buf)
}

/// The passphrase: from `file` (first line, private), else from
/// `$COSA_SIGN_PASSPHRASE`, else none (an unprotected key).
pub fn passphrase(file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(f) = file {
        let data = read_private_file(f, "passphrase file")?;
        let line = data.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        return Ok(Zeroizing::new(line.to_vec()));
    }
    match std::env::var_os(PASSPHRASE_ENV) {
        Some(v) => Ok(Zeroizing::new(v.into_encoded_bytes())),
        None => Ok(Zeroizing::new(Vec::new())),
    }
}

/// The key that makes signatures: the primary key or a signing subkey.
#[derive(Debug, Clone)]
enum AnySecret {
    Primary(SecretKey),
    Sub(SecretSubkey),
}

impl AnySecret {
    fn key(&self) -> &dyn SigningKey {
        match self {
            AnySecret::Primary(k) => k,
            AnySecret::Sub(k) => k,
        }
    }
}

/// An OpenPGP secret key ready to sign.
pub struct PgpSigner {
    key: AnySecret,
    password: Zeroizing<Vec<u8>>,
    /// Hex fingerprint of the signing (sub)key.
    pub fingerprint: String,
    /// The first user id of the certificate, for messages.
    pub user_id: String,
}

impl std::fmt::Debug for PgpSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgpSigner")
            .field("fingerprint", &self.fingerprint)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl PgpSigner {
    /// Load the first certificate of `path` (armored or binary; mode 0600 or
    /// stricter) and check that `password` unlocks it.
    pub fn load(path: &Path, password: Zeroizing<Vec<u8>>) -> Result<PgpSigner> {
        let data = read_private_file(path, "signing key")?;
        let (mut keys, _) = SignedSecretKey::from_reader_many(std::io::Cursor::new(&data[..]))
            .with_context(|| format!("parsing OpenPGP secret key {}", path.display()))?;
        let cert = keys
            .next()
            .with_context(|| format!("{} holds no OpenPGP secret key", path.display()))?
            .with_context(|| format!("parsing OpenPGP secret key {}", path.display()))?;
        cert.verify_bindings()
            .with_context(|| format!("checking the self-signatures of {}", path.display()))?;
        let sub = cert
            .secret_subkeys
            .iter()
            .find(|sk| sk.signatures.iter().any(|s| s.key_flags().sign()));
        let key = match sub {
            Some(sk) => AnySecret::Sub(sk.key.clone()),
            None => AnySecret::Primary(cert.primary_key.clone()),
        };
        let fingerprint = hex::encode_upper(key.key().fingerprint().as_bytes());
        let user_id = cert
            .details
            .users
            .first()
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
            .unwrap_or_default();
        let signer = PgpSigner {
            key,
            password,
            fingerprint,
            user_id,
        };
        // Unlock once now so that a wrong passphrase fails before any work.
        signer.sign_detached(&b"cosa"[..]).with_context(|| {
            format!(
                "unlocking OpenPGP key {} from {} (wrong or missing passphrase? \
                 set ${PASSPHRASE_ENV} or use --passphrase-file)",
                signer.fingerprint,
                path.display()
            )
        })?;
        Ok(signer)
    }

    fn password(&self) -> Password {
        Password::from(self.password.as_slice())
    }

    /// A detached binary signature (`gpg --detach-sign` without `--armor`).
    pub fn sign_detached(&self, data: impl Read) -> Result<Vec<u8>> {
        let sig = DetachedSignature::sign_binary_data(
            rand::rngs::OsRng,
            &Box::new(self.key.key()),
            &self.password(),
            HashAlgorithm::Sha256,
            data,
        )
        .context("making an OpenPGP signature")?;
        sig.to_bytes().context("serializing an OpenPGP signature")
    }

    /// Sign the file at `path` (streamed).
    pub fn sign_file(&self, path: &Path) -> Result<Vec<u8>> {
        let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        self.sign_detached(BufReader::new(f))
            .with_context(|| format!("signing {}", path.display()))
    }

    /// A binary signed message holding `payload` (`gpg --sign`).
    pub fn sign_message(&self, payload: &[u8]) -> Result<Vec<u8>> {
        let mut b = MessageBuilder::from_bytes("", payload.to_vec());
        b.sign(self.key.key(), self.password(), HashAlgorithm::Sha256);
        b.to_vec(rand::rngs::OsRng)
            .context("making an OpenPGP signed message")
    }
}

/// A key that may have made a signature, with its certificate's name.
struct Candidate<'a> {
    key: CandidateKey<'a>,
    user_id: String,
}

enum CandidateKey<'a> {
    Primary(&'a PublicKey),
    Sub(&'a PublicSubkey),
}

impl Candidate<'_> {
    fn details(&self) -> &dyn KeyDetails {
        match self.key {
            CandidateKey::Primary(k) => k,
            CandidateKey::Sub(k) => k,
        }
    }

    fn verify(&self, sig: &Signature, data: impl Read) -> pgp::errors::Result<()> {
        match self.key {
            CandidateKey::Primary(k) => sig.verify(k, data),
            CandidateKey::Sub(k) => sig.verify(k, data),
        }
    }
}

/// Who made a good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub fingerprint: String,
    pub user_id: String,
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.user_id.is_empty() {
            write!(f, "{}", self.fingerprint)
        } else {
            write!(f, "{} ({})", self.user_id, self.fingerprint)
        }
    }
}

/// OpenPGP public keys that signatures are checked against.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    pub keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Every certificate in `path` (armored or binary, public or secret:
    /// secret keys count by their public part).
    pub fn load(path: &Path) -> Result<Keyring> {
        let data =
            std::fs::read(path).with_context(|| format!("reading keyring {}", path.display()))?;
        let mut keys = Vec::new();
        if let Ok((iter, _)) = SignedPublicKey::from_reader_many(std::io::Cursor::new(&data[..])) {
            for k in iter.flatten() {
                keys.push(k);
            }
        }
        if keys.is_empty()
            && let Ok((iter, _)) =
                SignedSecretKey::from_reader_many(std::io::Cursor::new(&data[..]))
        {
            keys.extend(iter.flatten().map(|k| k.to_public_key()));
        }
        if keys.is_empty() {
            bail!("keyring {} holds no OpenPGP public key", path.display());
        }
        for k in &keys {
            k.verify_bindings().with_context(|| {
                format!(
                    "checking the self-signatures of key {} in {}",
                    hex::encode_upper(k.primary_key.fingerprint().as_bytes()),
                    path.display()
                )
            })?;
        }
        Ok(Keyring { keys })
    }

    fn candidates(&self) -> Vec<Candidate<'_>> {
        let mut out = Vec::new();
        for k in &self.keys {
            let user_id = k
                .details
                .users
                .first()
                .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
                .unwrap_or_default();
            out.push(Candidate {
                key: CandidateKey::Primary(&k.primary_key),
                user_id: user_id.clone(),
            });
            for s in &k.public_subkeys {
                out.push(Candidate {
                    key: CandidateKey::Sub(&s.key),
                    user_id: user_id.clone(),
                });
            }
        }
        out
    }

    /// The keyring keys a signature names as its issuer.
    fn issuers<'a>(&'a self, sig: &Signature) -> Vec<Candidate<'a>> {
        let fprs: Vec<Vec<u8>> = sig
            .issuer_fingerprint()
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .collect();
        let ids: Vec<Vec<u8>> = sig
            .issuer_key_id()
            .iter()
            .map(|k| k.as_ref().to_vec())
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        self.candidates()
            .into_iter()
            .filter(|c| {
                let d = c.details();
                fprs.contains(&d.fingerprint().as_bytes().to_vec())
                    || ids.contains(&d.legacy_key_id().as_ref().to_vec())
            })
            // The same key listed twice in a keyring is one candidate.
            .filter(|c| seen.insert(c.details().fingerprint().as_bytes().to_vec()))
            .collect()
    }

    /// Check one detached signature (binary or armored) over `data`.
    pub fn verify_detached(&self, sig: &[u8], mut data: impl Read) -> Result<Signer> {
        let sig = parse_signature(sig)?;
        let issuers = self.issuers(&sig);
        if issuers.is_empty() {
            bail!(
                "signature made by a key that is not in the keyring (issuer {})",
                issuer_text(&sig)
            );
        }
        // Read once; several candidate keys (rare) each hash it again.
        let mut buf = Vec::new();
        if issuers.len() > 1 {
            data.read_to_end(&mut buf)
                .context("reading the signed data")?;
        }
        let mut last = None;
        for (i, c) in issuers.iter().enumerate() {
            let r = if issuers.len() > 1 {
                c.verify(&sig, &buf[..])
            } else {
                c.verify(&sig, &mut data)
            };
            match r {
                Ok(()) => {
                    return Ok(Signer {
                        fingerprint: hex::encode_upper(c.details().fingerprint().as_bytes()),
                        user_id: c.user_id.clone(),
                    });
                }
                Err(e) => last = Some((i, e)),
            }
        }
        let (i, e) = last.context("no candidate key")?;
        // rPGP's own text is an implementation detail (sometimes an
        // internal assertion); say what it means, keep it for --debug.
        tracing::debug!("OpenPGP verification error: {e}");
        bail!(
            "the signature by key {} does not match the data: the data changed after it was \
             signed, or the signature is for other data",
            hex::encode_upper(issuers[i].details().fingerprint().as_bytes())
        )
    }

    /// Check the file at `path` against its detached signature.
    pub fn verify_file(&self, sig: &[u8], path: &Path) -> Result<Signer> {
        let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        self.verify_detached(sig, BufReader::new(f))
    }

    /// Check a signed message (binary or armored); return its payload and signer.
    pub fn verify_message(&self, msg: &[u8]) -> Result<(Vec<u8>, Signer)> {
        let (mut m, _) = pgp::composed::Message::from_reader(std::io::Cursor::new(msg))
            .context("parsing an OpenPGP signed message")?;
        if m.is_compressed() {
            m = m.decompress().context("decompressing an OpenPGP message")?;
        }
        if !m.is_signed() {
            bail!("the OpenPGP message is not signed");
        }
        let payload = m
            .as_data_vec()
            .context("reading the payload of an OpenPGP message")?;
        for c in self.candidates() {
            let r = match c.key {
                CandidateKey::Primary(k) => m.verify(k),
                CandidateKey::Sub(k) => m.verify(k),
            };
            if r.is_ok() {
                return Ok((
                    payload,
                    Signer {
                        fingerprint: hex::encode_upper(c.details().fingerprint().as_bytes()),
                        user_id: c.user_id.clone(),
                    },
                ));
            }
        }
        bail!("the message's signature was not made by any key in the keyring, or does not match")
    }
}

fn issuer_text(sig: &Signature) -> String {
    if let Some(f) = sig.issuer_fingerprint().first() {
        return hex::encode_upper(f.as_bytes());
    }
    if let Some(k) = sig.issuer_key_id().first() {
        return hex::encode_upper(k.as_ref());
    }
    "unknown".into()
}

/// Parse one OpenPGP signature packet (binary or armored).
pub fn parse_signature(data: &[u8]) -> Result<Signature> {
    let (mut sigs, _) = DetachedSignature::from_reader_many(std::io::Cursor::new(data))
        .context("parsing an OpenPGP signature")?;
    let sig = sigs
        .next()
        .context("no OpenPGP signature found")?
        .context("parsing an OpenPGP signature")?;
    Ok(sig.signature)
}

/// Hex fingerprint of the key that issued `sig`, if it says.
pub fn signature_issuer(sig: &[u8]) -> Option<String> {
    parse_signature(sig).ok().map(|s| issuer_text(&s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn loose_modes_are_refused_with_the_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = format!("{:#}", check_private_file(&p, "signing key").unwrap_err());
        assert!(e.contains("0640") && e.contains("signing key"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        check_private_file(&p, "signing key").unwrap();
    }

    #[test]
    fn a_keyring_without_keys_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        std::fs::write(&p, "not a key").unwrap();
        assert!(Keyring::load(&p).is_err());
    }
}
