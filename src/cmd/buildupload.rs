//! `cosa buildupload s3`: one build arch into a bucket in the Fedora CoreOS
//! layout, then into the bucket's builds.json (see [`crate::publish::s3`]).
//!
//! Order: artifacts, signatures, commitmeta.json and the lockfile in parallel;
//! meta.json once they are all there (a reader that finds meta.json finds
//! every file it names); builds.json last (the commit point, as locally).
//!
//! Test hook: `COSA_S3_STOP_AFTER=N` exits (status 75) right after the Nth
//! object sent, as a kill would, to test that a rerun sends only the rest.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use indicatif::HumanBytes;

use crate::cli::{BuilduploadS3Opts, GlobalOpts};
use crate::config::workdir::Workdir;
use crate::publish::merge;
use crate::publish::s3::{self, Bucket, UploadItem, UploadOpts};
use crate::store::builds::{self, BuildsJson};
use crate::store::meta::{self, Meta};
use crate::util::{self, progress::Progress};

pub fn s3(global: &GlobalOpts, opts: BuilduploadS3Opts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    let builds_dir = wd.builds_dir();
    let local = BuildsJson::load(&builds_dir)?;
    let arch = util::target_arch(opts.target.arch.as_deref())?;
    let id = local.resolve(opts.target.build.as_deref())?;
    ensure!(
        local.has_arch(&id, &arch),
        "build {id} has no {arch} part; `cosa list` shows the builds and their arches"
    );
    if opts.part_size < s3::MIN_PART_SIZE {
        bail!("--part-size must be at least 5M (S3's smallest part)");
    }
    let bucket = Bucket::parse(&opts.bucket)?;
    let dir = builds::build_dir(&builds_dir, &id, &arch);
    let m = Meta::read(&meta::meta_path(&builds_dir, &id, &arch))?;
    let files = build_files(&dir, &m, &arch)?;
    let rel = |name: &str| format!("builds/{id}/{arch}/{name}");
    let items: Vec<UploadItem> = files
        .iter()
        .map(|(name, sha256)| UploadItem {
            local: dir.join(name),
            rel: rel(name),
            sha256: sha256.clone(),
        })
        .collect();
    let meta_item = UploadItem {
        local: dir.join(meta::META_JSON),
        rel: rel(meta::META_JSON),
        sha256: None,
    };
    let stop_after = match std::env::var("COSA_S3_STOP_AFTER") {
        Ok(v) => Some(v.parse().context("COSA_S3_STOP_AFTER must be a number")?),
        Err(_) => None,
    };
    let up = UploadOpts {
        acl: opts.acl.clone(),
        jobs: opts.jobs.max(1),
        multipart_threshold: opts.multipart_threshold,
        part_size: opts.part_size,
        stop_after,
    };
    let total: u64 = items
        .iter()
        .chain([&meta_item])
        .map(|i| std::fs::metadata(&i.local).map(|m| m.len()).unwrap_or(0))
        .sum();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(up.jobs.clamp(1, 4))
        .thread_name("cosa-s3")
        .enable_all()
        .build()
        .context("starting the upload runtime")?;
    let url = bucket.url();
    rt.block_on(async {
        let client = s3::client(&s3::ClientOpts {
            endpoint_url: opts.endpoint_url.clone(),
        })
        .await?;
        let progress = Progress::new(&format!("Uploading {id}/{arch} to {url}"), total, true);
        let mut rep = s3::upload(&client, &bucket, &items, &up, &progress).await?;
        let last = s3::upload(&client, &bucket, &[meta_item], &up, &progress).await?;
        rep.sent += last.sent;
        rep.sent_bytes += last.sent_bytes;
        rep.skipped += last.skipped;
        rep.skipped_bytes += last.skipped_bytes;
        progress.finish(&format!(
            "{} object(s) sent ({}), {} in parts, {} already there with the same sha256 ({}) skipped",
            rep.sent,
            HumanBytes(rep.sent_bytes),
            rep.multipart,
            rep.skipped,
            HumanBytes(rep.skipped_bytes)
        ));

        let one = merge::one_arch(&local, &id, &arch);
        let res = s3::update_builds_json(
            &client,
            &bucket,
            up.acl.as_deref(),
            |base| (!base.has_arch(&id, &arch)).then(|| merge::merge_one(base, &one, &id)),
            |b| b.has_arch(&id, &arch),
        )
        .await?;
        let arches = res
            .builds
            .get(&id)
            .map(|b| b.arches.join(", "))
            .unwrap_or_default();
        if res.written {
            eprintln!(
                "Added {id} {arch} to {url}/builds/builds.json (arches now: {arches}; {} conflicting write(s) retried)",
                res.conflicts
            );
        } else {
            eprintln!("{url}/builds/builds.json already lists {id} {arch}");
        }
        anyhow::Ok(())
    })
}

/// The files of a build arch to upload besides meta.json, by name in the
/// build dir, with the sha256 meta.json records for them (artifacts only):
/// every artifact and its `.sig`, commitmeta.json and the lockfile.
fn build_files(dir: &Path, m: &Meta, arch: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut v = Vec::new();
    for (name, art) in &m.images {
        if art.path.contains('/') || art.path.starts_with('.') {
            bail!(
                "images.{name} has path {:?}, not a file name in the build dir",
                art.path
            );
        }
        ensure!(
            dir.join(&art.path).is_file(),
            "images.{name} of meta.json names {}, which is missing",
            dir.join(&art.path).display()
        );
        v.push((art.path.clone(), Some(art.sha256.clone())));
        let sig = format!("{}.sig", art.path);
        if dir.join(&sig).is_file() {
            v.push((sig, None));
        }
    }
    for extra in [
        "commitmeta.json".to_string(),
        format!("manifest-lock.generated.{arch}.json"),
    ] {
        if dir.join(&extra).is_file() {
            v.push((extra, None));
        }
    }
    Ok(v)
}
