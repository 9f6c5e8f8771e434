//! The build's SBOM: an SPDX 2.3 JSON document
//! (`<name>-<id>-sbom.<arch>.spdx.json`).
//!
//! - One package for the OS (the commit), which CONTAINS one package per
//!   RPM, in install order.
//! - Each RPM package has its NEVRA, supplier (the RPM's vendor), its
//!   license (the RPM's string, as a `LicenseRef-` with the text, since RPM
//!   license strings need not be SPDX expressions), the download location
//!   (the repo URL it came from), the RPM file's sha256 and a
//!   `pkg:rpm/<vendor>/<name>@<version>-<release>?arch=…&epoch=…` purl.
//! - Each RPM package CONTAINS its regular files as they are in the
//!   committed tree (`/etc` at `/usr/etc`), with their SHA1 and SHA256 and
//!   the package verification code SPDX requires. Files the compose left
//!   out (documentation, `/var`, removed files) are not listed.
//! - The config repo commit and the lockfile digest are recorded on the OS
//!   package.
//!
//! Deterministic: the same tree and inputs give the same bytes (the
//! creation time is the commit's).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::rpm::PackageMeta;
use crate::rpm::rpmdb::{Header, read_package_headers, tag};

const LICENSE: u32 = 1014;
const VENDOR: u32 = 1011;
const FILEMODES: u32 = 1030;
const GHOST: u32 = 1 << 6;

/// What the SBOM describes.
pub struct SbomInput<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub arch: &'a str,
    pub commit: &'a str,
    /// RFC 3339, the commit's timestamp.
    pub created: &'a str,
    /// The packages in install order, with their RPM files.
    pub packages: &'a [(PackageMeta, PathBuf)],
    /// repo id -> its first base URL (download locations).
    pub repo_urls: BTreeMap<String, String>,
    /// The committed tree (after postprocess).
    pub tree: &'a Path,
    pub config_gitrev: Option<&'a str>,
    /// sha256 of the generated lockfile.
    pub lockfile_sha256: Option<&'a str>,
}

/// SPDX ids: letters, digits, `.` and `-`.
fn spdx_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Whether SPDX accepts `u` as a download location: an http(s) or ftp URL
/// on a host name ending in a 2-5 letter top-level domain (SPDX's own
/// pattern; an IP address or a file:// URL is not one).
fn spdx_download_url(u: &str) -> bool {
    let Ok(url) = url::Url::parse(u) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https" | "ftp") {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(d)) => d.rsplit('.').next().is_some_and(|tld| {
            d.contains('.')
                && (2..=5).contains(&tld.len())
                && tld.bytes().all(|b| b.is_ascii_alphabetic())
        }),
        _ => false,
    }
}

/// Where a package path is in the committed tree.
fn tree_path(tree: &Path, rpm_path: &str) -> Option<PathBuf> {
    let rel = rpm_path.trim_start_matches('/');
    if rel.starts_with("var/") || rel.is_empty() {
        return None;
    }
    let rel = match rel.strip_prefix("etc/") {
        Some(r) => format!("usr/etc/{r}"),
        None => rel.to_string(),
    };
    let p = tree.join(rel);
    std::fs::symlink_metadata(&p)
        .ok()
        .filter(|m| m.is_file())
        .map(|_| p)
}

/// (sha1, sha256) of a file, cached by inode (hardlinks are read once).
fn digests(
    p: &Path,
    cache: &mut HashMap<(u64, u64), (String, String)>,
) -> Result<(String, String)> {
    let md = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
    if let Some(d) = cache.get(&(md.dev(), md.ino())) {
        return Ok(d.clone());
    }
    let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    let sha1 = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(&data))
    };
    let sha256 = crate::util::digest::sha256_hex(&data);
    cache.insert((md.dev(), md.ino()), (sha1.clone(), sha256.clone()));
    Ok((sha1, sha256))
}

fn purl_part(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The SPDX document.
pub fn generate(input: &SbomInput) -> Result<Value> {
    let os_id = "SPDXRef-OS";
    let mut packages = vec![json!({
        "SPDXID": os_id,
        "name": input.name,
        "versionInfo": input.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "comment": format!(
            "OSTree commit {} ({}); config repo commit {}; lockfile sha256 {}",
            input.commit,
            input.arch,
            input.config_gitrev.unwrap_or("unknown"),
            input.lockfile_sha256.unwrap_or("none"),
        ),
    })];
    let mut files = Vec::new();
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": os_id,
    })];
    let mut licenses: BTreeMap<String, String> = BTreeMap::new();
    let mut cache = HashMap::new();
    for (i, (meta, rpm)) in input.packages.iter().enumerate() {
        let h = read_package_headers(rpm)?;
        let main: &Header = &h.main;
        let vendor = main.string(VENDOR)?.filter(|v| !v.is_empty());
        let license = main.string(LICENSE)?.filter(|v| !v.is_empty());
        let pkg_id = format!("SPDXRef-Package-{i}-{}", spdx_id(&meta.name));
        let evr = if meta.epoch > 0 {
            format!("{}:{}-{}", meta.epoch, meta.version, meta.release)
        } else {
            format!("{}-{}", meta.version, meta.release)
        };
        let license_ref = match &license {
            Some(l) => {
                let id = format!("LicenseRef-rpm-{}", spdx_id(l));
                licenses.insert(id.clone(), l.clone());
                id
            }
            None => "NOASSERTION".to_string(),
        };
        let url = input
            .repo_urls
            .get(&meta.repo)
            .map(|base| format!("{}/{}", base.trim_end_matches('/'), meta.location));
        // SPDX download locations are network URLs; a local repo's file://
        // URL goes into the package's source information instead.
        let (download, source_info) = match url {
            Some(u) if spdx_download_url(&u) => (u, None),
            Some(u) => (
                "NOASSERTION".to_string(),
                Some(format!("downloaded from {u}")),
            ),
            None => ("NOASSERTION".to_string(), None),
        };
        let namespace = vendor
            .as_deref()
            .map(|v| purl_part(&v.to_lowercase()))
            .unwrap_or_else(|| "unknown".into());
        let mut purl = format!(
            "pkg:rpm/{namespace}/{}@{}-{}?arch={}",
            purl_part(&meta.name),
            purl_part(&meta.version),
            purl_part(&meta.release),
            purl_part(&meta.arch)
        );
        if meta.epoch > 0 {
            purl.push_str(&format!("&epoch={}", meta.epoch));
        }
        // The package's regular files as they are in the tree.
        let paths = main.file_paths()?;
        let modes = main.u32s(FILEMODES)?;
        let flags = main.u32s(tag::FILEFLAGS)?;
        let mut sha1s = Vec::new();
        let mut file_ids = Vec::new();
        for (j, p) in paths.iter().enumerate() {
            let regular = modes.get(j).is_some_and(|m| m & 0o170000 == 0o100000);
            let ghost = flags.get(j).is_some_and(|f| f & GHOST != 0);
            if !regular || ghost {
                continue;
            }
            let Some(tp) = tree_path(input.tree, p) else {
                continue;
            };
            let (sha1, sha256) = digests(&tp, &mut cache)?;
            let fid = format!("SPDXRef-File-{i}-{j}");
            let rel = tp
                .strip_prefix(input.tree)
                .unwrap_or(&tp)
                .display()
                .to_string();
            files.push(json!({
                "SPDXID": fid,
                "fileName": format!("./{rel}"),
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": sha1},
                    {"algorithm": "SHA256", "checksumValue": sha256},
                ],
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            }));
            sha1s.push(sha1);
            file_ids.push(fid);
        }
        let mut pkg = json!({
            "SPDXID": pkg_id,
            "name": meta.name,
            "versionInfo": evr,
            "supplier": match &vendor {
                Some(v) => format!("Organization: {v}"),
                None => "NOASSERTION".into(),
            },
            "downloadLocation": download,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": license_ref,
            "copyrightText": "NOASSERTION",
            "checksums": if meta.checksum_type == "sha256" && !meta.checksum.is_empty() {
                json!([{"algorithm": "SHA256", "checksumValue": meta.checksum}])
            } else {
                json!([])
            },
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }],
            "filesAnalyzed": !file_ids.is_empty(),
        });
        if let Some(si) = source_info {
            pkg["sourceInfo"] = json!(si);
        }
        if !file_ids.is_empty() {
            sha1s.sort();
            use sha1::Digest;
            let code = hex::encode(sha1::Sha1::digest(sha1s.concat().as_bytes()));
            pkg["packageVerificationCode"] = json!({"packageVerificationCodeValue": code});
            pkg["hasFiles"] = json!(file_ids);
        }
        packages.push(pkg);
        relationships.push(json!({
            "spdxElementId": os_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": pkg_id,
        }));
    }
    let extracted: Vec<Value> = licenses
        .iter()
        .map(|(id, text)| {
            json!({
                "licenseId": id,
                "extractedText": text,
                "name": text,
            })
        })
        .collect();
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}-{}", input.name, input.version, input.arch),
        "documentNamespace": format!(
            "https://cosa.invalid/spdx/{}/{}/{}/{}",
            purl_part(input.name),
            purl_part(input.version),
            input.arch,
            input.commit
        ),
        "creationInfo": {
            "created": input.created,
            "creators": [format!("Tool: cosa-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = json!(extracted);
    }
    Ok(doc)
}

/// The SBOM's file name for a build.
pub fn file_name(name: &str, version: &str, arch: &str) -> String {
    format!("{name}-{version}-sbom.{arch}.spdx.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_locations_spdx_accepts() {
        assert!(spdx_download_url("https://dl.fedoraproject.org/pub/x.rpm"));
        assert!(!spdx_download_url("http://127.0.0.1:8080/x.rpm"));
        assert!(!spdx_download_url("file:///srv/repo/x.rpm"));
        assert!(!spdx_download_url("http://localhost/x.rpm"));
    }

    #[test]
    fn ids_and_purls_are_well_formed() {
        assert_eq!(spdx_id("gcc-c++"), "gcc-c--");
        assert_eq!(purl_part("1.2+git~3"), "1.2%2Bgit~3");
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/etc")).unwrap();
        std::fs::write(t.path().join("usr/etc/a.conf"), "x").unwrap();
        assert_eq!(
            tree_path(t.path(), "/etc/a.conf"),
            Some(t.path().join("usr/etc/a.conf"))
        );
        assert_eq!(tree_path(t.path(), "/var/lib/x"), None);
        assert_eq!(tree_path(t.path(), "/etc/missing"), None);
    }
}
