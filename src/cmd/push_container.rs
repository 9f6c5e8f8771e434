//! `cosa push-container`: push a build's ostree container image (the
//! `images.ostree` OCI archive) to a registry with oci-client, and record
//! it as meta.json `base-oscontainer`.

use std::str::FromStr;

use anyhow::{Context, Result, bail, ensure};
use serde_json::json;

use crate::cli::{GlobalOpts, PushContainerOpts};
use crate::config::workdir::Workdir;
use crate::publish::oci;
use crate::store::builds;
use crate::store::lock::WorkdirLock;
use crate::store::meta::{self, Meta};

/// The stream a build belongs to, when meta.json or commitmeta.json say.
fn stream_of(m: &Meta, dir: &std::path::Path) -> Option<String> {
    for k in ["stream", "coreos-assembler.stream"] {
        if let Some(s) = m.extra.get(k).and_then(|v| v.as_str()) {
            return Some(s.to_string());
        }
    }
    let cm: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("commitmeta.json")).ok()?).ok()?;
    cm["fedora-coreos.stream"].as_str().map(str::to_string)
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub fn push_container(global: &GlobalOpts, opts: PushContainerOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    let builds_dir = wd.builds_dir();
    let reference = oci_client::Reference::from_str(&opts.image)
        .with_context(|| format!("parsing image reference {:?}", opts.image))?;
    ensure!(
        reference.digest().is_none(),
        "{}: push to a tag, not a digest",
        opts.image
    );
    let registry = reference.registry().to_string();
    let repository = reference.repository().to_string();
    let (id, arch) = super::resolve_part(
        &wd,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
    )?;
    let dir = builds::build_dir(&builds_dir, &id, &arch);
    let meta_path = meta::meta_path(&builds_dir, &id, &arch);
    let m = Meta::read(&meta_path)?;
    let art = m
        .images
        .get("ostree")
        .with_context(|| format!("build {id} ({arch}) has no images.ostree"))?;
    let file = dir.join(&art.path);
    if !oci::is_ociarchive(&file) {
        bail!(
            "images.ostree of build {id} is {}, not an OCI archive: rebuild it with `cosa build`",
            art.path
        );
    }
    let (sum, _) = crate::util::digest::sha256_file(&file)?;
    ensure!(
        sum == art.sha256,
        "{} does not match the sha256 in meta.json",
        file.display()
    );

    let mut tags = Vec::new();
    let mut add = |t: String| -> Result<()> {
        ensure!(valid_tag(&t), "{t:?} is not a valid image tag");
        if !tags.contains(&t) {
            tags.push(t);
        }
        Ok(())
    };
    if let Some(t) = reference.tag().filter(|_| opts.image.contains(':')) {
        // oci-client fills in `latest`; only an explicit :TAG counts.
        if opts
            .image
            .rsplit('/')
            .next()
            .is_some_and(|l| l.contains(':'))
        {
            add(t.to_string())?;
        }
    }
    add(m.buildid.clone())?;
    if let Some(s) = stream_of(&m, &dir) {
        add(s)?;
    }
    for t in &opts.tags {
        add(t.clone())?;
    }

    let auth = match &opts.authfile {
        Some(f) => oci::auth_from_file(f, &registry)?,
        None => oci_client::secrets::RegistryAuth::Anonymous,
    };
    eprintln!(
        "Pushing {} to {registry}/{repository} as {}",
        file.display(),
        tags.join(", ")
    );
    let tmp = wd.tmp_dir();
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let digest = oci::push_ociarchive(
        &file,
        &tmp,
        &registry,
        &repository,
        &tags,
        &auth,
        opts.insecure,
    )?;

    let _lock = WorkdirLock::acquire(&wd.root)?;
    let mut m = Meta::read(&meta_path)?;
    m.extra.insert(
        "base-oscontainer".to_string(),
        json!({
            "image": format!("{registry}/{repository}"),
            "digest": digest,
            "tags": tags,
        }),
    );
    m.write(&meta_path)?;
    println!("{registry}/{repository}@{digest}");
    eprintln!("Recorded base-oscontainer in {}", meta_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_tag;

    #[test]
    fn tags() {
        assert!(valid_tag("41.20240520.dev.0"));
        assert!(valid_tag("stable"));
        assert!(!valid_tag(""));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("a/b"));
    }
}
