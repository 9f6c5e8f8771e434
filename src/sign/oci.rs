//! Containers' "simple signing" signatures (the format of
//! containers/image's `signature/simple.go`, read by podman, skopeo and
//! rpm-ostree's `ostree-image-signed:`): a JSON payload naming the image
//! and its manifest digest, in an OpenPGP signed message, stored in a
//! lookaside ("sigstore") layout: `<dir>/<repo path>@sha256=<hex>/signature-N`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{Keyring, PgpSigner, Signer};
use crate::util;

/// The `critical.type` of a simple signing payload.
pub const SIGNATURE_TYPE: &str = "atomic container signature";

/// The payload for `docker_reference` (an image name, with or without tag)
/// at `digest` (`sha256:<hex>`).
pub fn payload(docker_reference: &str, digest: &str, timestamp: i64) -> Value {
    json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": {
            "creator": format!("cosa {}", env!("CARGO_PKG_VERSION")),
            "timestamp": timestamp,
        }
    })
}

/// Split a `sha256:<hex>` digest, checking its form.
pub fn digest_hex(digest: &str) -> Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .with_context(|| format!("image digest {digest:?} is not sha256:<hex>"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("image digest {digest:?} is not sha256 followed by 64 hex digits");
    }
    Ok(hex)
}

/// The repository path of an image name: without registry host, tag or
/// digest (`quay.io/fedora/fedora-coreos:stable` -> `fedora/fedora-coreos`).
pub fn repo_path(image: &str) -> Result<String> {
    let name = image.split('@').next().unwrap_or(image);
    let rest = match name.split_once('/') {
        Some((f, r)) if f.contains('.') || f.contains(':') || f == "localhost" => Some(r),
        _ => None,
    };
    let path = rest.unwrap_or(name);
    // A tag is a ':' after the last '/'.
    let path = match path.rfind(':') {
        Some(i) if !path[i..].contains('/') => &path[..i],
        _ => path,
    };
    if path.is_empty()
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("cannot take a repository path from image name {image:?}");
    }
    Ok(path.to_string())
}

/// The directory of one image's signatures in a lookaside store.
pub fn lookaside_dir(sigstore: &Path, image: &str, digest: &str) -> Result<PathBuf> {
    let hex = digest_hex(digest)?;
    Ok(sigstore.join(format!("{}@sha256={hex}", repo_path(image)?)))
}

/// Existing `signature-N` files of a lookaside directory, by N.
pub fn list_signatures(dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let name = e.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("signature-"))
            .and_then(|n| n.parse::<u32>().ok())
        {
            out.push((n, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Sign `image` at `digest` into the lookaside store; a signature made
/// earlier by the same key is replaced, otherwise the next free
/// `signature-N` is used. Returns the file written.
pub fn sign_image(
    signer: &PgpSigner,
    sigstore: &Path,
    image: &str,
    digest: &str,
) -> Result<PathBuf> {
    let dir = lookaside_dir(sigstore, image, digest)?;
    let body = serde_json::to_vec(&payload(image, digest, util::time::now_secs()))?;
    let msg = signer
        .sign_message(&body)
        .with_context(|| format!("signing container image {image}@{digest}"))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let existing = list_signatures(&dir)?;
    let mine = existing.iter().find(|(_, p)| {
        std::fs::read(p)
            .ok()
            .and_then(|d| message_issuer(&d))
            .is_some_and(|f| f == signer.fingerprint)
    });
    let path = match mine {
        Some((_, p)) => p.clone(),
        None => {
            let n = existing.last().map_or(1, |(n, _)| n + 1);
            dir.join(format!("signature-{n}"))
        }
    };
    util::write_atomic(&path, &msg)?;
    Ok(path)
}

/// The issuer fingerprint of a signed message's signature, if it says.
fn message_issuer(data: &[u8]) -> Option<String> {
    use pgp::packet::{Packet, PacketParser};
    PacketParser::new(std::io::Cursor::new(data))
        .filter_map(|p| p.ok())
        .find_map(|p| match p {
            Packet::Signature(s) => s
                .issuer_fingerprint()
                .first()
                .map(|f| hex::encode_upper(f.as_bytes())),
            _ => None,
        })
}

/// Check one simple signing signature file: a good OpenPGP signature by a
/// keyring key over a payload naming `image` (same repository) and `digest`.
pub fn verify_signature(
    keyring: &Keyring,
    data: &[u8],
    image: &str,
    digest: &str,
) -> Result<Signer> {
    let (body, signer) = keyring.verify_message(data)?;
    let v: Value = serde_json::from_slice(&body).context("the signed payload is not JSON")?;
    let crit = &v["critical"];
    if crit["type"] != SIGNATURE_TYPE {
        bail!(
            "the payload's critical.type is {}, not {SIGNATURE_TYPE:?}",
            crit["type"]
        );
    }
    let got_digest = crit["image"]["docker-manifest-digest"]
        .as_str()
        .unwrap_or("");
    if got_digest != digest {
        bail!("the payload signs digest {got_digest:?}, the build's image is {digest}");
    }
    let got_ref = crit["identity"]["docker-reference"].as_str().unwrap_or("");
    if repo_path(got_ref).ok() != repo_path(image).ok() {
        bail!("the payload signs image {got_ref:?}, the build's image is {image}");
    }
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths_drop_registry_tag_and_digest() {
        for (img, want) in [
            (
                "quay.io/fedora/fedora-coreos:stable",
                "fedora/fedora-coreos",
            ),
            ("127.0.0.1:5000/cosa/os", "cosa/os"),
            ("localhost/os:1", "os"),
            ("library/busybox", "library/busybox"),
            ("busybox:latest", "busybox"),
            ("quay.io/a/b@sha256:00", "a/b"),
        ] {
            assert_eq!(repo_path(img).unwrap(), want, "{img}");
        }
        assert!(repo_path("quay.io/../x").is_err());
    }

    #[test]
    fn lookaside_layout() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let p = lookaside_dir(Path::new("/s"), "quay.io/a/b:1", &d).unwrap();
        assert_eq!(p, Path::new(&format!("/s/a/b@sha256={}", "ab".repeat(32))));
        assert!(lookaside_dir(Path::new("/s"), "a", "sha256:zz").is_err());
    }

    #[test]
    fn payload_shape() {
        let p = payload("q.io/a/b", "sha256:00", 5);
        assert_eq!(p["critical"]["type"], SIGNATURE_TYPE);
        assert_eq!(p["critical"]["identity"]["docker-reference"], "q.io/a/b");
        assert_eq!(
            p["critical"]["image"]["docker-manifest-digest"],
            "sha256:00"
        );
        assert_eq!(p["optional"]["timestamp"], 5);
    }
}
