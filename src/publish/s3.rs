//! The build store in an S3 bucket, laid out as Fedora CoreOS's:
//! `PREFIX/builds/builds.json` and `PREFIX/builds/<id>/<arch>/<file>`.
//!
//! Objects carry their sha256 in user metadata (`x-amz-meta-sha256`), so an
//! upload first asks (HEAD) and skips what is already there with the same
//! digest: a rerun after an interruption sends only what is missing. Large
//! files go up in parts. builds.json is changed only by a read-merge-write
//! loop with conditional PUTs (`If-Match: <etag>`, or `If-None-Match: *` when
//! it does not exist yet), retried on 412/409, so that two arches uploading
//! at once both land without a lock server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ObjectCannedAcl};
use futures_util::StreamExt;

use crate::store::builds::{BUILDS_JSON, BuildsJson};
use crate::util::progress::Progress;
use crate::util::time;

/// The user-metadata key holding an object's sha256 (hex).
pub const SHA256_META: &str = "sha256";
/// Default size from which a file is uploaded in parts, in bytes.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 64 << 20;
/// Default part size, in bytes (S3's minimum is 5 MiB, its maximum part count 10000).
pub const DEFAULT_PART_SIZE: u64 = 16 << 20;
/// S3's smallest part but the last, in bytes.
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Attempts of one request inside the SDK (exponential backoff with jitter).
const SDK_ATTEMPTS: u32 = 5;
/// Attempts of one whole object upload (each with the SDK's own retries).
const OBJECT_ATTEMPTS: u32 = 3;
/// Rounds of the builds.json read-merge-write loop before giving up.
const CAS_ROUNDS: u32 = 30;

/// A size in bytes, or with a K/M/G suffix (powers of 1024; `MiB`, `M` and
/// `m` alike), for `--multipart-threshold` and `--part-size`.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = t[digits.len()..].to_ascii_lowercase();
    let mult: u64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size {s:?}: give bytes or a number with K, M or G"
            ));
        }
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid size {s:?}: give bytes or a number with K, M or G"))
}

/// `BUCKET[/PREFIX]`, from `B/PREFIX` or `s3://B/PREFIX`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub bucket: String,
    /// No leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl Bucket {
    pub fn parse(s: &str) -> Result<Bucket> {
        let rest = s.strip_prefix("s3://").unwrap_or(s);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(|c: char| c.is_whitespace() || c == ':') {
            bail!("invalid bucket {s:?}: give BUCKET/PREFIX or s3://BUCKET/PREFIX");
        }
        Ok(Bucket {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The key of `rel` (a path under PREFIX, such as `builds/builds.json`).
    pub fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    /// `s3://bucket/prefix` for messages.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Where and how to reach S3.
#[derive(Debug, Clone, Default)]
pub struct ClientOpts {
    /// An S3-compatible endpoint (path-style addressing is used with it).
    pub endpoint_url: Option<String>,
}

/// An S3 client from the usual AWS chain (environment, profile, SSO-less
/// config files, instance metadata); region `us-east-1` when none is set.
/// Checksums are sent only where S3 requires them, which S3-compatible
/// stores accept too.
pub async fn client(opts: &ClientOpts) -> Result<Client> {
    let region = RegionProviderChain::default_provider().or_else("us-east-1");
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(RetryConfig::standard().with_max_attempts(SDK_ATTEMPTS))
        .load()
        .await;
    let mut b = aws_sdk_s3::config::Builder::from(&sdk)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(url) = &opts.endpoint_url {
        b = b.endpoint_url(url).force_path_style(true);
    }
    Ok(Client::from_conf(b.build()))
}

/// The whole cause chain of an SDK error (its Display is only "service error").
fn sdk_err<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> anyhow::Error
where
    SdkError<E, R>: std::error::Error + Send + Sync + 'static,
{
    anyhow::anyhow!("{}", DisplayErrorContext(&e))
}

/// The HTTP status of a failed request, if it got an answer.
fn status<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// One file to upload: `local` to key `rel` (under the bucket's prefix).
#[derive(Debug, Clone)]
pub struct UploadItem {
    pub local: PathBuf,
    pub rel: String,
    /// The sha256 the file must have (meta.json's), if known.
    pub sha256: Option<String>,
}

/// How to upload.
#[derive(Debug, Clone)]
pub struct UploadOpts {
    /// A canned ACL (`private`, `public-read`, ...), if any.
    pub acl: Option<String>,
    /// Objects in flight at once.
    pub jobs: usize,
    /// Files of at least this many bytes go up in parts.
    pub multipart_threshold: u64,
    /// Part size in bytes.
    pub part_size: u64,
    /// Test hook: exit the process (status 75, as if killed) once this many
    /// objects were sent, leaving the rest undone.
    pub stop_after: Option<usize>,
}

impl Default for UploadOpts {
    fn default() -> Self {
        UploadOpts {
            acl: None,
            jobs: 4,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            stop_after: None,
        }
    }
}

/// What an upload did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UploadReport {
    /// Objects sent (PUT or multipart).
    pub sent: usize,
    pub sent_bytes: u64,
    /// Of those, sent in parts.
    pub multipart: usize,
    /// Objects already there with the same sha256.
    pub skipped: usize,
    pub skipped_bytes: u64,
}

/// What became of one object.
enum Outcome {
    Sent { bytes: u64, multipart: bool },
    Skipped { bytes: u64 },
}

/// Upload `items` into `bucket`, `opts.jobs` at a time, skipping objects
/// whose stored sha256 and size equal the file's.
pub async fn upload(
    client: &Client,
    bucket: &Bucket,
    items: &[UploadItem],
    opts: &UploadOpts,
    progress: &Progress,
) -> Result<UploadReport> {
    let sent_count = Arc::new(AtomicUsize::new(0));
    let results: Vec<Result<Outcome>> = futures_util::stream::iter(items.iter())
        .map(|item| {
            let sent_count = sent_count.clone();
            async move {
                let out = upload_one(client, bucket, item, opts).await?;
                if let Outcome::Sent { .. } = out {
                    let n = sent_count.fetch_add(1, Ordering::SeqCst) + 1;
                    if opts.stop_after == Some(n) {
                        eprintln!("Stopping after {n} uploaded object(s) (test hook)");
                        std::process::exit(75);
                    }
                }
                let b = match out {
                    Outcome::Sent { bytes, .. } | Outcome::Skipped { bytes } => bytes,
                };
                progress.inc(b);
                Ok(out)
            }
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    let mut rep = UploadReport::default();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(Outcome::Sent { bytes, multipart }) => {
                rep.sent += 1;
                rep.sent_bytes += bytes;
                rep.multipart += usize::from(multipart);
            }
            Ok(Outcome::Skipped { bytes }) => {
                rep.skipped += 1;
                rep.skipped_bytes += bytes;
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !errors.is_empty() {
        bail!(
            "{} of {} uploads failed (rerun to send only what is missing):\n  {}",
            errors.len(),
            items.len(),
            errors.join("\n  ")
        );
    }
    Ok(rep)
}

async fn upload_one(
    client: &Client,
    bucket: &Bucket,
    item: &UploadItem,
    opts: &UploadOpts,
) -> Result<Outcome> {
    let key = bucket.key(&item.rel);
    let local = item.local.clone();
    let (sha256, size) =
        tokio::task::spawn_blocking(move || crate::util::digest::sha256_file(&local))
            .await
            .context("hashing task")??;
    if let Some(want) = &item.sha256
        && !want.eq_ignore_ascii_case(&sha256)
    {
        bail!(
            "{} has sha256 {sha256} but meta.json says {want}; not uploading a changed artifact",
            item.local.display()
        );
    }
    if let Some(stored) = stored_sha256(client, bucket, &key).await?
        && stored.0 == sha256
        && stored.1 == size
    {
        return Ok(Outcome::Skipped { bytes: size });
    }
    let multipart = size >= opts.multipart_threshold && size > opts.part_size;
    let mut attempt = 1;
    loop {
        let r = if multipart {
            put_multipart(client, bucket, &key, &item.local, &sha256, size, opts).await
        } else {
            put_file(client, bucket, &key, &item.local, &sha256, opts).await
        };
        match r {
            Ok(()) => {
                return Ok(Outcome::Sent {
                    bytes: size,
                    multipart,
                });
            }
            Err(e) if attempt < OBJECT_ATTEMPTS => {
                tracing::warn!("uploading {key} (attempt {attempt}): {e:#}");
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "uploading {} to s3://{}/{key} ({OBJECT_ATTEMPTS} attempts)",
                        item.local.display(),
                        bucket.bucket
                    )
                });
            }
        }
    }
}

/// The sha256 metadata and size of `key`, or `None` when it does not exist.
pub async fn stored_sha256(
    client: &Client,
    bucket: &Bucket,
    key: &str,
) -> Result<Option<(String, u64)>> {
    match client
        .head_object()
        .bucket(&bucket.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(h) => {
            let sha = h
                .metadata()
                .and_then(|m| m.get(SHA256_META))
                .cloned()
                .unwrap_or_default();
            Ok(Some((sha, h.content_length().unwrap_or(-1).max(0) as u64)))
        }
        Err(e) if status(&e) == Some(404) => Ok(None),
        Err(e) => Err(sdk_err(e)).with_context(|| format!("HEAD s3://{}/{key}", bucket.bucket)),
    }
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

async fn put_file(
    client: &Client,
    bucket: &Bucket,
    key: &str,
    path: &Path,
    sha256: &str,
    opts: &UploadOpts,
) -> Result<()> {
    let body = ByteStream::from_path(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    client
        .put_object()
        .bucket(&bucket.bucket)
        .key(key)
        .body(body)
        .content_type(content_type(key))
        .metadata(SHA256_META, sha256)
        .set_acl(opts.acl.as_deref().map(ObjectCannedAcl::from))
        .send()
        .await
        .map_err(sdk_err)?;
    Ok(())
}

async fn put_multipart(
    client: &Client,
    bucket: &Bucket,
    key: &str,
    path: &Path,
    sha256: &str,
    size: u64,
    opts: &UploadOpts,
) -> Result<()> {
    let created = client
        .create_multipart_upload()
        .bucket(&bucket.bucket)
        .key(key)
        .content_type(content_type(key))
        .metadata(SHA256_META, sha256)
        .set_acl(opts.acl.as_deref().map(ObjectCannedAcl::from))
        .send()
        .await
        .map_err(sdk_err)
        .context("starting a multipart upload")?;
    let upload_id = created
        .upload_id()
        .context("the server gave no multipart upload id")?
        .to_string();
    let r = put_parts(client, bucket, key, path, size, opts.part_size, &upload_id).await;
    if r.is_err() {
        // Parts of an unfinished upload are billed until aborted.
        let _ = client
            .abort_multipart_upload()
            .bucket(&bucket.bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    r
}

async fn put_parts(
    client: &Client,
    bucket: &Bucket,
    key: &str,
    path: &Path,
    size: u64,
    part_size: u64,
    upload_id: &str,
) -> Result<()> {
    let mut parts = Vec::new();
    let mut offset = 0u64;
    let mut number = 1i32;
    while offset < size {
        let len = part_size.min(size - offset);
        let body = ByteStream::read_from()
            .path(path)
            .offset(offset)
            .length(Length::Exact(len))
            .build()
            .await
            .with_context(|| format!("reading {} at {offset}", path.display()))?;
        let out = client
            .upload_part()
            .bucket(&bucket.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(len as i64)
            .body(body)
            .send()
            .await
            .map_err(sdk_err)
            .with_context(|| format!("uploading part {number}"))?;
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
        offset += len;
        number += 1;
    }
    client
        .complete_multipart_upload()
        .bucket(&bucket.bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(sdk_err)
        .context("completing the multipart upload")?;
    Ok(())
}

/// GET `rel`: its bytes and ETag, or `None` when it does not exist.
pub async fn get_bytes(
    client: &Client,
    bucket: &Bucket,
    rel: &str,
) -> Result<Option<(Vec<u8>, Option<String>)>> {
    let key = bucket.key(rel);
    match client
        .get_object()
        .bucket(&bucket.bucket)
        .key(&key)
        .send()
        .await
    {
        Ok(o) => {
            let etag = o.e_tag().map(str::to_string);
            let data = o
                .body
                .collect()
                .await
                .with_context(|| format!("reading s3://{}/{key}", bucket.bucket))?
                .into_bytes()
                .to_vec();
            Ok(Some((data, etag)))
        }
        Err(e) if status(&e) == Some(404) => Ok(None),
        Err(e) => Err(sdk_err(e)).with_context(|| format!("GET s3://{}/{key}", bucket.bucket)),
    }
}

/// Stream `rel` into the open file `out`; `None` when it does not exist.
pub async fn get_to_file(
    client: &Client,
    bucket: &Bucket,
    rel: &str,
    out: &mut tokio::fs::File,
    mut on_chunk: impl FnMut(&[u8]),
) -> Result<Option<()>> {
    use tokio::io::AsyncWriteExt;
    let key = bucket.key(rel);
    let o = match client
        .get_object()
        .bucket(&bucket.bucket)
        .key(&key)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) if status(&e) == Some(404) => return Ok(None),
        Err(e) => {
            return Err(sdk_err(e)).with_context(|| format!("GET s3://{}/{key}", bucket.bucket));
        }
    };
    let mut body = o.body;
    while let Some(chunk) = body
        .try_next()
        .await
        .with_context(|| format!("reading s3://{}/{key}", bucket.bucket))?
    {
        on_chunk(&chunk);
        out.write_all(&chunk).await.context("writing")?;
    }
    Ok(Some(()))
}

/// The key of builds.json under the prefix.
pub fn builds_json_rel() -> String {
    format!("builds/{BUILDS_JSON}")
}

/// What [`update_builds_json`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildsJsonUpdate {
    /// builds.json as it stands after our write (or as found, if unchanged).
    pub builds: BuildsJson,
    /// Whether we wrote it.
    pub written: bool,
    /// Conditional writes refused because someone else wrote first.
    pub conflicts: u32,
}

/// How long a written change must stay in builds.json before it counts.
const SETTLE_MS: u64 = 200;

/// Read-merge-write builds.json until our conditional PUT wins: `change`
/// gets the current list and returns the new one, or `None` when nothing is
/// to change; `done` tells whether a list already holds our change (checked
/// again after writing, in case a server let a racing write through).
pub async fn update_builds_json(
    client: &Client,
    bucket: &Bucket,
    acl: Option<&str>,
    change: impl Fn(&BuildsJson) -> Option<BuildsJson>,
    done: impl Fn(&BuildsJson) -> bool,
) -> Result<BuildsJsonUpdate> {
    let rel = builds_json_rel();
    let key = bucket.key(&rel);
    let mut conflicts = 0;
    let mut written = false;
    let mut confirmed = false;
    for round in 0..CAS_ROUNDS {
        let current = get_bytes(client, bucket, &rel).await?;
        let (base, etag) = match &current {
            Some((data, etag)) => {
                let text = String::from_utf8_lossy(data);
                let b = BuildsJson::parse(&text)
                    .with_context(|| format!("parsing s3://{}/{key}", bucket.bucket))?;
                (b, etag.clone())
            }
            None => (BuildsJson::default(), None),
        };
        if written {
            if done(&base) {
                // Seen once more after a pause: a racer whose conditional
                // write a non-atomic server let through just before ours
                // landed may still be writing.
                if confirmed {
                    return Ok(BuildsJsonUpdate {
                        builds: base,
                        written,
                        conflicts,
                    });
                }
                confirmed = true;
                let ms = SETTLE_MS + rand::random::<u64>() % 100;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                continue;
            }
            confirmed = false;
            // The server took our conditional write but a racing one
            // replaced it (a server that checks the condition apart from the
            // write, as s3s-fs does): merge our change in again.
            tracing::warn!("{key}: our write was lost to a racing writer; merging again");
            conflicts += 1;
        }
        let Some(mut new) = change(&base) else {
            return Ok(BuildsJsonUpdate {
                builds: base,
                written,
                conflicts,
            });
        };
        new.timestamp = Some(time::format_rfc3339(time::now_secs()));
        let body = serde_json::to_vec_pretty(&new).context("serializing builds.json")?;
        let mut req = client
            .put_object()
            .bucket(&bucket.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .set_acl(acl.map(ObjectCannedAcl::from));
        req = match (&current, etag) {
            (None, _) => req.if_none_match("*"),
            (Some(_), Some(etag)) => req.if_match(etag),
            (Some(_), None) => {
                tracing::warn!("the server sent no ETag for {key}: writing it without a condition");
                req
            }
        };
        match req.send().await {
            Ok(_) => {
                written = true;
                // Read back (next round): a server that checks the condition
                // but not atomically with the write could have let a racer
                // overwrite us; if our change is gone we merge it in again.
            }
            Err(e) if matches!(status(&e), Some(412 | 409)) => {
                conflicts += 1;
                // Back off with jitter so racing writers spread out.
                let ms = 50u64 * (1 << round.min(5)) + rand::random::<u64>() % 100;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Err(e) => {
                return Err(sdk_err(e))
                    .with_context(|| format!("writing s3://{}/{key}", bucket.bucket));
            }
        }
    }
    bail!(
        "s3://{}/{key} kept changing under us: {CAS_ROUNDS} conditional writes in a row lost; rerun",
        bucket.bucket
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("5MiB"), Ok(5 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn bucket_and_prefix() {
        let b = Bucket::parse("s3://fcos-builds/prod/streams/stable/").unwrap();
        assert_eq!(b.bucket, "fcos-builds");
        assert_eq!(b.prefix, "prod/streams/stable");
        assert_eq!(
            b.key("builds/builds.json"),
            "prod/streams/stable/builds/builds.json"
        );
        assert_eq!(b.url(), "s3://fcos-builds/prod/streams/stable");
        let b = Bucket::parse("bkt").unwrap();
        assert_eq!(b.key("builds/x"), "builds/x");
        assert_eq!(b.url(), "s3://bkt");
        assert!(Bucket::parse("").is_err());
        assert!(Bucket::parse("s3:///x").is_err());
    }
}
