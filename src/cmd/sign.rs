//! `cosa sign` and `cosa verify`: OpenPGP signatures next to a build's
//! artifacts (`<artifact>.sig`, the name release.json's `signature` URLs
//! point at), signatures of its OSTree commit in the commit's detached
//! metadata, and simple signing signatures of its container image.
//!
//! Order inside `cosa sign`: the commit first (the build's ostree artifact is
//! re-exported so that it carries the signatures, and meta.json's sha256 and
//! size follow), then the container image, then the artifacts, so that the
//! tarball's `.sig` covers its final bytes.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::util::digest::HashingReader;
use anyhow::{Context, Result, bail};

use crate::cli::{GlobalOpts, SignOpts, VerifyOpts};
use crate::config::workdir::Workdir;
use crate::ostree::{ObjectType, Repo};
use crate::sign::{self, Keyring, PgpSigner, oci, ostree as osign};
use crate::store::builds;
use crate::store::lock::WorkdirLock;
use crate::store::meta::{self, Meta};
use crate::util;

/// The build a verb works on.
struct Target {
    wd: Workdir,
    id: String,
    arch: String,
    dir: PathBuf,
}

fn target(global: &GlobalOpts, build: Option<&str>, arch: Option<&str>) -> Result<Target> {
    let wd = Workdir::open(&global.workdir)?;
    let (id, arch) = super::resolve_part(&wd, build, arch)?;
    let dir = builds::build_dir(&wd.builds_dir(), &id, &arch);
    Ok(Target { wd, id, arch, dir })
}

/// The file at `path`, read through a sha256.
fn hashing(path: &Path) -> Result<HashingReader<BufReader<File>>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(HashingReader::sha256(BufReader::with_capacity(1 << 20, f)))
}

/// `base-oscontainer` {image, digest} of a build, if any.
fn oscontainer(m: &Meta) -> Result<Option<(String, String)>> {
    let Some(v) = m.extra.get("base-oscontainer") else {
        return Ok(None);
    };
    let image = v["image"]
        .as_str()
        .context("meta.json base-oscontainer has no image")?;
    let digest = v["digest"]
        .as_str()
        .context("meta.json base-oscontainer has no digest")?;
    Ok(Some((image.to_string(), digest.to_string())))
}

pub fn sign(global: &GlobalOpts, opts: SignOpts) -> Result<()> {
    if !(opts.images || opts.ostree || opts.oci || opts.provenance) {
        bail!("nothing to sign: give --images, --ostree, --oci and/or --provenance");
    }
    let t = target(
        global,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
    )?;
    let _lock = WorkdirLock::acquire(&t.wd.root)?;
    let meta_path = meta::meta_path(&t.wd.builds_dir(), &t.id, &t.arch);
    let mut m = Meta::read(&meta_path)?;
    for p in builds::remove_partial_artifacts(&t.dir, &m) {
        eprintln!("Removed leftover of an interrupted run: {}", p.display());
    }

    // Everything that can fail cheaply fails before anything is written.
    let container = if opts.oci {
        Some(oscontainer(&m)?.with_context(|| {
            format!(
                "build {} {} has no base-oscontainer in meta.json: push it first \
                 (cosa push-container) or leave out --oci",
                t.id, t.arch
            )
        })?)
    } else {
        None
    };
    let ed25519 = opts
        .ed25519_key
        .as_deref()
        .map(osign::load_ed25519_secret)
        .transpose()?;
    let pass = sign::passphrase(opts.passphrase_file.as_deref())?;
    let signer = PgpSigner::load(&opts.key, pass)?;
    eprintln!(
        "Signing build {} {} with OpenPGP key {} {}",
        t.id, t.arch, signer.fingerprint, signer.user_id
    );

    if opts.ostree {
        sign_ostree(&t, &mut m, &meta_path, &signer, ed25519.as_ref())?;
        if !opts.provenance && m.images.contains_key("provenance") {
            eprintln!(
                "warning: the ostree artifact was re-exported with its signatures; the \
                 provenance names its old digest: run `cosa sign --provenance` again"
            );
        }
    }
    if let Some((image, digest)) = container {
        let store = opts
            .sigstore
            .clone()
            .unwrap_or_else(|| t.dir.join("sigstore"));
        let p = oci::sign_image(&signer, &store, &image, &digest)?;
        eprintln!("Signed container image {image}@{digest}: {}", p.display());
    }
    if opts.provenance {
        write_provenance(&t, &mut m, &meta_path, &signer)?;
    }
    if opts.images {
        for (name, art) in &m.images {
            let file = t.dir.join(&art.path);
            let mut h = hashing(&file)?;
            let sig = signer
                .sign_detached(&mut h)
                .with_context(|| format!("signing {}", file.display()))?;
            let (_, sum, _) = h.finish();
            if sum != art.sha256 {
                bail!(
                    "not signing image {name}: {} has sha256 {sum} but meta.json says {}",
                    file.display(),
                    art.sha256
                );
            }
            let sig_path = t.dir.join(format!("{}.sig", art.path));
            util::write_atomic(&sig_path, &sig)?;
            eprintln!("Signed {name}: {}", sig_path.display());
        }
    }
    Ok(())
}

/// The build's provenance, signed, recorded as images.provenance.
fn write_provenance(t: &Target, m: &mut Meta, meta_path: &Path, signer: &PgpSigner) -> Result<()> {
    use crate::supply::provenance;
    let commitmeta = meta::read_value(&t.dir.join("commitmeta.json"))?;
    let sbom = m
        .images
        .get("sbom")
        .map(|a| meta::read_value(&t.dir.join(&a.path)))
        .transpose()?;
    let st = provenance::statement(m, &t.dir, &commitmeta, sbom.as_ref())?;
    let env = provenance::envelope(&st, signer)?;
    let file = provenance::file_name(&m.name, &m.buildid, &t.arch);
    let path = t.dir.join(&file);
    util::write_json_atomic(&path, &env)?;
    let (sha256, size) = crate::util::digest::sha256_file(&path)?;
    m.images.insert(
        "provenance".into(),
        crate::store::meta::Artifact {
            path: file.clone(),
            sha256,
            size: Some(size),
            skip_compression: Some(true),
            ..Default::default()
        },
    );
    m.write(meta_path)?;
    eprintln!(
        "Wrote the provenance {file} ({} subjects, {} dependencies)",
        st["subject"].as_array().map_or(0, Vec::len),
        st["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .map_or(0, Vec::len)
    );
    Ok(())
}

fn sign_ostree(
    t: &Target,
    m: &mut Meta,
    meta_path: &Path,
    signer: &PgpSigner,
    ed25519: Option<&ed25519_dalek::SigningKey>,
) -> Result<()> {
    let repo_path = t.wd.repo_dir();
    let repo = Repo::open(&repo_path)?;
    let commit = m.ostree_commit.clone();
    if !repo.has_object(&commit, ObjectType::Commit) {
        bail!(
            "commit {commit} of build {} is not in {}",
            t.id,
            repo_path.display()
        );
    }
    let md = osign::sign_commit(&repo, &commit, Some(signer), ed25519)?;
    eprintln!(
        "Signed commit {commit}: {} OpenPGP and {} ed25519 signature(s) in its detached metadata",
        osign::signatures(&md, osign::GPGSIGS)?.len(),
        osign::signatures(&md, osign::ED25519)?.len()
    );

    let cm_path = t.dir.join("commitmeta.json");
    let mut cm: serde_json::Map<String, serde_json::Value> = match std::fs::read(&cm_path) {
        Ok(d) => {
            serde_json::from_slice(&d).with_context(|| format!("parsing {}", cm_path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Map::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", cm_path.display())),
    };
    for (k, v) in osign::commitmeta_json_entries(&md) {
        cm.insert(k, v);
    }
    util::write_json_atomic(&cm_path, &cm)?;

    // The ostree tarball carries the commit's detached metadata: re-export
    // it beside the old one, drop the old one's .sig (a signature of other
    // bytes: a kill must leave the artifact unsigned, not signed badly),
    // record its digest, then swap it in. A kill between the record and
    // the rename is finished by the next run (builds::remove_partial_artifacts
    // renames a complete replacement whose digest meta.json records).
    if let Some(art) = m.images.get_mut("ostree") {
        if art.path.ends_with(".tar") || art.path.ends_with(".ociarchive") {
            let file = t.dir.join(&art.path);
            let tmp = t.dir.join(builds::replacement_name(&art.path));
            crate::publish::oci::export_artifact(&repo, &commit, &t.arch, &tmp)?;
            let (sum, size) = crate::util::digest::sha256_file(&tmp)?;
            let sig = t.dir.join(format!("{}.sig", art.path));
            match std::fs::remove_file(&sig) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", sig.display())),
            }
            art.sha256 = sum;
            art.size = Some(size);
            m.write(meta_path)?;
            std::fs::rename(&tmp, &file)
                .with_context(|| format!("renaming {} to {}", tmp.display(), file.display()))?;
            eprintln!("Re-exported {} with the signatures", file.display());
        } else {
            eprintln!(
                "warning: images.ostree {} is neither an ociarchive nor a cosa ostree tarball; its copy of the \
                 commit does not carry the new signatures",
                art.path
            );
        }
    }
    Ok(())
}

/// One line of `cosa verify`.
#[derive(serde::Serialize)]
struct Item {
    name: String,
    status: &'static str,
    detail: String,
}

pub fn verify(global: &GlobalOpts, opts: VerifyOpts) -> Result<()> {
    let t = target(
        global,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
    )?;
    let keyring = Keyring::load(&opts.keyring)?;
    let ed_keys = opts
        .ed25519_public_key
        .as_deref()
        .map(osign::load_ed25519_public)
        .transpose()?;
    let m = Meta::read(&meta::meta_path(&t.wd.builds_dir(), &t.id, &t.arch))?;
    let mut items = Vec::new();
    let mut add = |name: String, status: &'static str, detail: String| {
        items.push(Item {
            name,
            status,
            detail,
        })
    };

    // Artifacts.
    for (name, art) in &m.images {
        let item = format!("image {name} ({})", art.path);
        let file = t.dir.join(&art.path);
        let sig_path = t.dir.join(format!("{}.sig", art.path));
        if !sig_path.exists() {
            add(item, "unsigned", format!("no {}", sig_path.display()));
            continue;
        }
        let sig =
            std::fs::read(&sig_path).with_context(|| format!("reading {}", sig_path.display()))?;
        let mut h = match hashing(&file) {
            Ok(h) => h,
            Err(e) => {
                add(item, "bad", format!("{e:#}"));
                continue;
            }
        };
        match keyring.verify_detached(&sig, &mut h) {
            Ok(s) => {
                // Read any rest the verifier left, then compare with meta.json.
                let _ = std::io::copy(&mut h, &mut std::io::sink());
                let (_, sum, _) = h.finish();
                if sum != art.sha256 {
                    add(
                        item,
                        "bad",
                        format!(
                            "signed by {s}, but sha256 {sum} differs from meta.json's {}",
                            art.sha256
                        ),
                    );
                } else {
                    add(item, "good", format!("signed by {s}"));
                }
            }
            Err(e) => add(item, "bad", format!("{e:#}")),
        }
    }

    // The provenance.
    if let Some(a) = m.images.get("provenance") {
        let item = format!("provenance ({})", a.path);
        let r = std::fs::read(t.dir.join(&a.path))
            .context("reading it")
            .and_then(|d| serde_json::from_slice(&d).context("parsing it"))
            .and_then(|env| crate::supply::provenance::verify(&env, &keyring, &m, &t.dir));
        match r {
            Ok(s) => add(
                item,
                "good",
                format!("signed by {s}; every subject matches"),
            ),
            Err(e) => add(item, "bad", format!("{e:#}")),
        }
    }

    // The statement of `cosa rebuild-verify --attest`, when there is one.
    let rs = builds::rebuild_statement_name(&m.name, &m.buildid, &t.arch);
    if t.dir.join(&rs).exists() {
        let item = format!("rebuild statement ({rs})");
        let r = std::fs::read(t.dir.join(&rs))
            .context("reading it")
            .and_then(|d| serde_json::from_slice(&d).context("parsing it"))
            .and_then(|env| crate::supply::rebuild::verify_statement(&env, &keyring, &m, &t.dir));
        match r {
            Ok(c) if c.result == "PASSED" => add(
                item,
                "good",
                format!(
                    "signed by {}; rebuilt identically ({})",
                    c.signer, c.time_verified
                ),
            ),
            Ok(c) => add(
                item,
                "bad",
                format!(
                    "signed by {}, but its verification result is {} (rebuilt {})",
                    c.signer, c.result, c.time_verified
                ),
            ),
            Err(e) => add(item, "bad", format!("{e:#}")),
        }
    }

    // The OSTree commit.
    let commit = &m.ostree_commit;
    let repo_path = t.wd.repo_dir();
    let check = Repo::open(&repo_path).and_then(|repo| {
        if !repo.has_object(commit, ObjectType::Commit) {
            bail!("commit {commit} is not in {}", repo_path.display());
        }
        osign::verify_commit(&repo, commit, &keyring, ed_keys.as_deref())
    });
    let gpg_item = format!("ostree commit {commit} ({})", osign::GPGSIGS);
    let ed_item = format!("ostree commit {commit} ({})", osign::ED25519);
    match check {
        Err(e) => add(gpg_item, "bad", format!("{e:#}")),
        Ok(c) => {
            if c.gpg.is_empty() {
                add(gpg_item, "unsigned", "no OpenPGP signature".into());
            } else if let Some(Ok(s)) = c.gpg.iter().find(|r| r.is_ok()) {
                add(
                    gpg_item,
                    "good",
                    format!("signed by {s} ({} signature(s) in all)", c.gpg.len()),
                );
            } else {
                let errs: Vec<String> = c.gpg.iter().filter_map(|r| r.clone().err()).collect();
                add(gpg_item, "bad", errs.join("; "));
            }
            match c.ed25519_good {
                None if c.ed25519_total > 0 => eprintln!(
                    "note: {ed_item} holds {} signature(s), not checked: no --ed25519-public-key",
                    c.ed25519_total
                ),
                None => {}
                Some(_) if c.ed25519_total == 0 => {
                    add(ed_item, "unsigned", "no ed25519 signature".into())
                }
                Some(0) => add(
                    ed_item,
                    "bad",
                    format!(
                        "none of {} signature(s) verifies with the given public key(s)",
                        c.ed25519_total
                    ),
                ),
                Some(n) => add(
                    ed_item,
                    "good",
                    format!("{n} of {} signature(s) verify", c.ed25519_total),
                ),
            }
        }
    }

    // The container image.
    if let Some((image, digest)) = oscontainer(&m)? {
        let item = format!("container {image}@{digest}");
        let store = opts
            .sigstore
            .clone()
            .unwrap_or_else(|| t.dir.join("sigstore"));
        let dir = oci::lookaside_dir(&store, &image, &digest)?;
        let sigs = oci::list_signatures(&dir)?;
        if sigs.is_empty() {
            add(
                item,
                "unsigned",
                format!("no signature in {}", dir.display()),
            );
        } else {
            let mut errs = Vec::new();
            let mut good = None;
            for (_, p) in &sigs {
                let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                match oci::verify_signature(&keyring, &data, &image, &digest) {
                    Ok(s) => {
                        good = Some((s, p.clone()));
                        break;
                    }
                    Err(e) => errs.push(format!("{}: {e:#}", p.display())),
                }
            }
            match good {
                Some((s, p)) => add(item, "good", format!("signed by {s} ({})", p.display())),
                None => add(item, "bad", errs.join("; ")),
            }
        }
    }

    let failed: Vec<String> = items
        .iter()
        .filter(|it| it.status != "good")
        .map(|it| format!("{} ({})", it.name, it.status))
        .collect();
    if opts.json {
        let v = serde_json::json!({
            "build": t.id,
            "arch": t.arch,
            "good": failed.is_empty(),
            "items": items,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for it in &items {
            println!("{:<8} {}: {}", it.status, it.name, it.detail);
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} item(s) of build {} {} are unsigned or bad: {}",
            failed.len(),
            items.len(),
            t.id,
            t.arch,
            failed.join(", ")
        );
    }
    eprintln!(
        "All {} item(s) of build {} {} are signed and good",
        items.len(),
        t.id,
        t.arch
    );
    Ok(())
}
