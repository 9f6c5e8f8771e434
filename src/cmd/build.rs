//! `cosa build [ostree]`: compose the tree, postprocess it, commit it to
//! `tmp/repo`, and record the build in `builds/` as coreos-assembler does.
//!
//! Crash safety: the tree and the build directory are staged (`tmp/` and
//! `builds/.tmp-build-*`); the build becomes visible only when builds.json,
//! written atomically, lists it; the ref moves after the commit's objects are
//! in. A killed run leaves at most staging leftovers, removed by the next run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cli::{BuildOpts, GlobalOpts};
use crate::compose::postprocess::{self, PostprocessOptions};
use crate::compose::{inputhash, resolve, rpmdb, selinux, tree};
use crate::config::workdir::Workdir;
use crate::ostree::{Commit, Repo, Value};
use crate::rpm::PackageMeta;
use crate::rpm::download::Downloader;
use crate::store::builds::{self, BuildsJson, StagedBuild};
use crate::store::diff;
use crate::store::lock::WorkdirLock;
use crate::store::meta::{self, Artifact, Meta};
use crate::store::{prune, version};
use crate::util::{self, time};

/// Write the tree's objects, labelled with the tree's SELinux policy
/// unless the treefile says `selinux: false` or the tree has none.
fn commit_tree(
    repo: &Repo,
    rootfs: &Path,
    tf: &crate::config::treefile::Treefile,
) -> Result<(String, String)> {
    let labeller = match selinux::labeller_for(rootfs, tf)? {
        Ok(l) => l,
        Err(why) => {
            eprintln!("SELinux: no labels ({why})");
            return repo.write_dir(rootfs);
        }
    };
    let t = Instant::now();
    let label = |path: &str, mode: u32| labeller.label(path, mode);
    let root = repo.write_dir_with(
        rootfs,
        &crate::ostree::CommitOptions {
            selinux: Some(&label),
        },
    )?;
    eprintln!(
        "SELinux: labelled {} paths with policy {} ({} specs; lookups {:.2}s of CPU, commit {:.1}s)",
        labeller.labelled(),
        labeller.policy,
        labeller.contexts.len(),
        labeller.lookup_time().as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    for d in labeller.contexts.duplicates() {
        eprintln!(
            "warning: {}: lines {} and {} both specify {} ({} contexts); libselinux's validation rejects this",
            labeller.contexts.files()[0].display(),
            d.first_line,
            d.second_line,
            d.regex,
            if d.different { "different" } else { "the same" }
        );
    }
    Ok(root)
}

/// What the previous build of this arch left that the next one needs.
struct Previous {
    id: String,
    meta: Meta,
}

/// What a rebuild (`cosa rebuild-verify`) takes from the build it repeats
/// instead of from the working directory, its ref and the clock.
pub(crate) struct Pinned {
    /// The recorded commit's timestamp: the new commit's, the packages'
    /// install time, and SOURCE_DATE_EPOCH for the postprocess scripts.
    pub timestamp: u64,
    /// The recorded commit's parent.
    pub parent: Option<String>,
    /// `/usr/lib/passwd` and `/usr/lib/group` of the build before it.
    pub previous_passwd: Option<String>,
    pub previous_group: Option<String>,
    /// The build's generated lockfile: every package by version and digest.
    pub lockfile: crate::rpm::lockfile::Lockfile,
    /// The config repo commit and dirty flag the build recorded.
    pub config_gitrev: Option<String>,
    pub config_dirty: bool,
    /// The rpm-md repo timestamps the commit recorded, by repo id: the
    /// repos' metadata may have been regenerated since (the packages are
    /// pinned by digest).
    pub repo_timestamps: BTreeMap<String, u64>,
    /// The build ran with `--skip-scripts` (its compose report says so).
    pub skip_scripts: bool,
}

impl Pinned {
    /// Give the loaded repos the timestamps the build saw, saying which moved.
    fn stamp_repos(&self, repos: &mut [crate::rpm::repodata::LoadedRepo]) {
        for r in repos {
            let Some(&ts) = self.repo_timestamps.get(&r.id) else {
                continue;
            };
            if r.timestamp != Some(ts) {
                eprintln!(
                    "Note: repo {}'s metadata is from {}, the build saw it from {}; the rebuild \
                     records the build's (its packages are pinned by digest)",
                    r.id,
                    r.timestamp
                        .map_or("an unknown time".into(), |t| time::format_rfc3339(t as i64)),
                    time::format_rfc3339(ts as i64)
                );
                r.timestamp = Some(ts);
            }
        }
    }
}

pub fn run(global: &GlobalOpts, opts: BuildOpts) -> Result<()> {
    build(&global.workdir, opts, None)
}

/// `cosa build` in the working directory `root`; with `pinned`, a rebuild
/// of a recorded build.
pub(crate) fn build(root: &Path, opts: BuildOpts, pinned: Option<&Pinned>) -> Result<()> {
    let started = Instant::now();
    let wd = Workdir::open(root)?;
    wd.ensure_dirs()?;
    let lock = WorkdirLock::acquire(&wd.root)?;
    let builds_dir = wd.builds_dir();
    builds::recover(&builds_dir, &lock)?.report();
    let mut builds = match BuildsJson::load(&builds_dir) {
        Ok(b) => b,
        Err(_) if !builds_dir.join("builds.json").exists() => builds::init(&builds_dir)?,
        Err(e) => return Err(e),
    };
    let arch = util::target_arch(opts.resolve.arch.as_deref())?;
    let platforms = if opts.targets.is_empty() {
        vec!["qemu".to_string()]
    } else {
        crate::image::requested_platforms(&opts.targets)?
    };

    // image.yaml is read first so that a bad key stops the build at once.
    let image_config = crate::config::image::ImageConfig::load(&wd.config_dir())?;
    for w in &image_config.warnings {
        eprintln!("warning: {w}");
    }
    let (image_json, image_checksum) = image_config.to_json()?;

    // 1. Resolve and fetch.
    let dl = Downloader::new(opts.resolve.jobs)?;
    let resolved = match pinned {
        // Every package as the build had it: by the recorded lockfile, strictly.
        Some(p) => {
            let mut r = resolve::resolve_locked(&wd, &arch, true, &dl, Some(p.lockfile.clone()))?;
            p.stamp_repos(&mut r.repos);
            r
        }
        None => resolve::resolve(&wd, &arch, opts.resolve.strict, &dl)?,
    };
    let pkgs = resolve::fetch(&wd, &dl, &resolved)?;
    if pinned.is_some() {
        let t = Instant::now();
        crate::rpm::download::verify_cached(&pkgs)?;
        eprintln!(
            "Verified the sha256 of {} cached packages in {:.1}s",
            pkgs.len(),
            t.elapsed().as_secs_f64()
        );
    }
    let tf = &resolved.treefile;
    for w in tf.not_acted() {
        eprintln!("warning: {w}");
    }

    // 2. Nothing changed? Compare the input hash with the newest build's.
    let previous = previous_build(&builds_dir, &builds, &arch)?;
    let metas: Vec<PackageMeta> = pkgs.iter().map(|(m, _)| m.clone()).collect();
    let inputhash = inputhash::input_hash(
        &arch,
        &metas,
        &[&wd.config_dir(), &wd.overrides_rootfs()],
        &input_files(tf, &image_config),
    )?;
    if let Some(prev) = &previous {
        if !opts.force && prev.meta.rpm_ostree_inputhash.as_deref() == Some(inputhash.as_str()) {
            let missing: Vec<String> = platforms
                .iter()
                .filter(|p| !prev.meta.images.contains_key(p.as_str()))
                .cloned()
                .collect();
            eprintln!(
                "No changes since build {} (input hash {}); no new commit. Use --force to build anyway.",
                prev.id,
                &inputhash[..12]
            );
            if !missing.is_empty() {
                eprintln!(
                    "Adding the images build {} lacks: {}",
                    prev.id,
                    missing.join(", ")
                );
                super::image::add_images(&wd, &lock, &prev.id, &arch, &missing)?;
            }
            return Ok(());
        }
    }

    // 3. The version.
    let releasever = tf.releasever.clone().unwrap_or_else(|| "0".to_string());
    let version = match &opts.version {
        _ if opts.stream.is_some() => {
            use crate::release::{publish::PublishDir, streams::Streams};
            let streams = Streams::load(&wd.config_dir())?;
            let stream = streams.get(opts.stream.as_deref().unwrap_or_default())?;
            let released =
                PublishDir::resolve(&wd.root, None, stream).released_versions(&stream.name)?;
            let generated = resolved
                .lock
                .as_ref()
                .and_then(|l| l.metadata.as_ref())
                .and_then(|m| m.generated.as_deref());
            crate::release::version::build_version(
                stream,
                &released,
                opts.version.as_deref(),
                &releasever,
                generated,
                &builds,
                &arch,
            )?
        }
        Some(v) => {
            version::validate_user_version(v, &builds, &arch)?;
            v.clone()
        }
        None => {
            let generated = resolved
                .lock
                .as_ref()
                .and_then(|l| l.metadata.as_ref())
                .and_then(|m| m.generated.clone());
            match &tf.automatic_version_prefix {
                Some(prefix) => version::auto_version_for(
                    prefix,
                    tf.other
                        .get("automatic-version-suffix")
                        .and_then(|v| v.as_str()),
                    generated.as_deref(),
                    &builds,
                )?,
                None => {
                    let date = version::version_date(generated.as_deref())?;
                    version::next_dev_version(
                        &releasever,
                        &date,
                        builds.builds.iter().map(|b| b.id.as_str()),
                    )?
                }
            }
        }
    };
    eprintln!("Building {version} for {arch}");

    // 4. Compose and postprocess the tree in a staging dir under tmp/.
    let staging = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(wd.tmp_dir())
        .context("creating a staging directory in tmp/")?;
    let rootfs = staging.path().join("rootfs");
    std::fs::create_dir(&rootfs)?;
    let repo = crate::ostree::Repo::open_or_init(&wd.repo_dir())?;
    let (prev_passwd, prev_group) = match (pinned, &previous) {
        (Some(p), _) => (p.previous_passwd.clone(), p.previous_group.clone()),
        (None, Some(p)) => (
            repo.read_commit_file(&p.meta.ostree_commit, "usr/lib/passwd")?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            repo.read_commit_file(&p.meta.ostree_commit, "usr/lib/group")?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        ),
        (None, None) => (None, None),
    };
    let skip_scripts = opts.skip_scripts || pinned.is_some_and(|p| p.skip_scripts);
    let previous_ids = tree::previous_ids(tf, prev_passwd.clone(), prev_group.clone());
    let report = tree::compose_tree(&wd, &resolved, &pkgs, skip_scripts, previous_ids, &rootfs)?;
    let has_kernel = rootfs.join("usr/lib/modules").is_dir()
        || rootfs
            .join("boot")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some());
    if !has_kernel {
        eprintln!("No kernel in the tree: committing a non-bootable tree (ostree.bootable=false)");
    }
    let pp = postprocess::postprocess(
        &rootfs,
        tf,
        &PostprocessOptions {
            version: Some(version.clone()),
            previous_passwd: prev_passwd,
            previous_group: prev_group,
            bootable: has_kernel,
            run_scripts: !skip_scripts,
            basearch: arch.clone(),
            initramfs: crate::compose::initramfs::Spec::load(&wd.config_dir())?,
            source_date_epoch: pinned.map(|p| p.timestamp as i64),
        },
    )?;
    for w in &pp.warnings {
        eprintln!("warning: {w}");
    }
    // The flattened image.yaml goes into the commit, where
    // coreos-assembler keeps it.
    let ij = rootfs.join("usr/share/coreos-assembler/image.json");
    std::fs::create_dir_all(ij.parent().unwrap())?;
    std::fs::write(&ij, &image_json).with_context(|| format!("writing {}", ij.display()))?;
    // The commit's timestamp is also the packages' install time.
    let timestamp = match pinned {
        Some(p) => p.timestamp,
        None => time::now_secs().max(0) as u64,
    };
    let t = Instant::now();
    let db = rpmdb::write_tree_rpmdb(
        &rootfs,
        rpmdb::Layout::Ostree,
        &resolved,
        &pkgs,
        timestamp as i64,
    )?;
    eprintln!(
        "Wrote the rpm database ({} packages, {}) in {:.1}s",
        db.packages,
        indicatif::HumanBytes(db.bytes),
        t.elapsed().as_secs_f64()
    );

    // 5. Commit.
    let ref_ = tf
        .ref_
        .clone()
        .unwrap_or_else(|| format!("cosa/{arch}/dev"));
    let t = Instant::now();
    let root = commit_tree(&repo, &rootfs, tf)?;
    let (parent, (gitrev, dirty)) = match pinned {
        Some(p) => (p.parent.clone(), (p.config_gitrev.clone(), p.config_dirty)),
        None => (
            repo.resolve_ref(&ref_)?,
            crate::config::git::state(&wd.config_dir()),
        ),
    };
    let metadata = commit_metadata(
        &resolved,
        &metas,
        &version,
        &inputhash,
        &ref_,
        pp.kernel.as_ref().map(|k| k.version.as_str()),
        gitrev.as_deref(),
    )?;
    let spec = Commit {
        parent: parent.clone(),
        subject: version.clone(),
        body: String::new(),
        timestamp,
        metadata: metadata.clone(),
        root,
    };
    let commit = match pinned {
        // The recorded parent, which the rebuild's repo need not hold.
        Some(_) => repo.write_commit_shallow(&spec)?,
        None => repo.write_commit(&spec)?,
    };
    // A rebuild signs nothing: the recorded commit's detached metadata is
    // in the repo already, and goes with an identical commit.
    if let Some(key) = tf.other.get("gpg-key").and_then(|v| v.as_str())
        && pinned.is_none()
    {
        crate::sign::ostree::sign_commit_with_gpg(&repo, &commit, key, None)?;
        eprintln!("Signed {commit} with GPG key {key} (treefile key gpg-key)");
    }
    repo.sync()?;
    eprintln!("Committed {commit} in {:.1}s", t.elapsed().as_secs_f64());

    // 6. The build directory, staged then published.
    let staged = StagedBuild::new(&builds_dir, &lock)?;
    // The build's name as coreos-assembler takes it: `rojig.name`
    // (fedora-coreos-config), then `metadata.name`, then the ref's first part.
    let name = tf
        .other
        .get("rojig")
        .and_then(|r| r.get("name"))
        .or_else(|| tf.metadata.get("name"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| ref_.split('/').next().unwrap_or("cosa").to_string());
    let commitmeta: serde_json::Map<String, serde_json::Value> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.metadata_json()))
        .collect();
    util::write_json_atomic(&staged.path().join("commitmeta.json"), &commitmeta)?;
    let mut lockfile = resolved.lockfile();
    if let (Some(p), Some(m)) = (pinned, lockfile.metadata.as_mut()) {
        // The resolution is the recorded one, and so is its time.
        m.generated = p
            .lockfile
            .metadata
            .as_ref()
            .and_then(|m| m.generated.clone());
    }
    lockfile.write(
        &staged
            .path()
            .join(format!("manifest-lock.generated.{arch}.json")),
    )?;
    util::write_json_atomic(&staged.path().join("compose-report.json"), &report)?;
    let ostree_file = crate::publish::oci::artifact_name(&name, &version, &arch);
    eprintln!("Writing the ostree container image {ostree_file}");
    crate::publish::oci::export_ociarchive(
        &repo,
        &commit,
        &arch,
        &staged.path().join(&ostree_file),
    )?;
    let art = artifact(&staged.path().join(&ostree_file), &ostree_file)?;

    // The SBOM, from the packages and the committed tree.
    let t = Instant::now();
    let lock_name = format!("manifest-lock.generated.{arch}.json");
    let lock_sha = crate::util::digest::sha256_file(&staged.path().join(&lock_name))?.0;
    let sbom_file = crate::supply::sbom::file_name(&name, &version, &arch);
    let sbom = crate::supply::sbom::generate(&crate::supply::sbom::SbomInput {
        name: &name,
        version: &version,
        arch: &arch,
        commit: &commit,
        created: &time::format_rfc3339(timestamp as i64),
        packages: &pkgs,
        repo_urls: resolved
            .repos
            .iter()
            .filter_map(|r| r.baseurls.first().map(|u| (r.id.clone(), u.to_string())))
            .collect(),
        tree: &rootfs,
        config_gitrev: gitrev.as_deref(),
        lockfile_sha256: Some(&lock_sha),
    })?;
    util::write_json_atomic(&staged.path().join(&sbom_file), &sbom)?;
    let mut sbom_art = artifact(&staged.path().join(&sbom_file), &sbom_file)?;
    sbom_art.skip_compression = Some(true);
    eprintln!(
        "Wrote the SBOM {sbom_file} ({} packages, {} files) in {:.1}s",
        pkgs.len(),
        sbom["files"].as_array().map_or(0, Vec::len),
        t.elapsed().as_secs_f64()
    );

    let pkgdiff = previous
        .as_ref()
        .map(|p| -> Result<_> {
            let old = read_json(
                &meta::meta_path(&builds_dir, &p.id, &arch).with_file_name("commitmeta.json"),
            )?;
            let old = diff::packages_from_commitmeta(&old)?;
            let new =
                diff::packages_from_commitmeta(&serde_json::Value::Object(commitmeta.clone()))?;
            Ok(diff::diff(&old, &new).to_pkgdiff())
        })
        .transpose()?;
    let mut images = BTreeMap::new();
    images.insert("ostree".to_string(), art);
    images.insert("sbom".to_string(), sbom_art);
    let m = Meta {
        buildid: version.clone(),
        name: name.clone(),
        summary: tf
            .metadata
            .get("summary")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        ostree_ref: Some(ref_.clone()),
        ostree_commit: commit.clone(),
        ostree_version: version.clone(),
        ostree_timestamp: time::format_rfc3339(timestamp as i64),
        rpm_ostree_inputhash: Some(inputhash.clone()),
        basearch: Some(arch.clone()),
        build_timestamp: Some(time::format_rfc3339(time::now_secs())),
        config_gitrev: gitrev.clone(),
        config_dirty: Some(dirty),
        overrides_active: Some(
            resolved
                .repos
                .iter()
                .any(|r| r.id == resolve::OVERRIDES_REPO),
        ),
        pkgdiff,
        images,
        extra: [(
            "coreos-assembler.image-config-checksum".to_string(),
            serde_json::Value::String(image_checksum),
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    m.write(&staged.path().join(meta::META_JSON))?;
    staged.publish(&builds_dir, &version, &arch, &lock)?;
    // The ref moves only once the build is recorded: a failed build leaves
    // it where the last recorded build put it.
    repo.set_ref(&ref_, &commit)?;
    repo.update_summary()?;
    eprintln!("{ref_} now points at {commit}");
    builds = BuildsJson::load(&builds_dir)?;
    eprintln!(
        "Build {version} is in {}",
        builds::build_dir(&builds_dir, &version, &arch).display()
    );

    // 7. Disk images, added to the published build (an image failure leaves
    // the build with its commit, and `cosa buildextend-*` can retry).
    if !platforms.is_empty() {
        if pp.kernel.is_none() && !opts.targets.is_empty() {
            bail!(
                "build {version} is recorded, but its commit has no kernel, so the images you asked for ({}) cannot be made",
                platforms.join(", ")
            );
        } else if pp.kernel.is_none() {
            eprintln!(
                "The commit has no kernel: skipping the images ({}); build ostree only to silence this",
                platforms.join(", ")
            );
        } else {
            super::image::add_images(&wd, &lock, &version, &arch, &platforms)
                .with_context(|| format!("making the images of build {version}"))?;
        }
    }

    // 8. Prune old builds and the objects only they use.
    if !opts.skip_prune {
        prune_builds(&builds_dir, &builds, &repo, 3, &lock)?;
    }
    eprintln!("Done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn previous_build(builds_dir: &Path, builds: &BuildsJson, arch: &str) -> Result<Option<Previous>> {
    let Some(id) = builds.latest_for_arch(arch) else {
        return Ok(None);
    };
    let meta = Meta::read(&meta::meta_path(builds_dir, id, arch))?;
    Ok(Some(Previous {
        id: id.to_string(),
        meta,
    }))
}

/// Files the build reads besides the config directory's own: treefiles and
/// image.yaml files (an include may leave the directory), add-files
/// sources, postprocess-script, check-passwd/check-groups files.
fn input_files(
    tf: &crate::config::treefile::Treefile,
    image: &crate::config::image::ImageConfig,
) -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = tf.files.clone();
    v.extend(image.files.iter().cloned());
    v.extend(tf.add_files.iter().map(|(src, _)| src.clone()));
    v.extend(tf.postprocess_script.iter().cloned());
    for key in ["check-passwd", "check-groups"] {
        if let Some(f) = tf
            .other
            .get(key)
            .and_then(|c| c.get("filename"))
            .and_then(|f| f.as_str())
        {
            v.push(f.into());
        }
    }
    v
}

/// The commit metadata rpm-ostree writes, plus `add-commit-metadata`.
fn commit_metadata(
    resolved: &resolve::Resolved,
    pkgs: &[PackageMeta],
    version: &str,
    inputhash: &str,
    ref_: &str,
    kernel: Option<&str>,
    gitrev: Option<&str>,
) -> Result<BTreeMap<String, Value>> {
    let mut m = BTreeMap::new();
    for (k, v) in &resolved.treefile.add_commit_metadata {
        m.insert(k.clone(), json_to_variant(k, v)?);
    }
    m.insert("version".into(), Value::str(version));
    m.insert("rpmostree.inputhash".into(), Value::str(inputhash));
    let mut list: Vec<[String; 5]> = pkgs
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.epoch.to_string(),
                p.version.clone(),
                p.release.clone(),
                p.arch.clone(),
            ]
        })
        .collect();
    list.sort();
    m.insert("rpmostree.rpmdb.pkglist".into(), Value::pkglist(&list));
    let repos: Vec<BTreeMap<String, Value>> = resolved
        .repos
        .iter()
        .map(|r| {
            let mut e = BTreeMap::new();
            e.insert("id".to_string(), Value::str(r.id.clone()));
            e.insert(
                "timestamp".to_string(),
                Value::u64_be(r.timestamp.unwrap_or(0)),
            );
            e
        })
        .collect();
    let tf = &resolved.treefile;
    if tf.other.get("repo-metadata").and_then(|v| v.as_str()) != Some("disabled") {
        m.insert("rpmostree.rpmmd-repos".into(), Value::dict_array(&repos));
    }
    if let Some(cmd) = tf.other.get("container-cmd").and_then(|v| v.as_array()) {
        let cmd: Vec<&str> = cmd.iter().filter_map(|s| s.as_str()).collect();
        m.insert("ostree.container-cmd".into(), Value::string_array(&cmd));
    }
    m.insert("ostree.bootable".into(), Value::Bool(kernel.is_some()));
    if let Some(k) = kernel {
        m.insert("ostree.linux".into(), Value::str(k));
    }
    m.insert("ostree.ref-binding".into(), Value::string_array(&[ref_]));
    if let Some(g) = gitrev {
        m.insert("coreos-assembler.config-gitrev".into(), Value::str(g));
    }
    Ok(m)
}

fn json_to_variant(key: &str, v: &serde_json::Value) -> Result<Value> {
    Ok(match v {
        serde_json::Value::String(s) => Value::str(s.clone()),
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) if n.is_u64() => Value::u64_be(n.as_u64().unwrap_or(0)),
        serde_json::Value::Number(n) if n.is_i64() => Value::I64(n.as_i64().unwrap_or(0).to_be()),
        serde_json::Value::Array(a) if a.iter().all(|x| x.is_string()) => {
            let v: Vec<&str> = a.iter().filter_map(|x| x.as_str()).collect();
            Value::string_array(&v)
        }
        serde_json::Value::Object(o) => {
            let mut m = BTreeMap::new();
            for (k, v) in o {
                m.insert(k.clone(), json_to_variant(key, v)?);
            }
            Value::dict(&m)
        }
        other => bail!(
            "add-commit-metadata: {key} has a value cosa cannot store in commit metadata: {other}"
        ),
    })
}

fn artifact(path: &Path, name: &str) -> Result<Artifact> {
    let (sha256, size) = crate::util::digest::sha256_file(path)?;
    Ok(Artifact {
        path: name.to_string(),
        sha256,
        size: Some(size),
        ..Default::default()
    })
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("parsing {}", path.display()))
}

/// Keep the newest `keep` (and tagged) builds; prune the rest and their objects.
pub(crate) fn prune_builds(
    builds_dir: &Path,
    builds: &BuildsJson,
    repo: &Repo,
    keep: usize,
    lock: &WorkdirLock,
) -> Result<()> {
    let plan = prune::plan_keep_last(builds, keep);
    let result = prune::prune(builds_dir, &plan, lock)?;
    if result.removed.is_empty() {
        return Ok(());
    }
    // Every commit a remaining build or a ref uses stays.
    let remaining = BuildsJson::load(builds_dir)?;
    let mut keep_commits: Vec<String> = remaining
        .builds
        .iter()
        .flat_map(|b| b.arches.iter().map(move |a| (b.id.clone(), a.clone())))
        .filter_map(|(id, a)| meta::read_value(&meta::meta_path(builds_dir, &id, &a)).ok())
        .filter_map(|v| v.get("ostree-commit")?.as_str().map(str::to_string))
        .collect();
    keep_commits.extend(repo.list_refs()?.into_values());
    let stats = repo.prune(&keep_commits)?;
    eprintln!(
        "Pruned {} build(s) ({}); {:?}",
        result.removed.len(),
        result
            .removed
            .iter()
            .map(|b| b.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        stats
    );
    Ok(())
}
