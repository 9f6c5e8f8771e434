//! Downloads (file://, http://, https://): bounded parallelism on tokio,
//! retries with backoff, checksums verified before a file enters the cache,
//! temp file + rename so nothing partial is ever cached. Also the package
//! cache and OpenPGP signature checks (`gpgcheck=1`).
//!
//! How one item is fetched: its URLs are tried in order. Each URL gets
//! [`Downloader::attempts`] tries, with a backoff starting at
//! [`Downloader::backoff`] and doubling, when the failure may be passing
//! (connection error, HTTP 5xx/408/429, a body cut short). A 404, another 4xx,
//! or content that is complete but wrong (size or digest) moves on to the next
//! URL at once, as dnf does with mirrors. The body is streamed into a temp file
//! in the destination directory and hashed as it is written; only a file with
//! the right size and digest is renamed onto `dest`.
//!
//! The package cache is `cache/pkgs/<2 hex>/<checksum hex>/<name>-<v>-<r>.<arch>.rpm`,
//! keyed by the repodata checksum, so two builds of one NEVRA from two repos
//! never collide. A file enters the cache only after its digest was checked
//! and, for a repo with `gpgcheck`, its signature verified (packages of such
//! repos are downloaded into `cache/pkgs/.incoming/` first). So a cache hit is
//! trusted as is; only its size is re-checked, which is cheap. The signature is
//! checked when the file enters the cache, not on every use.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use rayon::prelude::*;
use std::io::Read;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::repodata::LoadedRepo;
use super::types::PackageMeta;
use crate::util::digest::Hasher;
use crate::util::progress::Progress;

/// An expected digest, with the type named as in repodata (`sha256`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub kind: String,
    pub hex: String,
}

impl Checksum {
    pub fn new(kind: &str, hex: &str) -> Checksum {
        Checksum {
            kind: kind.to_string(),
            hex: hex.to_string(),
        }
    }

    /// Is the type one we can compute and the digest well formed for it?
    pub fn validate(&self) -> Result<()> {
        let hasher = Hasher::new(&self.kind)?;
        let want = hasher.hex_len();
        if self.hex.len() != want || !self.hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "malformed {} digest {:?} (want {want} hex digits)",
                self.kind,
                self.hex
            );
        }
        Ok(())
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.hex.to_ascii_lowercase())
    }
}

/// One file to bring.
#[derive(Debug, Clone)]
pub struct Item {
    /// Human name for messages (a package NEVRA, "repomd.xml of fedora", ...).
    pub name: String,
    /// Candidate URLs, tried in order (one per baseurl mirror).
    pub urls: Vec<url::Url>,
    pub dest: PathBuf,
    pub checksum: Option<Checksum>,
    pub size: Option<u64>,
}

/// Fetches files; synchronous API (it runs its own tokio runtime), so callers
/// must not be inside a tokio runtime.
pub struct Downloader {
    /// How many files are fetched at once (at least 1).
    pub jobs: usize,
    /// Tries per URL for failures that may pass (connection, 5xx, truncated body).
    pub attempts: u32,
    /// Wait before the second try of a URL; doubles after each further try.
    pub backoff: Duration,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// Default tries per URL.
const DEFAULT_ATTEMPTS: u32 = 3;
/// Default first backoff, in milliseconds.
const DEFAULT_BACKOFF_MS: u64 = 200;
/// How many failed items one error lists in full.
const MAX_LISTED_ERRORS: usize = 10;
/// Read buffer for file:// copies and hashing, in bytes.
const BUF_SIZE: usize = 256 * 1024;

/// How one attempt at one URL failed.
enum Failure {
    /// May pass: try this URL again after a backoff.
    Retry(anyhow::Error),
    /// Will not pass on this URL: go to the next one.
    NextUrl(anyhow::Error),
}

impl Downloader {
    pub fn new(jobs: usize) -> Result<Downloader> {
        let jobs = jobs.max(1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(jobs.clamp(1, 4))
            .thread_name("cosa-download")
            .enable_all()
            .build()
            .context("starting the download runtime")?;
        let client = crate::util::http_client()?;
        Ok(Downloader {
            jobs,
            attempts: DEFAULT_ATTEMPTS,
            backoff: Duration::from_millis(DEFAULT_BACKOFF_MS),
            client,
            rt,
        })
    }

    /// Fetch one file to `item.dest` (verified, atomically renamed in).
    pub fn fetch(&self, item: &Item) -> Result<()> {
        self.rt.block_on(self.fetch_one(item, None))
    }

    /// Fetch all items in parallel with progress titled `what`.
    pub fn fetch_all(&self, what: &str, items: Vec<Item>) -> Result<()> {
        let names: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
        let results = self.fetch_many(what, &items);
        combine_errors(what, names.len(), results.into_iter().map(|(_, r)| r))
    }

    /// Fetch all items, `jobs` at a time, and return each item's result (in
    /// input order). Prints progress and a closing summary line.
    pub fn fetch_many(&self, what: &str, items: &[Item]) -> Vec<(usize, Result<()>)> {
        if items.is_empty() {
            return vec![];
        }
        let total: u64 = items.iter().filter_map(|i| i.size).sum();
        let progress = Progress::new(what, total, true);
        let start = Instant::now();
        let mut results = self.rt.block_on(async {
            futures_util::stream::iter(items.iter().enumerate())
                .map(|(n, item)| {
                    let progress = &progress;
                    async move { (n, self.fetch_one(item, Some(progress)).await) }
                })
                .buffer_unordered(self.jobs.max(1))
                .collect::<Vec<_>>()
                .await
        });
        results.sort_by_key(|(n, _)| *n);
        let ok: Vec<&Item> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| &items[*n])
            .collect();
        let bytes: u64 = ok
            .iter()
            .map(|i| {
                i.size
                    .or_else(|| std::fs::metadata(&i.dest).ok().map(|m| m.len()))
                    .unwrap_or(0)
            })
            .sum();
        let failed = items.len() - ok.len();
        let mut msg = format!(
            "{} files, {:.1} MiB in {:.1} s",
            ok.len(),
            bytes as f64 / (1024.0 * 1024.0),
            start.elapsed().as_secs_f64()
        );
        if failed > 0 {
            msg.push_str(&format!(", {failed} failed"));
        }
        progress.finish(&msg);
        results
    }

    /// Try every URL of `item` in turn until one gives the right file.
    async fn fetch_one(&self, item: &Item, progress: Option<&Progress>) -> Result<()> {
        if let Some(sum) = &item.checksum {
            sum.validate()
                .with_context(|| format!("checksum of {}", item.name))?;
        }
        if item.urls.is_empty() {
            bail!("downloading {}: no URL to fetch it from", item.name);
        }
        let dir = parent_dir(&item.dest);
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
        let mut reported = 0u64;
        let mut failures = Vec::new();
        for url in &item.urls {
            let mut tries = 0;
            let err = loop {
                tries += 1;
                let res = self.try_url(item, url, progress, &mut reported).await;
                match res {
                    Ok(()) => return Ok(()),
                    Err(Failure::NextUrl(e)) => break e,
                    Err(Failure::Retry(e)) if tries >= self.attempts.max(1) => break e,
                    Err(Failure::Retry(e)) => {
                        let wait = self.backoff * 2u32.saturating_pow(tries - 1);
                        tracing::debug!("{}: {url}: {e:#}; retrying in {wait:?}", item.name);
                        tokio::time::sleep(wait).await;
                    }
                }
            };
            let after = if tries > 1 {
                format!(" (after {tries} attempts)")
            } else {
                String::new()
            };
            failures.push(format!("{url}: {err:#}{after}"));
        }
        if failures.len() == 1 {
            bail!("downloading {}: {}", item.name, failures[0]);
        }
        bail!(
            "downloading {}: every URL failed:\n    {}",
            item.name,
            failures.join("\n    ")
        )
    }

    /// One attempt at one URL.
    async fn try_url(
        &self,
        item: &Item,
        url: &url::Url,
        progress: Option<&Progress>,
        reported: &mut u64,
    ) -> Result<(), Failure> {
        let mut sink = Sink::new(item, progress, reported).map_err(Failure::NextUrl)?;
        match url.scheme() {
            "file" => copy_file(url, &mut sink).await?,
            "http" | "https" => self.get_http(url, &mut sink).await?,
            other => {
                return Err(Failure::NextUrl(anyhow!(
                    "unsupported URL scheme {other:?}"
                )));
            }
        }
        sink.finish(item).await
    }

    async fn get_http(&self, url: &url::Url, sink: &mut Sink<'_>) -> Result<(), Failure> {
        let resp = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| Failure::Retry(anyhow!(e).context("connecting")))?;
        let status = resp.status();
        if !status.is_success() {
            let e = anyhow!("HTTP {status}");
            return Err(
                if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                    Failure::Retry(e)
                } else {
                    Failure::NextUrl(e)
                },
            );
        }
        let announced = resp.content_length();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                Failure::Retry(
                    anyhow!(e).context(format!("body cut short after {} bytes", sink.written)),
                )
            })?;
            sink.write(&chunk).await?;
        }
        if let Some(n) = announced
            && sink.written < n
        {
            return Err(Failure::Retry(anyhow!(
                "body cut short: got {} of {n} bytes",
                sink.written
            )));
        }
        Ok(())
    }
}

/// file:// copy; a missing file moves on to the next URL.
async fn copy_file(url: &url::Url, sink: &mut Sink<'_>) -> Result<(), Failure> {
    let path = url
        .to_file_path()
        .map_err(|_| Failure::NextUrl(anyhow!("not a local path")))?;
    let mut f = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Failure::NextUrl(anyhow!(e).context(format!("opening {}", path.display()))))?;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = f.read(&mut buf).await.map_err(|e| {
            Failure::NextUrl(anyhow!(e).context(format!("reading {}", path.display())))
        })?;
        if n == 0 {
            return Ok(());
        }
        sink.write(&buf[..n]).await?;
    }
}

/// The temp file a download streams into, hashing as it goes.
struct Sink<'a> {
    tmp: tempfile::NamedTempFile,
    file: tokio::fs::File,
    hasher: Option<Hasher>,
    written: u64,
    progress: Option<&'a Progress>,
    /// Bytes of this item already counted in `progress` (across attempts, so
    /// a retry does not count the same bytes twice).
    reported: &'a mut u64,
}

impl<'a> Sink<'a> {
    fn new(item: &Item, progress: Option<&'a Progress>, reported: &'a mut u64) -> Result<Self> {
        let dir = parent_dir(&item.dest);
        let base = item
            .dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{base}."))
            .suffix(".part")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temp file in {}", dir.display()))?;
        let file = tmp
            .as_file()
            .try_clone()
            .with_context(|| format!("opening {}", tmp.path().display()))?;
        let hasher = match &item.checksum {
            Some(sum) => Some(Hasher::new(&sum.kind)?),
            None => None,
        };
        Ok(Sink {
            tmp,
            file: tokio::fs::File::from_std(file),
            hasher,
            written: 0,
            progress,
            reported,
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), Failure> {
        self.file.write_all(chunk).await.map_err(|e| {
            Failure::NextUrl(anyhow!(e).context(format!("writing {}", self.tmp.path().display())))
        })?;
        if let Some(h) = &mut self.hasher {
            h.update(chunk);
        }
        self.written += chunk.len() as u64;
        if let Some(p) = self.progress
            && self.written > *self.reported
        {
            p.inc(self.written - *self.reported);
            *self.reported = self.written;
        }
        Ok(())
    }

    /// Check size and digest; rename onto `item.dest` only when both match.
    /// On any error the temp file is dropped (deleted).
    async fn finish(mut self, item: &Item) -> Result<(), Failure> {
        let tmp_path = self.tmp.path().to_path_buf();
        let io_err = |e: std::io::Error| {
            Failure::NextUrl(anyhow!(e).context(format!("writing {}", tmp_path.display())))
        };
        self.file.flush().await.map_err(io_err)?;
        self.file.sync_data().await.map_err(io_err)?;
        if let Some(size) = item.size
            && self.written != size
        {
            let e = anyhow!("size mismatch: expected {size} bytes, got {}", self.written);
            // Short: maybe cut off on the way, try again; long: wrong file.
            return Err(if self.written < size {
                Failure::Retry(e)
            } else {
                Failure::NextUrl(e)
            });
        }
        if let (Some(sum), Some(h)) = (&item.checksum, self.hasher.take()) {
            let got = h.finish_hex();
            if !got.eq_ignore_ascii_case(&sum.hex) {
                return Err(Failure::NextUrl(anyhow!(
                    "checksum mismatch: expected {sum}, got {}:{got}",
                    sum.kind
                )));
            }
        }
        drop(self.file);
        self.tmp.persist(&item.dest).map_err(|e| {
            Failure::NextUrl(
                anyhow!(e.error).context(format!("renaming into {}", item.dest.display())),
            )
        })?;
        Ok(())
    }
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Verify `path` against `sum`; the error names the file, expected and actual digests.
pub fn verify_file(path: &Path, sum: &Checksum) -> Result<()> {
    sum.validate()
        .with_context(|| format!("checking {}", path.display()))?;
    let (got, _) = crate::util::digest::file(path, &sum.kind)?;
    if !got.eq_ignore_ascii_case(&sum.hex) {
        bail!(
            "checksum mismatch for {}: expected {sum}, got {}:{got}",
            path.display(),
            sum.kind
        );
    }
    Ok(())
}

/// One error out of many: all of them when few, else the first few and a count.
fn combine_errors(
    what: &str,
    total: usize,
    results: impl IntoIterator<Item = Result<()>>,
) -> Result<()> {
    let errors: Vec<anyhow::Error> = results.into_iter().filter_map(|r| r.err()).collect();
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.into_iter().next().expect("one error")),
        n => {
            let mut msg = format!("{what}: {n} of {total} failed:");
            for e in errors.iter().take(MAX_LISTED_ERRORS) {
                msg.push_str(&format!("\n  {e:#}"));
            }
            if n > MAX_LISTED_ERRORS {
                msg.push_str(&format!("\n  ... and {} more", n - MAX_LISTED_ERRORS));
            }
            Err(anyhow!(msg))
        }
    }
}

/// Make a path component out of repodata text (no separators, no `..`).
fn safe_component(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// Where a package lives in the cache (keyed by its checksum).
pub fn cache_path(cache_dir: &Path, pkg: &PackageMeta) -> PathBuf {
    let hex = safe_component(&pkg.checksum.to_ascii_lowercase());
    let prefix: String = hex.chars().take(2).collect();
    let file = safe_component(&format!(
        "{}-{}-{}.{}.rpm",
        pkg.name, pkg.version, pkg.release, pkg.arch
    ));
    cache_dir.join("pkgs").join(prefix).join(hex).join(file)
}

/// The URLs a package can be fetched from: `location_base` when the repo sets
/// one (xml:base), else each baseurl; joined with `location`.
pub fn package_urls(repo: &LoadedRepo, pkg: &PackageMeta) -> Result<Vec<url::Url>> {
    let bases: Vec<url::Url> = match &pkg.location_base {
        Some(b) if !b.is_empty() => match url::Url::parse(b) {
            Ok(u) => vec![u],
            // A relative xml:base: relative to each baseurl.
            Err(_) => repo
                .baseurls
                .iter()
                .map(|u| dir_url(u).join(b))
                .collect::<Result<_, _>>()
                .with_context(|| format!("joining xml:base {b:?}"))?,
        },
        _ => repo.baseurls.clone(),
    };
    if bases.is_empty() {
        bail!("repository {} has no baseurl", repo.id);
    }
    bases
        .iter()
        .map(|b| {
            dir_url(b)
                .join(&pkg.location)
                .with_context(|| format!("joining {b} and {:?}", pkg.location))
        })
        .collect()
}

/// `u` with a trailing slash, so that `join` appends instead of replacing.
fn dir_url(u: &url::Url) -> url::Url {
    let mut u = u.clone();
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// Bring every package into `cache_dir` (skipping cached ones), verifying
/// digests and, for repos with gpgcheck, signatures. Returns the paths in the
/// order of `pkgs`.
pub fn fetch_packages(
    dl: &Downloader,
    cache_dir: &Path,
    repos: &[LoadedRepo],
    pkgs: &[PackageMeta],
) -> Result<Vec<PathBuf>> {
    let by_id: HashMap<&str, &LoadedRepo> = repos.iter().map(|r| (r.id.as_str(), r)).collect();
    let incoming = cache_dir.join("pkgs").join(".incoming");
    let mut paths = Vec::with_capacity(pkgs.len());
    let mut seen = HashSet::new();
    // (item, the package's repo, final cache path)
    let mut todo: Vec<(Item, &LoadedRepo, PathBuf)> = Vec::new();
    let mut cached = 0usize;
    for pkg in pkgs {
        let nevra = pkg.nevra();
        let repo = by_id.get(pkg.repo.as_str()).with_context(|| {
            format!(
                "package {nevra} comes from repository {:?}, which is not loaded",
                pkg.repo
            )
        })?;
        let sum = Checksum::new(&pkg.checksum_type, &pkg.checksum);
        sum.validate()
            .with_context(|| format!("checksum of package {nevra} in repo {}", repo.id))?;
        let path = cache_path(cache_dir, pkg);
        paths.push(path.clone());
        if !seen.insert(path.clone()) {
            continue;
        }
        if is_cached(&path, pkg.size_package) {
            cached += 1;
            continue;
        }
        let dest = if repo.gpgcheck {
            let name = path.file_name().expect("cache path has a file name");
            incoming.join(format!(
                "{}-{}",
                sum.hex.to_ascii_lowercase(),
                name.to_string_lossy()
            ))
        } else {
            path.clone()
        };
        let item = Item {
            name: format!("{nevra} (repo {})", repo.id),
            urls: package_urls(repo, pkg).with_context(|| format!("URL of package {nevra}"))?,
            dest,
            checksum: Some(sum),
            size: (pkg.size_package > 0).then_some(pkg.size_package),
        };
        todo.push((item, repo, path));
    }
    let bytes: u64 = todo.iter().filter_map(|(i, _, _)| i.size).sum();
    eprintln!(
        "Packages: {cached} cached, {} to download ({:.1} MiB)",
        todo.len(),
        bytes as f64 / (1024.0 * 1024.0)
    );
    if todo.is_empty() {
        return Ok(paths);
    }
    // Keys first: a repo whose keys cannot be loaded fails before any download.
    let needed: std::collections::HashSet<&str> =
        todo.iter().map(|(_, r, _)| r.id.as_str()).collect();
    let keys = load_repo_keys(dl, repos.iter(), &needed)?;
    let items: Vec<Item> = todo.iter().map(|(i, _, _)| i.clone()).collect();
    let results = dl.fetch_many("Downloading packages", &items);
    let results: Vec<Result<()>> = results
        .into_par_iter()
        .map(|(n, r)| {
            let (item, repo, path) = &todo[n];
            r?;
            match keys.get(repo.id.as_str()) {
                Some(verifier) => admit_signed(item, repo, verifier, path),
                None => Ok(()),
            }
        })
        .collect();
    combine_errors("downloading packages", todo.len(), results)?;
    Ok(paths)
}

/// A cache hit: present with the expected size (when known). Its digest and
/// signature were checked when it entered the cache.
fn is_cached(path: &Path, size: u64) -> bool {
    match std::fs::metadata(path) {
        Ok(m) => m.is_file() && (size == 0 || m.len() == size),
        Err(_) => false,
    }
}

/// Hash every fetched package again (on every core) and compare it with
/// its repodata digest, which a digest-pinned lockfile also fixes. A cache
/// hit is otherwise trusted on its size alone, so this is what catches a
/// package changed in the cache after it was downloaded; the error names
/// each such package and file.
pub fn verify_cached(pkgs: &[(PackageMeta, PathBuf)]) -> Result<()> {
    let results: Vec<Result<()>> = pkgs
        .par_iter()
        .map(|(p, path)| {
            // The real path: the cache may be reached through a link.
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            verify_file(&path, &Checksum::new(&p.checksum_type, &p.checksum)).with_context(|| {
                format!(
                    "package {} in the cache is not the one its repository and the lockfile name; \
                     delete {} and run `cosa fetch` to download it again",
                    p.nevra(),
                    path.display()
                )
            })
        })
        .collect();
    combine_errors("verifying cached packages", pkgs.len(), results)
}

/// The verifier of each gpgcheck repo among `repos`, by id. A gpgcheck
/// repo without `gpgkey=` is checked against the keys of all the other
/// repos, as dnf and rpm-ostree check it against the one keyring every
/// repo's keys are imported into (fedora-coreos-config's
/// fedora-coreos-pool.repo relies on this); with no key anywhere it is an
/// error.
fn load_repo_keys<'a>(
    dl: &Downloader,
    repos: impl Iterator<Item = &'a LoadedRepo>,
    needed: &std::collections::HashSet<&str>,
) -> Result<HashMap<&'a str, rpm::signature::pgp::Verifier>> {
    let repos: Vec<&LoadedRepo> = repos.collect();
    let mut all_keys: Vec<String> = Vec::new();
    for r in &repos {
        for k in split_keys(&r.gpgkeys) {
            if !all_keys.iter().any(|a| a == k) {
                all_keys.push(k.to_string());
            }
        }
    }
    let mut out = HashMap::new();
    for repo in repos {
        if repo.gpgcheck && needed.contains(repo.id.as_str()) && !out.contains_key(repo.id.as_str())
        {
            let v = if split_keys(&repo.gpgkeys).is_empty() && !all_keys.is_empty() {
                tracing::info!(
                    "repo {} has gpgcheck=1 and no gpgkey: checking its packages against the other repos' keys",
                    repo.id
                );
                keys_verifier(dl, &repo.id, &all_keys, "gpgcheck")?
            } else {
                repo_verifier(dl, repo)?
            };
            out.insert(repo.id.as_str(), v);
        }
    }
    Ok(out)
}

/// Check the signature of a package downloaded into the incoming area and,
/// when good, move it into the cache at `path`; when bad, delete it.
fn admit_signed(
    item: &Item,
    repo: &LoadedRepo,
    verifier: &rpm::signature::pgp::Verifier,
    path: &Path,
) -> Result<()> {
    if let Err(e) = check_signature(&item.dest, &item.name, repo, verifier) {
        let _ = std::fs::remove_file(&item.dest);
        return Err(e);
    }
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::rename(&item.dest, path)
        .with_context(|| format!("moving {} into {}", item.dest.display(), path.display()))
}

/// The key URLs of a repo; a `gpgkey=` value may list several.
fn key_urls(repo: &LoadedRepo) -> Vec<&str> {
    split_keys(&repo.gpgkeys)
}

/// `gpgkey=` values split into URLs (one value may list several).
pub fn split_keys(gpgkeys: &[String]) -> Vec<&str> {
    gpgkeys
        .iter()
        .flat_map(|k| k.split(|c: char| c.is_whitespace() || c == ','))
        .filter(|k| !k.is_empty())
        .collect()
}

/// Load every key of `repo` into one verifier.
pub fn repo_verifier(dl: &Downloader, repo: &LoadedRepo) -> Result<rpm::signature::pgp::Verifier> {
    keys_verifier(dl, &repo.id, &repo.gpgkeys, "gpgcheck")
}

/// Load the keys named by a repo's `gpgkey=` values into one verifier, for
/// its `option` (`gpgcheck` or `repo_gpgcheck`).
pub fn keys_verifier(
    dl: &Downloader,
    repo_id: &str,
    gpgkeys: &[String],
    option: &str,
) -> Result<rpm::signature::pgp::Verifier> {
    let keys = split_keys(gpgkeys);
    if keys.is_empty() {
        bail!(
            "repository {repo_id} has {option} enabled but no gpgkey; add gpgkey= to its .repo file or set {option}=0",
        );
    }
    let mut verifier = rpm::signature::pgp::Verifier::new();
    for key in keys {
        let data = fetch_bytes(dl, key)
            .with_context(|| format!("fetching OpenPGP key {key} of repo {repo_id}"))?;
        verifier
            .load_from_asc_bytes(&data)
            .with_context(|| format!("loading OpenPGP key {key} of repo {repo_id}"))?;
    }
    Ok(verifier)
}

/// Check a detached OpenPGP signature (ASCII-armored, as `repomd.xml.asc`
/// is, or binary) over `data` with the verifier packages are checked with.
pub fn verify_detached(
    verifier: &rpm::signature::pgp::Verifier,
    data: &[u8],
    signature: &[u8],
) -> Result<()> {
    use rpm::signature::Verifying;
    let binary = if signature.trim_ascii_start().starts_with(b"-----BEGIN PGP") {
        let mut out = Vec::new();
        pgp::armor::Dearmor::new(std::io::BufReader::new(signature))
            .read_to_end(&mut out)
            .context("reading the armored signature")?;
        out
    } else {
        signature.to_vec()
    };
    verifier.verify(data, &binary).map_err(|e| anyhow!("{e}"))
}

/// A small file (a key, a metalink, a signature) into memory, from
/// file:// or http(s)://, with the downloader's retries.
pub fn fetch_bytes(dl: &Downloader, url: &str) -> Result<Vec<u8>> {
    let u = url::Url::parse(url).with_context(|| format!("parsing URL {url:?}"))?;
    match u.scheme() {
        "file" => {
            let p = u
                .to_file_path()
                .map_err(|_| anyhow!("{url} is not a local path"))?;
            std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
        }
        "http" | "https" => dl.rt.block_on(async {
            let mut last = None;
            for attempt in 0..dl.attempts.max(1) {
                if attempt > 0 {
                    tokio::time::sleep(dl.backoff * 2u32.saturating_pow(attempt - 1)).await;
                }
                let r = dl.client.get(u.clone()).send().await;
                match r {
                    Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                        Ok(b) => return Ok(b.to_vec()),
                        Err(e) => last = Some(anyhow!(e)),
                    },
                    Ok(resp) if resp.status().is_server_error() => {
                        last = Some(anyhow!("HTTP {}", resp.status()))
                    }
                    Ok(resp) => bail!("HTTP {}", resp.status()),
                    Err(e) => last = Some(anyhow!(e)),
                }
            }
            Err(last.unwrap_or_else(|| anyhow!("no attempt made")))
        }),
        other => bail!("unsupported URL scheme {other:?} in {url}"),
    }
}

/// Check the OpenPGP signature of the package at `path` against the repo's keys.
fn check_signature(
    path: &Path,
    name: &str,
    repo: &LoadedRepo,
    verifier: &rpm::signature::pgp::Verifier,
) -> Result<()> {
    crate::rpm::guard(path, || {
        // Our own reader first: it keeps rpm's limits on header sizes, which
        // the rpm library trusts for its allocations.
        super::rpmdb::read_package_headers(path)?;
        check_signature_unguarded(path, name, repo, verifier)
    })
}

fn check_signature_unguarded(
    path: &Path,
    name: &str,
    repo: &LoadedRepo,
    verifier: &rpm::signature::pgp::Verifier,
) -> Result<()> {
    let pkg = rpm::Package::open(path)
        .with_context(|| format!("reading package {name} ({})", path.display()))?;
    let unsigned = pkg.raw_signatures().map(|s| s.is_empty()).unwrap_or(false);
    pkg.verify_signature(verifier.clone()).map_err(|e| {
        let why = match e {
            _ if unsigned => "the package is not signed".to_string(),
            rpm::Error::NoSignatureFound => "the package is not signed".to_string(),
            e => e.to_string(),
        };
        anyhow!(
            "refusing package {name}: OpenPGP signature check against key(s) {} of repo {} failed: {why}",
            key_urls(repo).join(", "),
            repo.id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, sum: &str) -> PackageMeta {
        PackageMeta {
            name: name.into(),
            version: "1.0".into(),
            release: "1".into(),
            arch: "x86_64".into(),
            checksum_type: "sha256".into(),
            checksum: sum.into(),
            location: format!("Packages/{name}-1.0-1.x86_64.rpm"),
            repo: "r".into(),
            ..Default::default()
        }
    }

    fn repo(bases: &[&str]) -> LoadedRepo {
        LoadedRepo {
            id: "r".into(),
            priority: 99,
            cost: 1000,
            baseurls: bases.iter().map(|b| url::Url::parse(b).unwrap()).collect(),
            gpgcheck: false,
            gpgkeys: vec![],
            revision: None,
            timestamp: None,
            packages: vec![],
            metadata: None,
        }
    }

    #[test]
    fn cache_path_is_keyed_by_checksum() {
        let a = meta("foo", &"ab".repeat(32));
        let b = meta("foo", &"cd".repeat(32));
        let pa = cache_path(Path::new("/c"), &a);
        assert_eq!(
            pa,
            Path::new("/c/pkgs/ab")
                .join("ab".repeat(32))
                .join("foo-1.0-1.x86_64.rpm")
        );
        assert_ne!(pa, cache_path(Path::new("/c"), &b));
        // Hostile text cannot leave the cache.
        let evil = meta("../../x/y", "../..");
        let p = cache_path(Path::new("/c"), &evil);
        assert!(p.starts_with("/c/pkgs"));
        assert!(!p.components().any(|c| c == std::path::Component::ParentDir));
    }

    #[test]
    fn urls_join_baseurl_and_location() {
        let r = repo(&["http://a/repo", "http://b/repo/"]);
        let p = meta("foo", "00");
        let urls = package_urls(&r, &p).unwrap();
        assert_eq!(
            urls[0].as_str(),
            "http://a/repo/Packages/foo-1.0-1.x86_64.rpm"
        );
        assert_eq!(
            urls[1].as_str(),
            "http://b/repo/Packages/foo-1.0-1.x86_64.rpm"
        );
        let mut p = p;
        p.location_base = Some("http://c/other".into());
        let urls = package_urls(&r, &p).unwrap();
        assert_eq!(urls.len(), 1);
        assert_eq!(
            urls[0].as_str(),
            "http://c/other/Packages/foo-1.0-1.x86_64.rpm"
        );
    }

    #[test]
    fn digests_of_each_kind() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"abc").unwrap();
        let cases = [
            ("sha", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            ("sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                "sha256",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                "sha512",
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
        ];
        for (kind, hex) in cases {
            verify_file(&f, &Checksum::new(kind, hex)).unwrap();
            verify_file(&f, &Checksum::new(kind, &hex.to_uppercase())).unwrap();
        }
        let bad = Checksum::new("sha256", &"0".repeat(64));
        let e = format!("{:#}", verify_file(&f, &bad).unwrap_err());
        assert!(e.contains("expected sha256:000"), "{e}");
        assert!(e.contains("got sha256:ba7816bf"), "{e}");
        assert!(e.contains(&f.display().to_string()), "{e}");
        assert!(verify_file(&f, &Checksum::new("md5", "00")).is_err());
        assert!(verify_file(&f, &Checksum::new("sha256", "abc")).is_err());
    }

    #[test]
    fn combine_lists_every_error() {
        let r = combine_errors(
            "x",
            3,
            vec![Ok(()), Err(anyhow!("one")), Err(anyhow!("two"))],
        );
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("2 of 3 failed") && e.contains("one") && e.contains("two"),
            "{e}"
        );
        assert!(combine_errors("x", 1, vec![Ok(())]).is_ok());
    }
}
