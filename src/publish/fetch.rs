//! Where `cosa buildfetch` reads a build store from: an S3 bucket
//! (`s3://B/PREFIX`), a web server (`https://host/PREFIX`, the bucket served
//! over HTTP) or a local directory, all with the same layout under them:
//! `builds/builds.json` and `builds/<id>/<arch>/<file>`.
//!
//! Files land through a temp file in the destination directory, checked
//! against the expected sha256 before the rename: nothing half-written or
//! corrupt ever carries a real name.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::s3::{self, Bucket};
use crate::store::builds::TMP_PREFIX;
use crate::util::digest::Hasher;

/// A build store to read from.
pub enum Source {
    S3 {
        client: aws_sdk_s3::Client,
        bucket: Bucket,
    },
    Http {
        client: reqwest::Client,
        /// Without a trailing `/`.
        base: String,
    },
    Local(PathBuf),
}

/// GET `url`: the response, `None` on 404, an error on any other failure.
async fn http_get(client: &reqwest::Client, url: &str) -> Result<Option<reqwest::Response>> {
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    Ok(Some(
        resp.error_for_status()
            .with_context(|| format!("GET {url}"))?,
    ))
}

impl Source {
    /// `s3://B/PREFIX`, `http(s)://...`, `file:///path` or a path.
    pub async fn open(url: &str, endpoint_url: Option<String>) -> Result<Source> {
        if url.starts_with("s3://") {
            let bucket = Bucket::parse(url)?;
            let client = s3::client(&s3::ClientOpts { endpoint_url }).await?;
            return Ok(Source::S3 { client, bucket });
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            url::Url::parse(url).with_context(|| format!("parsing URL {url:?}"))?;
            let client = crate::util::http_client()?;
            return Ok(Source::Http {
                client,
                base: url.trim_end_matches('/').to_string(),
            });
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if url.contains("://") && !url.starts_with("file://") {
            bail!("unsupported URL {url:?}: give s3://B/PREFIX, https://..., or a local path");
        }
        let p = PathBuf::from(path);
        if !p.is_dir() {
            bail!("{} is not a directory", p.display());
        }
        Ok(Source::Local(p))
    }

    /// Where `rel` is, for messages.
    pub fn describe(&self, rel: &str) -> String {
        match self {
            Source::S3 { bucket, .. } => format!("s3://{}/{}", bucket.bucket, bucket.key(rel)),
            Source::Http { base, .. } => format!("{base}/{rel}"),
            Source::Local(p) => p.join(rel).display().to_string(),
        }
    }

    /// The whole of `rel` in memory, or `None` when it does not exist.
    pub async fn get_bytes(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let what = self.describe(rel);
        match self {
            Source::S3 { client, bucket } => {
                Ok(s3::get_bytes(client, bucket, rel).await?.map(|(d, _)| d))
            }
            Source::Http { client, .. } => match http_get(client, &what).await? {
                None => Ok(None),
                Some(resp) => Ok(Some(
                    resp.bytes()
                        .await
                        .with_context(|| format!("reading {what}"))?
                        .to_vec(),
                )),
            },
            Source::Local(_) => match tokio::fs::read(&what).await {
                Ok(d) => Ok(Some(d)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("reading {what}")),
            },
        }
    }

    /// Bring `rel` to `dest` (temp file in its directory, then rename),
    /// checking its sha256 when `sha256` is given. Returns the bytes written,
    /// or `None` when the source has no such file.
    pub async fn get_file(
        &self,
        rel: &str,
        dest: &Path,
        sha256: Option<&str>,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<Option<u64>> {
        let what = self.describe(rel);
        let dir = dest.parent().context("destination has no directory")?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{TMP_PREFIX}-fetch-"))
            .tempfile_in(dir)
            .with_context(|| format!("creating a temp file in {}", dir.display()))?;
        let mut out = tokio::fs::File::from_std(
            tmp.reopen()
                .with_context(|| format!("opening {}", tmp.path().display()))?,
        );
        let mut hasher = Hasher::new("sha256")?;
        let mut size = 0u64;
        let mut take = |chunk: &[u8]| {
            hasher.update(chunk);
            size += chunk.len() as u64;
            on_bytes(chunk.len() as u64);
        };
        let found = match self {
            Source::S3 { client, bucket } => {
                s3::get_to_file(client, bucket, rel, &mut out, &mut take)
                    .await?
                    .is_some()
            }
            Source::Http { client, .. } => {
                if let Some(resp) = http_get(client, &what).await? {
                    let mut body = resp.bytes_stream();
                    while let Some(chunk) = body.next().await {
                        let chunk = chunk.with_context(|| format!("reading {what}"))?;
                        take(&chunk);
                        out.write_all(&chunk)
                            .await
                            .with_context(|| format!("writing {}", tmp.path().display()))?;
                    }
                    true
                } else {
                    false
                }
            }
            Source::Local(_) => {
                let src = PathBuf::from(&what);
                if !src.exists() {
                    false
                } else {
                    let mut f =
                        std::fs::File::open(&src).with_context(|| format!("opening {what}"))?;
                    let mut w = tmp.as_file();
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = std::io::Read::read(&mut f, &mut buf)
                            .with_context(|| format!("reading {what}"))?;
                        if n == 0 {
                            break;
                        }
                        take(&buf[..n]);
                        w.write_all(&buf[..n])
                            .with_context(|| format!("writing {}", tmp.path().display()))?;
                    }
                    true
                }
            }
        };
        if !found {
            return Ok(None);
        }
        out.flush().await.context("flushing")?;
        drop(out);
        let got = hasher.finish_hex();
        if let Some(want) = sha256
            && !got.eq_ignore_ascii_case(want)
        {
            bail!("{what}: sha256 is {got}, meta.json says {want}; not keeping it");
        }
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("syncing {}", tmp.path().display()))?;
        tmp.persist(dest)
            .with_context(|| format!("renaming into {}", dest.display()))?;
        Ok(Some(size))
    }
}
