//! Promotion of a build from one stream to another, and the git side of it.
//!
//! A promoted build is the source build's OSTree tree with only os-release
//! changed (the version strings in `/usr/lib/os-release` and
//! `/usr/etc/os-release`), committed anew under the target version: the
//! package set, the lockfile and every other file are the source's, which
//! [`compare_trees`] proves object by object.
//!
//! [`promote_config`] is upstream's `promote-config` with git2: the target
//! branch takes the source branch's tree, keeping its own stream identity
//! files (`manifest.yaml` by default), in one commit
//! `tree: promote changes from <src> at <sha>`.

use std::collections::BTreeMap;
use std::io::Write;

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::index::Release;
use super::publish::PublishDir;
use super::streams::Stream;
use super::version;
use crate::config::workdir::Workdir;
use crate::ostree::objects::parse_filez;
use crate::ostree::{Commit, DirTree, ObjectType, Repo, Value};
use crate::store::builds::{self, BuildsJson, StagedBuild};
use crate::store::lock::WorkdirLock;
use crate::store::meta::{self, Meta};
use crate::util::{self, time};

/// The files a promotion rewrites (relative to the tree's root).
pub const OS_RELEASE_PATHS: [&str; 2] = ["usr/lib/os-release", "usr/etc/os-release"];

/// Commit metadata keys recording where a promoted commit came from.
pub const PROMOTED_FROM_BUILD: &str = "cosa.promoted-from.build";
pub const PROMOTED_FROM_STREAM: &str = "cosa.promoted-from.stream";
pub const PROMOTED_FROM_COMMIT: &str = "cosa.promoted-from.commit";
pub const PROMOTION_FORCED: &str = "cosa.promotion-forced";

/// Replace `tree`'s file at `path` by `edit(content)` when it is a regular
/// file and `edit` changes it; returns the new dirtree checksum, or `None`
/// when nothing changed (missing file, symlink, same content).
fn rewrite_file(
    repo: &Repo,
    tree: &str,
    path: &[&str],
    edit: &dyn Fn(&[u8]) -> Vec<u8>,
) -> Result<Option<String>> {
    let mut dt = repo.read_dirtree(tree)?;
    let (first, rest) = path.split_first().context("empty path")?;
    if rest.is_empty() {
        let Some(slot) = dt.files.iter_mut().find(|(n, _)| n == first) else {
            return Ok(None);
        };
        let data = repo.read_object(&slot.1, ObjectType::File)?;
        let (meta, content) = parse_filez(&data)?;
        if meta.is_symlink() {
            return Ok(None);
        }
        let new = edit(&content);
        if new == content {
            return Ok(None);
        }
        let mut tmp = tempfile::Builder::new()
            .prefix("promote-")
            .tempfile_in(repo.path().join("tmp"))
            .context("creating a temp file in the repo's tmp/")?;
        tmp.write_all(&new).context("writing the new os-release")?;
        tmp.flush().context("writing the new os-release")?;
        slot.1 = repo.write_content(tmp.path(), &meta, new.len() as u64)?;
    } else {
        let Some(slot) = dt.dirs.iter_mut().find(|(n, _, _)| n == first) else {
            return Ok(None);
        };
        let Some(sub) = rewrite_file(repo, &slot.1, rest, edit)? else {
            return Ok(None);
        };
        slot.1 = sub;
    }
    Ok(Some(
        repo.write_metadata(ObjectType::DirTree, &dt.to_value()?)?,
    ))
}

/// Write a new commit of `source`'s tree for `to_version`: every occurrence
/// of `from_version` in os-release becomes `to_version`, the commit's
/// `version` is `to_version`, and `extra` is added to the metadata.
/// Returns the new commit's checksum and the rewritten paths.
pub fn promote_commit(
    repo: &Repo,
    source: &str,
    from_version: &str,
    to_version: &str,
    extra: &BTreeMap<String, Value>,
    timestamp: u64,
) -> Result<(String, Vec<String>)> {
    let c = repo
        .read_commit(source)
        .with_context(|| format!("reading source commit {source}"))?;
    let mut root = c.root.0.clone();
    let mut changed = Vec::new();
    let edit = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .replace(from_version, to_version)
            .into_bytes()
    };
    for p in OS_RELEASE_PATHS {
        let parts: Vec<&str> = p.split('/').collect();
        if let Some(t) = rewrite_file(repo, &root, &parts, &edit)
            .with_context(|| format!("rewriting /{p} of commit {source}"))?
        {
            root = t;
            changed.push(p.to_string());
        }
    }
    if changed.is_empty() {
        bail!(
            "commit {source} has no os-release naming version {from_version} (looked at /{})",
            OS_RELEASE_PATHS.join(", /")
        );
    }
    let mut metadata = c.metadata.clone();
    metadata.insert("version".into(), Value::str(to_version));
    metadata.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let commit = repo.write_commit(&Commit {
        parent: None,
        subject: to_version.to_string(),
        body: format!("Promoted from {from_version} (commit {source})"),
        timestamp,
        metadata,
        root: (root, c.root.1.clone()),
    })?;
    Ok((commit, changed))
}

/// Every path of a commit's tree with what identifies it: content checksum
/// for files, `dir:<dirmeta>` for directories.
pub fn tree_listing(repo: &Repo, commit: &str) -> Result<BTreeMap<String, String>> {
    fn walk(
        repo: &Repo,
        tree: &str,
        prefix: &str,
        out: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        let dt: DirTree = repo.read_dirtree(tree)?;
        for (n, c) in &dt.files {
            out.insert(format!("{prefix}{n}"), c.clone());
        }
        for (n, t, m) in &dt.dirs {
            let p = format!("{prefix}{n}");
            out.insert(p.clone(), format!("dir:{m}"));
            walk(repo, t, &format!("{p}/"), out)?;
        }
        Ok(())
    }
    let c = repo.read_commit(commit)?;
    let mut out = BTreeMap::new();
    out.insert(String::new(), format!("dir:{}", c.root.1));
    walk(repo, &c.root.0, "", &mut out)?;
    Ok(out)
}

/// Prove that `promoted` is `source` but for os-release: the same package
/// list in the commit metadata and the same object at every other path.
pub fn compare_trees(repo: &Repo, source: &str, promoted: &str) -> Result<()> {
    let a = repo.read_commit(source)?;
    let b = repo.read_commit(promoted)?;
    let key = "rpmostree.rpmdb.pkglist";
    if a.metadata.get(key) != b.metadata.get(key) {
        bail!("the package lists of {source} and {promoted} differ");
    }
    let la = tree_listing(repo, source)?;
    let lb = tree_listing(repo, promoted)?;
    let skip = |p: &str| OS_RELEASE_PATHS.contains(&p);
    let mut diffs = Vec::new();
    for p in la.keys().chain(lb.keys()) {
        if !skip(p) && la.get(p) != lb.get(p) && !diffs.contains(p) {
            diffs.push(p.clone());
        }
    }
    if !diffs.is_empty() {
        diffs.truncate(10);
        bail!(
            "the trees of {source} and {promoted} differ outside os-release: /{}",
            diffs.join(", /")
        );
    }
    Ok(())
}

/// A branch's commit: the local branch, else `origin/<name>`.
fn branch_commit<'r>(repo: &'r git2::Repository, name: &str) -> Result<git2::Commit<'r>> {
    let b = repo
        .find_branch(name, git2::BranchType::Local)
        .or_else(|_| repo.find_branch(&format!("origin/{name}"), git2::BranchType::Remote))
        .with_context(|| format!("no branch {name:?} (local or origin/{name})"))?;
    b.get()
        .peel_to_commit()
        .with_context(|| format!("branch {name} does not point at a commit"))
}

/// Put `entry` (from a tree) at `path` in `index`.
fn index_put(index: &mut git2::Index, path: &str, entry: &git2::TreeEntry) -> Result<()> {
    let e = git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: entry.filemode() as u32,
        uid: 0,
        gid: 0,
        file_size: 0,
        id: entry.id(),
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    };
    index
        .add(&e)
        .with_context(|| format!("keeping {path} in the index"))
}

/// Promote the config repository at `repo_path`: branch `to` gets the tree of
/// branch `from`, except the `keep` paths, which stay as they are on `to`
/// (absent on `to`: absent in the result). One commit on `to`, message
/// `tree: promote changes from <from> at <sha>`. Returns the new commit, or
/// `None` when `to` already has that tree. When `to` is checked out, its
/// work tree must be clean and is updated.
pub fn promote_config(
    repo_path: &std::path::Path,
    from: &str,
    to: &str,
    keep: &[String],
) -> Result<Option<String>> {
    let repo = git2::Repository::discover(repo_path)
        .with_context(|| format!("opening the git repository at {}", repo_path.display()))?;
    let src = branch_commit(&repo, from)?;
    let tgt_branch = repo
        .find_branch(to, git2::BranchType::Local)
        .with_context(|| format!("no local branch {to:?} to promote into"))?;
    let tgt = tgt_branch
        .get()
        .peel_to_commit()
        .with_context(|| format!("branch {to} does not point at a commit"))?;
    let tgt_ref = format!("refs/heads/{to}");
    let checked_out = repo
        .head()
        .ok()
        .and_then(|h| h.name().map(str::to_string).ok())
        .is_some_and(|n| n == tgt_ref);
    if checked_out && !repo.is_bare() {
        let mut so = git2::StatusOptions::new();
        so.include_untracked(false);
        let st = repo.statuses(Some(&mut so)).context("reading git status")?;
        if !st.is_empty() {
            bail!(
                "branch {to} is checked out with uncommitted changes; commit or stash them first"
            );
        }
    }
    let src_tree = src.tree()?;
    let tgt_tree = tgt.tree()?;
    let mut index = git2::Index::new().context("creating an in-memory index")?;
    index.read_tree(&src_tree)?;
    for k in keep {
        let p = std::path::Path::new(k);
        let _ = index.remove_path(p);
        let _ = index.remove_dir(p, 0);
        if let Ok(e) = tgt_tree.get_path(p) {
            if e.kind() == Some(git2::ObjectType::Tree) {
                bail!("--keep {k}: only files can be kept, {k} is a directory on {to}");
            }
            index_put(&mut index, k, &e)?;
        }
    }
    let tree_id = index
        .write_tree_to(&repo)
        .context("writing the promoted tree")?;
    if tree_id == tgt_tree.id() {
        return Ok(None);
    }
    let tree = repo.find_tree(tree_id)?;
    let sig = repo
        .signature()
        .or_else(|_| git2::Signature::now("cosa", "cosa@localhost"))
        .context("making a commit signature")?;
    let msg = format!("tree: promote changes from {from} at {}", src.id());
    let id = repo
        .commit(Some(&tgt_ref), &sig, &sig, &msg, &tree, &[&tgt])
        .with_context(|| format!("committing on {to}"))?;
    if checked_out && !repo.is_bare() {
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .with_context(|| format!("updating the work tree of {to}"))?;
    }
    Ok(Some(id.to_string()))
}
/// Promote build `build` (default: the newest release of `from`) from
/// stream `from` to stream `to` in the working directory `wd`, at time
/// `now`: checks that `to` is promoted from `from` (streams.yaml) and that
/// the build is released on `from` and has baked `from.bake_days`
/// (`force` overrides both, and the promotion records it); commits the
/// same tree with only os-release changed under the next version of `to`
/// for every arch of the build, proves the trees equal otherwise, and adds
/// the new build (meta.json, commitmeta.json, the ostree artifact,
/// promotion.json) to builds.json. Returns the new version.
pub fn promote_build(
    wd: &Workdir,
    from: &Stream,
    to: &Stream,
    build: Option<&str>,
    force: bool,
    publish_dir: Option<&Path>,
    now: i64,
) -> Result<String> {
    let mut forced = Vec::new();
    if to.promoted_from.as_deref() != Some(from.name.as_str()) {
        let msg = format!(
            "stream {} is promoted from {}, not {}",
            to.name,
            to.promoted_from.as_deref().unwrap_or("nothing"),
            from.name
        );
        if !force {
            bail!("{msg} (streams.yaml); use --force to promote anyway");
        }
        eprintln!("warning: {msg}; promoting anyway (--force)");
        forced.push(msg);
    }
    let lock = WorkdirLock::acquire(&wd.root)?;
    let builds_dir = wd.builds_dir();
    // Promotion makes a build: what a killed one left goes first.
    builds::recover(&builds_dir, &lock)?.report();
    let builds = BuildsJson::load(&builds_dir)?;
    let pd_from = PublishDir::resolve(&wd.root, publish_dir, from);
    let released = pd_from.released_versions(&from.name)?;
    let id = match build {
        Some(b) => b.to_string(),
        None => released
            .last()
            .cloned()
            .with_context(|| format!("stream {} has no release to promote", from.name))?,
    };
    let sv = version::parse(&id).with_context(|| format!("build {id}"))?;
    if sv.stream_code != from.code {
        bail!(
            "build {id} has stream code {}, not the code of stream {} ({})",
            sv.stream_code,
            from.name,
            from.code
        );
    }
    if !released.contains(&id) {
        bail!(
            "build {id} is not released on stream {}; run `cosa release --stream {} --build {id}` first",
            from.name,
            from.name
        );
    }
    let rel = Release::read(&pd_from.release_json(&from.name, &id))?;
    let released_at = time::parse_rfc3339(&rel.metadata.last_modified)
        .with_context(|| format!("release.json of {id}: metadata.last-modified"))?;
    let need = i64::from(from.bake_days) * 86_400;
    if now - released_at < need {
        let msg = format!(
            "build {id} was released on {} at {} and has baked {:.1} of the {} days {} requires",
            from.name,
            rel.metadata.last_modified,
            (now - released_at) as f64 / 86_400.0,
            from.bake_days,
            from.name
        );
        if !force {
            bail!("{msg}; wait, or use --force");
        }
        eprintln!("warning: {msg}; promoting anyway (--force)");
        forced.push(msg);
    }
    let entry = builds.get(&id).cloned().with_context(|| {
        format!(
            "build {id} is released on {} but is not in this working directory's builds.json",
            from.name
        )
    })?;
    let pd_to = PublishDir::resolve(&wd.root, publish_dir, to);
    let mut existing: Vec<String> = builds.builds.iter().map(|b| b.id.clone()).collect();
    existing.extend(pd_to.released_versions(&to.name)?);
    let new_version = version::stream_version(
        sv.releasever,
        &format!("{:08}", sv.date),
        to.code,
        &existing,
    )?;
    eprintln!(
        "Promoting {id} ({}) to {new_version} ({})",
        from.name, to.name
    );
    let repo = crate::ostree::Repo::open_or_init(&wd.repo_dir())?;
    for arch in &entry.arches {
        let src_dir = builds::build_dir(&builds_dir, &id, arch);
        let src_meta = Meta::read(&src_dir.join(meta::META_JSON))?;
        let src_commit = src_meta.ostree_commit.clone();
        let mut extra = BTreeMap::new();
        extra.insert(PROMOTED_FROM_BUILD.to_string(), Value::str(id.clone()));
        extra.insert(
            PROMOTED_FROM_STREAM.to_string(),
            Value::str(from.name.clone()),
        );
        extra.insert(
            PROMOTED_FROM_COMMIT.to_string(),
            Value::str(src_commit.clone()),
        );
        extra.insert(
            PROMOTION_FORCED.to_string(),
            Value::Bool(!forced.is_empty()),
        );
        let (commit, changed) = promote_commit(
            &repo,
            &src_commit,
            &id,
            &new_version,
            &extra,
            now.max(0) as u64,
        )?;
        compare_trees(&repo, &src_commit, &commit)
            .with_context(|| format!("proving {commit} is {src_commit} but for os-release"))?;
        repo.sync()?;
        eprintln!(
            "{arch}: commit {commit} = {src_commit} but /{} (packages and every other file identical)",
            changed.join(", /")
        );

        let staged = StagedBuild::new(&builds_dir, &lock)?;
        for f in [
            format!("manifest-lock.generated.{arch}.json"),
            "compose-report.json".to_string(),
        ] {
            let src = src_dir.join(&f);
            if src.exists() {
                let data =
                    std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
                util::write_atomic(&staged.path().join(&f), &data)?;
            }
        }
        let c = repo.read_commit(&commit)?;
        let commitmeta: serde_json::Map<String, serde_json::Value> = c
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.metadata_json()))
            .collect();
        util::write_json_atomic(&staged.path().join("commitmeta.json"), &commitmeta)?;
        let ostree_file = src_meta
            .images
            .get("ostree")
            .map(|a| a.path.replace(&id, &new_version))
            .unwrap_or_else(|| {
                crate::publish::oci::artifact_name(&src_meta.name, &new_version, &arch)
            });
        crate::publish::oci::export_artifact(
            &repo,
            &commit,
            &arch,
            &staged.path().join(&ostree_file),
        )?;
        let (sha256, size) = crate::util::digest::sha256_file(&staged.path().join(&ostree_file))?;
        let dropped: Vec<&String> = src_meta.images.keys().filter(|k| *k != "ostree").collect();
        if !dropped.is_empty() {
            eprintln!(
                "note: {arch}: images {} of {id} hold the old os-release and are not carried over; build them again",
                dropped
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let mut m = src_meta.clone();
        m.buildid = new_version.clone();
        m.ostree_commit = commit.clone();
        m.ostree_version = new_version.clone();
        m.ostree_timestamp = time::format_rfc3339(now);
        m.build_timestamp = Some(time::format_rfc3339(now));
        m.ostree_content_checksum = None;
        m.pkgdiff = None;
        m.parent_pkgdiff = None;
        m.parent_version = Some(id.clone());
        m.parent_commit = Some(src_commit.clone());
        m.extra = serde_json::Map::new();
        m.images = BTreeMap::from([(
            "ostree".to_string(),
            meta::Artifact {
                path: ostree_file.clone(),
                sha256,
                size: Some(size),
                ..Default::default()
            },
        )]);
        m.write(&staged.path().join(meta::META_JSON))?;
        let record = json!({
            "from": {"build": id, "stream": from.name, "commit": src_commit},
            "to": {"build": new_version, "stream": to.name, "commit": commit},
            "released-at": rel.metadata.last_modified,
            "bake-days": from.bake_days,
            "promoted-at": time::format_rfc3339(now),
            "forced": !forced.is_empty(),
            "overridden": forced,
            "rewritten": changed.iter().map(|p| format!("/{p}")).collect::<Vec<_>>(),
        });
        util::write_json_atomic(&staged.path().join("promotion.json"), &record)?;
        staged.publish(&builds_dir, &new_version, arch, &lock)?;
    }
    repo.update_summary()?;
    eprintln!(
        "Build {new_version} is in {}",
        builds_dir.join(&new_version).display()
    );
    Ok(new_version)
}
