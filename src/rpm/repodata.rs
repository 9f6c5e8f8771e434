//! Repository metadata: repomd.xml, primary and filelists (gz, xz, zstd),
//! from file:// and http(s)://, checksums verified, cached under
//! `cache/repodata/<repo>/` and revalidated against a fresh repomd.xml.
//!
//! The cache holds `repomd.xml` as last read and the metadata files it names,
//! each under a name carrying its checksum (`primary-<hex>.xml.gz`). Every
//! load re-reads repomd.xml from the source (it is small) and reuses a cached
//! file only when repomd still names its checksum; anything else in the
//! directory is removed. There is no silent offline mode: when the source
//! cannot be read, loading fails even if a cached copy exists.
//!
//! Next to them the cache keeps what cosa derives from them, named after a
//! digest of repomd.xml and [`DERIVED_CACHE_VERSION`]: the parsed packages
//! (`packages-<key>.bin`) and libsolv's solv data (`primary-<key>.solv`,
//! written by the solver). A warm load reads these instead of parsing the
//! XML again; one that cannot be read is parsed again and rewritten.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use rayon::prelude::*;
use url::Url;

use super::download::{Checksum, Downloader, Item};
use super::mirrors;
pub use super::nevra::glob_match;
use super::types::{Cmp, Dep, Evr, FileList, PackageMeta};
use crate::config::repofile::RepoDef;
use crate::util::digest::Hasher;

/// Read buffer for metadata files and XML parsing, in bytes.
const BUF_SIZE: usize = 256 * 1024;

/// A repository with its packages loaded.
#[derive(Debug, Clone)]
pub struct LoadedRepo {
    pub id: String,
    /// Lower wins (dnf semantics).
    pub priority: u32,
    /// dnf's `cost`: among repos of one priority, lower is preferred.
    pub cost: u32,
    pub baseurls: Vec<url::Url>,
    pub gpgcheck: bool,
    pub gpgkeys: Vec<String>,
    /// repomd.xml `revision`.
    pub revision: Option<String>,
    /// The newest `timestamp` in repomd.xml (seconds since the epoch): the
    /// lockfile's `rpmmd_repos.<id>.generated`.
    pub timestamp: Option<u64>,
    /// exclude/includepkgs already applied.
    pub packages: Vec<PackageMeta>,
    /// The cached metadata files the packages were read from (none for
    /// local RPMs): the solver loads them with libsolv's own parser, so its
    /// pool is the one dnf builds.
    pub metadata: Option<MetadataFiles>,
}

/// A repository's cached repomd.xml and primary metadata.
#[derive(Debug, Clone)]
pub struct MetadataFiles {
    pub repomd: PathBuf,
    pub primary: PathBuf,
    /// Where libsolv's solv data made from these is kept (may not exist yet).
    pub solv_cache: PathBuf,
}

/// The version of the caches derived from metadata (parsed packages, solv
/// data): part of their names, so a cosa that parses differently never
/// reads an older one.
const DERIVED_CACHE_VERSION: u32 = 3;

/// How a metadata file is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Gzip,
    Xz,
    Zstd,
    Bzip2,
    Zchunk,
    Plain,
}

impl Codec {
    fn of(magic: &[u8]) -> Codec {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Codec::Gzip
        } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Codec::Xz
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Codec::Zstd
        } else if magic.starts_with(b"BZh") {
            Codec::Bzip2
        } else if magic.starts_with(b"\0ZCK1") {
            Codec::Zchunk
        } else {
            Codec::Plain
        }
    }
}

/// A file name whose suffix tells libsolv how `path` is compressed
/// (`x.gz`, `x.xz`, `x.zst` or `x.xml`), found from its magic bytes.
pub fn codec_name(path: &Path) -> Result<&'static str> {
    let mut magic = [0u8; 6];
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let n = f
        .read(&mut magic)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(match Codec::of(&magic[..n]) {
        Codec::Gzip => "x.gz",
        Codec::Xz => "x.xz",
        Codec::Zstd => "x.zst",
        Codec::Bzip2 | Codec::Zchunk => bail!("{}: unsupported compression", path.display()),
        Codec::Plain => "x.xml",
    })
}

/// Load a repository's metadata through the cache.
///
/// The repo's mirrors ([`mirrors::sources`]: its metalink or mirrorlist,
/// then its baseurls) are tried in order; the first one that serves a
/// repomd.xml that passes the metalink's hashes and, with `repo_gpgcheck`,
/// carries a good signature, and verified primary and filelists, wins. The
/// mirrors that failed before it are reported. Packages are then fetched
/// from that mirror first, then the ones not tried, then the ones that
/// failed.
pub fn load(def: &RepoDef, cache_dir: &Path, dl: &Downloader) -> Result<LoadedRepo> {
    // The id names the cache directory.
    if def.id.is_empty() || def.id.starts_with('.') || def.id.contains(['/', '\\']) {
        bail!(
            "repo id {:?} in {} cannot be used as a directory name",
            def.id,
            def.source.display()
        );
    }
    let sources = mirrors::sources(def, dl)?;
    let keys = if def.repo_gpgcheck {
        Some(
            super::download::keys_verifier(dl, &def.id, &def.gpgkeys, "repo_gpgcheck")
                .with_context(|| format!("repo {} in {}", def.id, def.source.display()))?,
        )
    } else {
        None
    };
    let dir = cache_dir.join("repodata").join(&def.id);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut errors = Vec::new();
    let mut failed = Vec::new();
    let mut reached = false;
    for (n, base) in sources.bases.iter().enumerate() {
        let repomd_url = base
            .join("repodata/repomd.xml")
            .with_context(|| format!("joining repodata/repomd.xml to {base}"))?;
        let text = match fetch_checked_repomd(def, &sources, keys.as_ref(), &repomd_url, &dir, dl) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{base}: {e:#}"));
                failed.push(base.clone());
                continue;
            }
        };
        reached = true;
        match load_from(def, base, &repomd_url, &text, &dir, dl) {
            Ok((repomd, packages, metadata)) => {
                if !errors.is_empty() {
                    tracing::warn!(
                        "repo {}: using mirror {base} after {} failed:\n  {}",
                        def.id,
                        errors.len(),
                        errors.join("\n  ")
                    );
                }
                let mut baseurls = vec![base.clone()];
                baseurls.extend(sources.bases[n + 1..].iter().cloned());
                baseurls.extend(failed);
                return Ok(LoadedRepo {
                    metadata: Some(metadata),
                    id: def.id.clone(),
                    priority: def.priority,
                    cost: def.cost,
                    baseurls,
                    gpgcheck: def.gpgcheck,
                    gpgkeys: def.gpgkeys.clone(),
                    timestamp: repomd.timestamp(),
                    revision: repomd.revision,
                    packages,
                });
            }
            Err(e) => {
                errors.push(format!("{base}: {e:#}"));
                failed.push(base.clone());
            }
        }
    }
    let hint = if !reached && dir.join("repomd.xml").exists() {
        format!(
            "\n(cached metadata exists in {}, but cosa does not use it without \
             revalidating against the source: fix the baseurl or the network)",
            dir.display()
        )
    } else {
        String::new()
    };
    let from = match &sources.list {
        Some(list) => format!(
            "{}, mirrors from {list}; {} tried",
            def.source.display(),
            sources.bases.len()
        ),
        None => def.source.display().to_string(),
    };
    bail!(
        "loading metadata of repo {} (from {from}):\n  {}{hint}",
        def.id,
        errors.join("\n  ")
    )
}

/// repomd.xml from one mirror, checked against the metalink's hashes and,
/// with `repo_gpgcheck`, its detached signature `repomd.xml.asc`.
fn fetch_checked_repomd(
    def: &RepoDef,
    sources: &mirrors::Sources,
    keys: Option<&rpm::signature::pgp::Verifier>,
    url: &Url,
    dir: &Path,
    dl: &Downloader,
) -> Result<String> {
    let bytes = fetch_repomd(def, url, dir, dl)?;
    if let Some(expected) = &sources.expected {
        mirrors::check_repomd(&bytes, expected, url)?;
    }
    if let Some(verifier) = keys {
        let asc = format!("{url}.asc");
        let sig = super::download::fetch_bytes(dl, &asc).with_context(|| {
            format!("repo_gpgcheck: no signature for repomd.xml: fetching {asc}")
        })?;
        super::download::verify_detached(verifier, &bytes, &sig).with_context(|| {
            format!(
                "repo_gpgcheck: {asc} is not a good signature of repomd.xml by the key(s) {}",
                super::download::split_keys(&def.gpgkeys).join(", ")
            )
        })?;
    }
    String::from_utf8(bytes)
        .with_context(|| format!("repomd.xml of repo {} ({url}) is not UTF-8", def.id))
}

/// Read repomd.xml from the source (never from the cache).
fn fetch_repomd(def: &RepoDef, url: &Url, dir: &Path, dl: &Downloader) -> Result<Vec<u8>> {
    let what = format!("repomd.xml of repo {}", def.id);
    let bytes = if url.scheme() == "file" {
        let path = url
            .to_file_path()
            .map_err(|()| anyhow!("{what}: {url} is not a local path"))?;
        fs::read(&path).with_context(|| format!("reading {what} from {url}"))?
    } else {
        let tmp = dir.join(".repomd.xml.new");
        get(dl, &what, url, &tmp, None, None)?;
        let b = fs::read(&tmp).with_context(|| format!("reading {}", tmp.display()))?;
        let _ = fs::remove_file(&tmp);
        b
    };
    Ok(bytes)
}

/// Bring primary and filelists into the cache for the repomd `text` read from
/// `base`, then parse them (or read what an earlier load parsed from them).
fn load_from(
    def: &RepoDef,
    base: &Url,
    repomd_url: &Url,
    text: &str,
    dir: &Path,
    dl: &Downloader,
) -> Result<(Repomd, Vec<PackageMeta>, MetadataFiles)> {
    let repomd = Repomd::parse(text).with_context(|| format!("parsing {repomd_url}"))?;
    let mut paths = Vec::new();
    for kind in ["primary", "filelists"] {
        let data = repomd
            .get(kind)
            .ok_or_else(|| anyhow!("{repomd_url} has no {kind} metadata"))?;
        paths.push(ensure_cached(def, base, dir, dl, data)?);
    }
    crate::util::write_atomic(&dir.join("repomd.xml"), text.as_bytes())?;
    let key = derived_key(text);
    let packages_cache = dir.join(format!("packages-{key}.bin"));
    let solv_cache = dir.join(format!("primary-{key}.solv"));
    let mut keep = paths.clone();
    keep.extend([packages_cache.clone(), solv_cache.clone()]);
    prune(dir, &keep);

    let packages = match read_packages_cache(&packages_cache) {
        Some(p) => p,
        None => {
            let p = parse_metadata(&def.id, &paths[0], &paths[1])?;
            let kept = encode_packages(&p)
                .and_then(|bytes| crate::util::write_atomic(&packages_cache, &bytes));
            if let Err(e) = kept {
                tracing::warn!("not keeping the parsed packages: {e:#}");
            }
            p
        }
    };
    let packages = offered(def, packages);
    let metadata = MetadataFiles {
        repomd: dir.join("repomd.xml"),
        primary: paths.swap_remove(0),
        solv_cache,
    };
    Ok((repomd, packages, metadata))
}

/// The name of the derived caches for a repomd.xml `text`.
fn derived_key(text: &str) -> String {
    let keyed = format!("cosa derived metadata {DERIVED_CACHE_VERSION}\n{text}");
    crate::util::digest::sha256_hex(keyed.as_bytes())[..32].to_string()
}

/// Packages per independently decoded chunk of the parsed-package cache.
const CACHE_CHUNK: usize = 4096;

/// The parsed-package cache: the number of chunks (u32, little endian),
/// each chunk's length (u64), then the chunks, each a postcard-encoded run
/// of up to [`CACHE_CHUNK`] packages, so that they decode in parallel.
fn encode_packages(pkgs: &[PackageMeta]) -> Result<Vec<u8>> {
    let chunks = pkgs
        .par_chunks(CACHE_CHUNK)
        .map(postcard::to_stdvec)
        .collect::<Result<Vec<_>, _>>()
        .context("encoding the parsed packages")?;
    let n = u32::try_from(chunks.len()).context("too many packages to cache")?;
    let mut out =
        Vec::with_capacity(4 + 8 * chunks.len() + chunks.iter().map(Vec::len).sum::<usize>());
    out.extend(n.to_le_bytes());
    for c in &chunks {
        out.extend((c.len() as u64).to_le_bytes());
    }
    for c in &chunks {
        out.extend(c);
    }
    Ok(out)
}

fn decode_packages(bytes: &[u8]) -> Result<Vec<PackageMeta>> {
    let short = || anyhow!("truncated");
    let n = u32::from_le_bytes(bytes.get(..4).ok_or_else(short)?.try_into()?) as usize;
    let mut at = 4 + 8 * n;
    let lens = bytes.get(4..at).ok_or_else(short)?;
    let mut chunks = Vec::with_capacity(n);
    for len in lens.chunks_exact(8) {
        let len = usize::try_from(u64::from_le_bytes(len.try_into()?))?;
        let end = at.checked_add(len).ok_or_else(short)?;
        chunks.push(bytes.get(at..end).ok_or_else(short)?);
        at = end;
    }
    if at != bytes.len() {
        bail!("{} bytes after the last chunk", bytes.len() - at);
    }
    let decoded = chunks
        .par_iter()
        .map(|c| postcard::from_bytes::<Vec<PackageMeta>>(c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(decoded.into_iter().flatten().collect())
}

/// Packages an earlier load parsed, if `path` holds them.
fn read_packages_cache(path: &Path) -> Option<Vec<PackageMeta>> {
    let bytes = fs::read(path).ok()?;
    match decode_packages(&bytes) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(
                "ignoring the parsed-package cache {}: {e:#}",
                path.display()
            );
            None
        }
    }
}

/// Parse primary and filelists side by side and give each package its files.
fn parse_metadata(repo: &str, primary: &Path, filelists: &Path) -> Result<Vec<PackageMeta>> {
    let (pkgs, files) = rayon::join(
        || -> Result<Vec<PackageMeta>> {
            let r = open_metadata(primary)?;
            parse_primary(r, repo)
                .with_context(|| format!("parsing primary metadata {}", primary.display()))
        },
        || -> Result<HashMap<String, FileList>> {
            let r = open_metadata(filelists)?;
            parse_filelists(r)
                .with_context(|| format!("parsing filelists metadata {}", filelists.display()))
        },
    );
    let mut pkgs = pkgs?;
    merge_filelists(&mut pkgs, files?);
    Ok(pkgs)
}

/// The cached copy of a metadata file, fetched and verified when missing.
fn ensure_cached(
    def: &RepoDef,
    base: &Url,
    dir: &Path,
    dl: &Downloader,
    data: &RepomdData,
) -> Result<PathBuf> {
    let sum = data
        .checksum
        .as_ref()
        .ok_or_else(|| anyhow!("repomd.xml entry {} has no checksum", data.kind))?;
    // The digest becomes part of a file name: accept hex only.
    if sum.hex.is_empty() || !sum.hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "repomd.xml entry {} has a malformed checksum {:?}",
            data.kind,
            sum.hex
        );
    }
    let ext = Path::new(&data.location)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("xml");
    let dest = dir.join(format!(
        "{}-{}.{ext}",
        data.kind,
        sum.hex.to_ascii_lowercase()
    ));
    let cached_ok = match (fs::metadata(&dest), data.size) {
        (Ok(m), Some(size)) => m.len() == size,
        (Ok(_), None) => true,
        (Err(_), _) => false,
    };
    if !cached_ok {
        let url = base
            .join(&data.location)
            .with_context(|| format!("joining {} to {base}", data.location))?;
        let what = format!("{} of repo {}", data.location, def.id);
        get(dl, &what, &url, &dest, Some(sum), data.size)?;
    }
    Ok(dest)
}

/// Remove everything in the repo's cache dir but repomd.xml and `keep`.
fn prune(dir: &Path, keep: &[PathBuf]) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name() == Some("repomd.xml".as_ref()) || keep.contains(&path) {
            continue;
        }
        if let Err(e) = fs::remove_file(&path) {
            tracing::warn!("removing stale metadata {}: {e}", path.display());
        }
    }
}

/// Fetch `url` to `dest`, verified against `sum` before it lands there.
/// file:// is copied here; http(s):// goes through the downloader.
fn get(
    dl: &Downloader,
    what: &str,
    url: &Url,
    dest: &Path,
    sum: Option<&Checksum>,
    size: Option<u64>,
) -> Result<()> {
    match url.scheme() {
        "file" => copy_verified(what, url, dest, sum),
        "http" | "https" => dl.fetch(&Item {
            name: what.to_string(),
            urls: vec![url.clone()],
            dest: dest.to_path_buf(),
            checksum: sum.cloned(),
            size,
        }),
        s => bail!("{what}: unsupported URL scheme {s:?} in {url}"),
    }
}

fn copy_verified(what: &str, url: &Url, dest: &Path, sum: Option<&Checksum>) -> Result<()> {
    let src = url
        .to_file_path()
        .map_err(|()| anyhow!("{what}: {url} is not a local path"))?;
    let mut input = File::open(&src).with_context(|| format!("reading {what} from {url}"))?;
    let dir = dest
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", dest.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut hasher = sum.map(|s| Hasher::new(&s.kind)).transpose()?;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = input
            .read(&mut buf)
            .with_context(|| format!("reading {what} from {url}"))?;
        if n == 0 {
            break;
        }
        if let Some(h) = hasher.as_mut() {
            h.update(&buf[..n]);
        }
        tmp.write_all(&buf[..n])
            .with_context(|| format!("writing {}", tmp.path().display()))?;
    }
    if let (Some(h), Some(sum)) = (hasher, sum) {
        let actual = h.finish_hex();
        if !actual.eq_ignore_ascii_case(&sum.hex) {
            bail!(
                "checksum mismatch for {what} ({url}): expected {kind} {}, got {kind} {actual}",
                sum.hex,
                kind = sum.kind
            );
        }
    }
    tmp.persist(dest)
        .with_context(|| format!("moving {what} into {}", dest.display()))?;
    Ok(())
}

/// One `<data>` entry of repomd.xml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepomdData {
    /// `type` (`primary`, `filelists`, `other`, ...).
    pub kind: String,
    /// `location href`, relative to the base URL.
    pub location: String,
    pub checksum: Option<Checksum>,
    pub open_checksum: Option<Checksum>,
    pub timestamp: Option<u64>,
    pub size: Option<u64>,
    pub open_size: Option<u64>,
}

/// Checks that an XML document is complete: its root element is `root`,
/// and the input does not end inside an element (a truncated download
/// parses as far as it goes and must not be taken for the whole).
struct Complete {
    root: &'static str,
    depth: usize,
    seen_root: bool,
}

impl Complete {
    fn new(root: &'static str) -> Complete {
        Complete {
            root,
            depth: 0,
            seen_root: false,
        }
    }

    fn start(&mut self, e: &BytesStart) -> Result<()> {
        if self.depth == 0 {
            let name = e.local_name();
            let name: &str = name.as_ref();
            if name != self.root {
                bail!(
                    "the document's root element is <{name}>, not <{}>",
                    self.root
                );
            }
            self.seen_root = true;
        }
        self.depth += 1;
        Ok(())
    }

    fn end(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Track one event; at the end of input, check the document was whole.
    fn event(&mut self, ev: &Event) -> Result<()> {
        match ev {
            Event::Start(e) => self.start(e),
            Event::End(_) => {
                self.end();
                Ok(())
            }
            Event::Eof => self.finish(),
            _ => Ok(()),
        }
    }

    fn finish(&self) -> Result<()> {
        if !self.seen_root {
            bail!(
                "no <{}> element: the document is empty or not {0} metadata",
                self.root
            );
        }
        if self.depth != 0 {
            bail!("the document ends inside <{}> (truncated)", self.root);
        }
        Ok(())
    }
}

/// The parts of repomd.xml that cosa uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repomd {
    pub revision: Option<String>,
    pub data: Vec<RepomdData>,
}

impl Repomd {
    pub fn parse(xml: &str) -> Result<Repomd> {
        let mut reader = Reader::from_str(xml);
        let mut md = Repomd::default();
        let mut cur: Option<RepomdData> = None;
        let mut field: Option<String> = None;
        let mut sum_kind = String::new();
        let mut text = String::new();
        let mut complete = Complete::new("repomd");
        loop {
            let ev = reader
                .read_event()
                .with_context(|| format!("at byte {}", reader.error_position()))?;
            complete.event(&ev)?;
            match ev {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) => {
                    let name = e.local_name();
                    match name.as_ref() {
                        "data" => {
                            cur = Some(RepomdData {
                                kind: attr(&e, "type")?.unwrap_or_default(),
                                ..Default::default()
                            })
                        }
                        "location" => {
                            if let Some(d) = cur.as_mut() {
                                d.location = attr(&e, "href")?.unwrap_or_default();
                            }
                        }
                        n @ ("checksum" | "open-checksum" | "timestamp" | "size" | "open-size"
                        | "revision") => {
                            sum_kind = attr(&e, "type")?.unwrap_or_default();
                            field = Some(n.to_string());
                            text.clear();
                        }
                        _ => {}
                    }
                }
                Event::Text(t) => {
                    if field.is_some() {
                        text.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    if field.is_some() {
                        push_ref(&mut text, &r)?;
                    }
                }
                Event::End(e) => {
                    let name = e.local_name();
                    let name = name.as_ref();
                    if name == "data" {
                        md.data.extend(cur.take());
                    } else if field.as_deref() == Some(name) {
                        field = None;
                        let v = text.trim();
                        let num = || -> Result<Option<u64>> {
                            // Old repos write float timestamps ("1700000000.12").
                            let int = v.split('.').next().unwrap_or(v);
                            int.parse()
                                .map(Some)
                                .with_context(|| format!("bad <{name}> value {v:?}"))
                        };
                        match (name, cur.as_mut()) {
                            ("revision", _) => md.revision = Some(v.to_string()),
                            ("checksum", Some(d)) => {
                                d.checksum = Some(Checksum {
                                    kind: sum_kind.clone(),
                                    hex: v.to_string(),
                                })
                            }
                            ("open-checksum", Some(d)) => {
                                d.open_checksum = Some(Checksum {
                                    kind: sum_kind.clone(),
                                    hex: v.to_string(),
                                })
                            }
                            ("timestamp", Some(d)) => d.timestamp = num()?,
                            ("size", Some(d)) => d.size = num()?,
                            ("open-size", Some(d)) => d.open_size = num()?,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(md)
    }

    pub fn get(&self, kind: &str) -> Option<&RepomdData> {
        self.data.iter().find(|d| d.kind == kind)
    }

    /// The newest data timestamp, or the revision when it is a number.
    pub fn timestamp(&self) -> Option<u64> {
        self.data
            .iter()
            .filter_map(|d| d.timestamp)
            .max()
            .or_else(|| self.revision.as_deref()?.parse().ok())
    }
}

/// The unescaped value of attribute `key` (full qualified name).
pub(super) fn attr(e: &BytesStart, key: &str) -> Result<Option<String>> {
    for a in e.attributes().with_checks(false) {
        let a = a?;
        if a.key.as_ref() == key {
            return Ok(Some(value(&a)?.into_owned()));
        }
    }
    Ok(None)
}

/// An attribute's value, references resolved and whitespace normalized.
fn value<'a>(a: &Attribute<'a>) -> Result<Cow<'a, str>> {
    Ok(a.normalized_value(XmlVersion::Implicit1_0)?)
}

/// Append an entity or character reference to `text`.
pub(super) fn push_ref(text: &mut String, r: &BytesRef) -> Result<()> {
    if let Some(c) = r.resolve_char_ref()? {
        text.push(c);
    } else if let Some(s) = resolve_predefined_entity(&r.xml10_content()) {
        text.push_str(s);
    } else {
        bail!("unknown entity &{};", r.xml10_content());
    }
    Ok(())
}

/// Open a metadata file, decompressing gzip, xz or zstd (found by magic bytes).
pub fn open_metadata(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut f = BufReader::with_capacity(BUF_SIZE, file);
    let magic = f
        .fill_buf()
        .with_context(|| format!("reading {}", path.display()))?;
    let inner: Box<dyn Read + Send> = match Codec::of(magic) {
        Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(f)),
        Codec::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(f)),
        Codec::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(f)
                .with_context(|| format!("starting zstd decoder for {}", path.display()))?,
        ),
        Codec::Bzip2 => bail!("{}: bzip2 metadata is not supported", path.display()),
        Codec::Zchunk => bail!("{}: zchunk metadata is not supported", path.display()),
        Codec::Plain => return Ok(Box::new(f)),
    };
    Ok(Box::new(BufReader::with_capacity(BUF_SIZE, inner)))
}

/// Which dependency list of a package an `rpm:entry` belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepList {
    Provides,
    Requires,
    Conflicts,
    Obsoletes,
    Recommends,
    Suggests,
    Supplements,
    Enhances,
}

impl DepList {
    fn from_name(name: &str) -> Option<DepList> {
        Some(match name {
            "provides" => DepList::Provides,
            "requires" => DepList::Requires,
            "conflicts" => DepList::Conflicts,
            "obsoletes" => DepList::Obsoletes,
            "recommends" => DepList::Recommends,
            "suggests" => DepList::Suggests,
            "supplements" => DepList::Supplements,
            "enhances" => DepList::Enhances,
            _ => return None,
        })
    }

    fn of(self, p: &mut PackageMeta) -> &mut Vec<Dep> {
        match self {
            DepList::Provides => &mut p.provides,
            DepList::Requires => &mut p.requires,
            DepList::Conflicts => &mut p.conflicts,
            DepList::Obsoletes => &mut p.obsoletes,
            DepList::Recommends => &mut p.recommends,
            DepList::Suggests => &mut p.suggests,
            DepList::Supplements => &mut p.supplements,
            DepList::Enhances => &mut p.enhances,
        }
    }
}

/// A text-bearing element of primary.xml being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Arch,
    Checksum,
    File,
}

/// Parse primary.xml (streaming). Source packages are skipped; `repo` is
/// recorded in each package.
pub fn parse_primary(input: impl BufRead, repo: &str) -> Result<Vec<PackageMeta>> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::with_capacity(BUF_SIZE);
    let mut pkgs = Vec::new();
    let mut cur: Option<PackageMeta> = None;
    let mut list: Option<DepList> = None;
    let mut field: Option<Field> = None;
    let mut text = String::new();
    let mut complete = Complete::new("metadata");
    loop {
        let ev = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(e) => bail!("XML error at byte {}: {e}", reader.error_position()),
        };
        complete.event(&ev)?;
        match ev {
            Event::Eof => break,
            Event::Start(e) => {
                if let Some(p) = cur.as_mut() {
                    field = primary_start(p, &mut list, &e, false)
                        .with_context(|| format!("in package {:?}", p.name))?;
                    text.clear();
                } else if e.local_name().as_ref() == "package" {
                    cur = Some(PackageMeta {
                        repo: repo.to_string(),
                        ..Default::default()
                    });
                }
            }
            Event::Empty(e) => {
                if let Some(p) = cur.as_mut() {
                    primary_start(p, &mut list, &e, true)
                        .with_context(|| format!("in package {:?}", p.name))?;
                }
            }
            Event::Text(t) => {
                if field.is_some() {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if field.is_some() {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if field.is_some() {
                    push_ref(&mut text, &r)?;
                }
            }
            Event::End(e) => {
                if let Some(f) = field.take()
                    && let Some(p) = cur.as_mut()
                {
                    let value = std::mem::take(&mut text);
                    match f {
                        Field::Name => p.name = value,
                        Field::Arch => p.arch = value,
                        Field::Checksum => p.checksum = value,
                        Field::File => p.files.push(&value),
                    }
                } else {
                    let name = e.local_name();
                    if name.as_ref() == "package"
                        && let Some(p) = cur.take()
                    {
                        if p.arch != "src" && p.arch != "nosrc" {
                            pkgs.push(p);
                        }
                    } else if DepList::from_name(name.as_ref()).is_some() {
                        list = None;
                    }
                }
            }
            _ => {}
        }
        buf.clear();
    }
    Ok(pkgs)
}

/// Handle a start (or empty) element inside `<package>`; returns the text
/// field it opens, if any.
fn primary_start(
    p: &mut PackageMeta,
    list: &mut Option<DepList>,
    e: &BytesStart,
    empty: bool,
) -> Result<Option<Field>> {
    let name = e.local_name();
    let name = name.as_ref();
    Ok(match name {
        "name" => Some(Field::Name),
        "arch" => Some(Field::Arch),
        "file" => Some(Field::File),
        "checksum" => {
            p.checksum_type = attr(e, "type")?.unwrap_or_default();
            Some(Field::Checksum)
        }
        "version" => {
            for a in e.attributes().with_checks(false) {
                let a = a?;
                let v = value(&a)?;
                match a.key.as_ref() {
                    "epoch" => p.epoch = parse_epoch(&v)?,
                    "ver" => p.version = v.into_owned(),
                    "rel" => p.release = v.into_owned(),
                    _ => {}
                }
            }
            None
        }
        "location" => {
            for a in e.attributes().with_checks(false) {
                let a = a?;
                match a.key.as_ref() {
                    "href" => p.location = value(&a)?.into_owned(),
                    "xml:base" => p.location_base = Some(value(&a)?.into_owned()),
                    _ => {}
                }
            }
            None
        }
        "size" => {
            for a in e.attributes().with_checks(false) {
                let a = a?;
                let v = value(&a)?;
                let n = || {
                    v.parse::<u64>()
                        .with_context(|| format!("bad size {}={v:?}", a.key.as_ref()))
                };
                match a.key.as_ref() {
                    "package" => p.size_package = n()?,
                    "installed" => p.size_installed = n()?,
                    _ => {}
                }
            }
            None
        }
        "entry" => {
            if let Some(l) = *list {
                let dep = parse_entry(e)?;
                l.of(p).push(dep);
            }
            None
        }
        other => {
            if let Some(l) = DepList::from_name(other)
                && !empty
            {
                *list = Some(l);
            }
            None
        }
    })
}

fn parse_epoch(s: &str) -> Result<u32> {
    if s.is_empty() {
        return Ok(0);
    }
    s.parse().with_context(|| format!("bad epoch {s:?}"))
}

/// An `<rpm:entry name= flags= epoch= ver= rel= pre=/>`.
fn parse_entry(e: &BytesStart) -> Result<Dep> {
    let mut name = None;
    let mut cmp = Cmp::ANY;
    let mut epoch = 0;
    let mut ver = None;
    let mut rel = None;
    let mut pre = false;
    for a in e.attributes().with_checks(false) {
        let a = a?;
        let v = value(&a)?;
        match a.key.as_ref() {
            "name" => name = Some(v.into_owned()),
            "flags" => {
                cmp = Cmp::from_repodata(&v)
                    .ok_or_else(|| anyhow!("unknown dependency flags {v:?}"))?
            }
            "epoch" => epoch = parse_epoch(&v)?,
            "ver" => ver = Some(v.into_owned()),
            "rel" => rel = Some(v.into_owned()),
            "pre" => pre = v == "1" || v == "true",
            _ => {}
        }
    }
    let name = name.ok_or_else(|| anyhow!("rpm:entry without a name"))?;
    Ok(Dep {
        name,
        cmp,
        evr: ver.map(|v| Evr::new(epoch, v, rel)),
        pre,
    })
}

/// Parse filelists.xml: every package's full file list (directories and
/// ghosts included), by pkgid.
pub fn parse_filelists(input: impl BufRead) -> Result<HashMap<String, FileList>> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::with_capacity(BUF_SIZE);
    let mut map = HashMap::new();
    let mut cur: Option<(String, FileList)> = None;
    let mut in_file = false;
    let mut text = String::new();
    let mut complete = Complete::new("filelists");
    loop {
        let ev = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(e) => bail!("XML error at byte {}: {e}", reader.error_position()),
        };
        complete.event(&ev)?;
        match ev {
            Event::Eof => break,
            Event::Start(e) => match e.local_name().as_ref() {
                "package" => {
                    let id =
                        attr(&e, "pkgid")?.ok_or_else(|| anyhow!("<package> without pkgid"))?;
                    cur = Some((id, FileList::default()));
                }
                "file" => {
                    in_file = cur.is_some();
                    text.clear();
                }
                _ => {}
            },
            Event::Text(t) => {
                if in_file {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if in_file {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if in_file {
                    push_ref(&mut text, &r)?;
                }
            }
            Event::End(e) => {
                if in_file {
                    in_file = false;
                    if let Some((_, files)) = cur.as_mut() {
                        files.push(&text);
                    }
                    text.clear();
                } else if e.local_name().as_ref() == "package"
                    && let Some((id, files)) = cur.take()
                {
                    map.insert(id, files);
                }
            }
            _ => {}
        }
        buf.clear();
    }
    Ok(map)
}

/// Replace each package's primary file list by its full one from filelists.
fn merge_filelists(pkgs: &mut [PackageMeta], mut lists: HashMap<String, FileList>) {
    // The same pkgid may appear twice in primary (one file at two locations).
    let mut first: HashMap<String, usize> = HashMap::new();
    for i in 0..pkgs.len() {
        if let Some(files) = lists.remove(&pkgs[i].checksum) {
            pkgs[i].files = files;
            first.insert(pkgs[i].checksum.clone(), i);
        } else if let Some(&j) = first.get(&pkgs[i].checksum) {
            pkgs[i].files = pkgs[j].files.clone();
        }
    }
}

/// The packages a repo offers after its `includepkgs=` and `excludepkgs=`
/// (and `exclude=`), as libdnf's `process_excludes` applies them: each
/// pattern selects among this repo's packages by the NEVRA steps
/// ([`super::nevra`]); with `includepkgs=`, only what it selects is offered
/// (nothing, when it matches nothing: dnf 4 does so, checked in
/// tests/cli/repos_options.rs); excludes win over includes.
fn offered(def: &RepoDef, packages: Vec<PackageMeta>) -> Vec<PackageMeta> {
    if def.includepkgs.is_empty() && def.exclude.is_empty() {
        return packages;
    }
    let mut keep = vec![def.includepkgs.is_empty(); packages.len()];
    for pattern in &def.includepkgs {
        for i in super::nevra::select(&packages, pattern) {
            keep[i] = true;
        }
    }
    if !def.includepkgs.is_empty() && !keep.contains(&true) {
        tracing::warn!(
            "includepkgs of repo {} ({}) matches none of its packages: the repo offers nothing",
            def.id,
            def.source.display()
        );
    }
    for pattern in &def.exclude {
        for i in super::nevra::select(&packages, pattern) {
            keep[i] = false;
        }
    }
    packages
        .into_iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(p))
        .collect()
}

/// Make a repository of the `.rpm` files in `dir` by reading their headers
/// (used for `overrides/rpm`). `location` of each package is its file name.
pub fn load_local_rpms(id: &str, dir: &Path, priority: u32) -> Result<LoadedRepo> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("reading local RPM directory {}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path.extension() == Some("rpm".as_ref()) && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let packages = paths
        .par_iter()
        .map(|p| read_local_rpm(p, id).with_context(|| format!("reading RPM {}", p.display())))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let base = Url::from_directory_path(&dir)
        .map_err(|()| anyhow!("{} cannot be a file:// URL", dir.display()))?;
    Ok(LoadedRepo {
        id: id.to_string(),
        priority,
        cost: crate::config::repofile::DEFAULT_COST,
        baseurls: vec![base],
        gpgcheck: false,
        gpgkeys: vec![],
        revision: None,
        timestamp: None,
        packages,
        metadata: None,
    })
}

/// One local .rpm as repodata would describe it; `None` for source packages.
fn read_local_rpm(path: &Path, repo: &str) -> Result<Option<PackageMeta>> {
    let md = rpm::PackageMetadata::open(path).context("reading the RPM header")?;
    if md.is_source_package() {
        return Ok(None);
    }
    let (checksum, size_package) = crate::util::digest::sha256_file(path)?;
    let epoch = match md.get_epoch() {
        Ok(e) => e,
        Err(rpm::Error::TagNotFound(_)) => 0,
        Err(e) => return Err(e).context("reading the epoch"),
    };
    let deps = |list: Result<Vec<rpm::Dependency>, rpm::Error>, what: &str| -> Result<Vec<Dep>> {
        Ok(list
            .with_context(|| format!("reading {what}"))?
            .into_iter()
            .map(header_dep)
            .collect())
    };
    let provides = deps(md.get_provides(), "provides")?;
    let mut requires = deps(md.get_requires(), "requires")?;
    // As createrepo_c: requires on a name the package provides itself are
    // not listed (rpm writes `config(x)` requires for %config files).
    requires.retain(|r| !provides.iter().any(|p| p.name == r.name));
    Ok(Some(PackageMeta {
        name: md.get_name()?.to_string(),
        epoch,
        version: md.get_version()?.to_string(),
        release: md.get_release()?.to_string(),
        arch: md.get_arch()?.to_string(),
        checksum_type: "sha256".into(),
        checksum,
        location: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        location_base: None,
        size_package,
        size_installed: md.get_installed_size().unwrap_or(0),
        provides,
        requires,
        conflicts: deps(md.get_conflicts(), "conflicts")?,
        obsoletes: deps(md.get_obsoletes(), "obsoletes")?,
        recommends: deps(md.get_recommends(), "recommends")?,
        suggests: deps(md.get_suggests(), "suggests")?,
        supplements: deps(md.get_supplements(), "supplements")?,
        enhances: deps(md.get_enhances(), "enhances")?,
        files: md
            .get_file_paths()
            .context("reading the file list")?
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        repo: repo.to_string(),
    }))
}

/// A header dependency as createrepo_c writes it: comparison bits kept,
/// `pre` for Requires(pre)/(post)/PreReq (its rule in parsehdr.c).
fn header_dep(d: rpm::Dependency) -> Dep {
    use rpm::DependencyFlags as F;
    let cmp = Cmp((d.flags & (F::LESS | F::GREATER | F::EQUAL)).bits() as u8);
    let pre = d
        .flags
        .intersects(F::PREREQ | F::SCRIPT_PRE | F::SCRIPT_POST);
    Dep {
        evr: (!d.version.is_empty()).then(|| Evr::parse(&d.version)),
        name: d.name,
        cmp,
        pre,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPOMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>v42</revision>
  <data type="primary">
    <checksum type="sha256">aa</checksum>
    <open-checksum type="sha256">bb</open-checksum>
    <location href="repodata/aa-primary.xml.zst"/>
    <timestamp>1700000001</timestamp>
    <size>706</size>
    <open-size>1654</open-size>
  </data>
  <data type="filelists">
    <checksum type="sha512">cc</checksum>
    <location href="repodata/cc-filelists.xml.xz"/>
    <timestamp>1700000005.25</timestamp>
    <size>285</size>
  </data>
</repomd>"#;

    #[test]
    fn repomd_parse() {
        let md = Repomd::parse(REPOMD).unwrap();
        assert_eq!(md.revision.as_deref(), Some("v42"));
        let p = md.get("primary").unwrap();
        assert_eq!(p.location, "repodata/aa-primary.xml.zst");
        assert_eq!(
            p.checksum,
            Some(Checksum {
                kind: "sha256".into(),
                hex: "aa".into()
            })
        );
        assert_eq!(p.open_checksum.as_ref().unwrap().hex, "bb");
        assert_eq!((p.size, p.open_size), (Some(706), Some(1654)));
        let f = md.get("filelists").unwrap();
        assert_eq!(f.checksum.as_ref().unwrap().kind, "sha512");
        assert_eq!(md.timestamp(), Some(1700000005));
        assert!(md.get("other").is_none());
        let md = Repomd::parse("<repomd><revision>123</revision></repomd>").unwrap();
        assert_eq!(md.timestamp(), Some(123));
        assert!(Repomd::parse("<repomd><data type='x'><size>zz</size></data></repomd>").is_err());
        // Truncated, unclosed, or not a repomd at all: refused, not read as
        // a repomd.xml without filelists.
        let cut = &REPOMD[..REPOMD.len() / 2];
        let e = format!("{:#}", Repomd::parse(cut).unwrap_err());
        assert!(e.contains("truncated") || e.contains("not closed"), "{e}");
        let unclosed = REPOMD.replace("</repomd>", "");
        let e = format!("{:#}", Repomd::parse(&unclosed).unwrap_err());
        assert!(e.contains("truncated"), "{e}");
        assert!(format!("{:#}", Repomd::parse("").unwrap_err()).contains("no <repomd>"));
        assert!(format!("{:#}", Repomd::parse("<html></html>").unwrap_err()).contains("<html>"));
        let e =
            parse_primary(&b"<metadata><package type='rpm'><name>a</name>"[..], "r").unwrap_err();
        assert!(format!("{e:#}").contains("truncated"), "{e:#}");
    }

    const PRIMARY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
<package type="rpm">
  <name>a&amp;b</name>
  <arch>noarch</arch>
  <version epoch="2" ver="1.0" rel="3"/>
  <checksum type="sha256" pkgid="YES">abc</checksum>
  <size package="10" installed="20" archive="0"/>
  <location xml:base="http://mirror/x/" href="Packages/a.rpm"/>
  <format>
    <rpm:provides><rpm:entry name="a" flags="EQ" epoch="2" ver="1.0" rel="3"/></rpm:provides>
    <rpm:requires>
      <rpm:entry name="(x if y)"/>
      <rpm:entry name="/bin/sh" pre="1"/>
      <rpm:entry name="z" flags="LT" epoch="0" ver="5"/>
    </rpm:requires>
    <rpm:obsoletes><rpm:entry name="old" flags="LE" epoch="1" ver="2" rel="1"/></rpm:obsoletes>
    <file>/usr/bin/a</file>
  </format>
</package>
<package type="rpm">
  <name>a</name><arch>src</arch><version epoch="0" ver="1" rel="1"/>
  <checksum type="sha256" pkgid="YES">def</checksum>
</package>
</metadata>"#;

    #[test]
    fn primary_parse() {
        let pkgs = parse_primary(PRIMARY.as_bytes(), "r").unwrap();
        assert_eq!(pkgs.len(), 1, "src package skipped");
        let p = &pkgs[0];
        assert_eq!(p.name, "a&b");
        assert_eq!(p.nevra(), "a&b-2:1.0-3.noarch");
        assert_eq!(
            (p.checksum_type.as_str(), p.checksum.as_str()),
            ("sha256", "abc")
        );
        assert_eq!((p.size_package, p.size_installed), (10, 20));
        assert_eq!(p.location, "Packages/a.rpm");
        assert_eq!(p.location_base.as_deref(), Some("http://mirror/x/"));
        assert_eq!(p.repo, "r");
        assert_eq!(p.provides, vec![Dep::parse("a = 2:1.0-3").unwrap()]);
        let mut sh = Dep::any("/bin/sh");
        sh.pre = true;
        assert_eq!(
            p.requires,
            vec![Dep::any("(x if y)"), sh, Dep::parse("z < 5").unwrap()]
        );
        assert_eq!(p.obsoletes, vec![Dep::parse("old <= 1:2-1").unwrap()]);
        assert_eq!(p.files.iter().collect::<Vec<_>>(), ["/usr/bin/a"]);
        assert!(p.conflicts.is_empty() && p.recommends.is_empty());
    }

    #[test]
    fn primary_errors() {
        let bad = PRIMARY.replace("flags=\"LT\"", "flags=\"XX\"");
        let e = parse_primary(bad.as_bytes(), "r").unwrap_err();
        assert!(format!("{e:#}").contains("XX"), "{e:#}");
        let e = parse_primary(&PRIMARY.as_bytes()[..600], "r");
        assert!(e.is_err() || e.unwrap().is_empty());
        let bad = PRIMARY.replace("<name>a&amp;b</name>", "<name>a</nam>");
        assert!(parse_primary(bad.as_bytes(), "r").is_err());
    }

    #[test]
    fn filelists_parse_and_merge() {
        let xml = r#"<filelists packages="2">
<package pkgid="abc" name="a" arch="noarch"><version epoch="0" ver="1" rel="1"/>
  <file>/usr/bin/a</file><file type="dir">/usr/share/a</file><file type="ghost">/var/a&lt;1&gt;</file>
</package>
<package pkgid="zzz" name="q" arch="noarch"></package>
</filelists>"#;
        let map = parse_filelists(xml.as_bytes()).unwrap();
        assert_eq!(
            map["abc"].iter().collect::<Vec<_>>(),
            ["/usr/bin/a", "/usr/share/a", "/var/a<1>"]
        );
        assert!(map["zzz"].is_empty());
        let mut pkgs = parse_primary(PRIMARY.as_bytes(), "r").unwrap();
        pkgs.push(pkgs[0].clone());
        merge_filelists(&mut pkgs, map);
        assert_eq!(pkgs[0].files.len(), 3);
        assert_eq!(pkgs[1].files, pkgs[0].files);
    }

    #[test]
    fn header_dep_flags() {
        use rpm::DependencyFlags as F;
        let d = header_dep(rpm::Dependency {
            name: "foo".into(),
            flags: F::GE | F::SCRIPT_PRE,
            version: "1:2.0-3".into(),
        });
        assert_eq!(d.cmp, Cmp::GE);
        assert!(d.pre);
        assert_eq!(d.evr, Some(Evr::new(1, "2.0", Some("3".into()))));
        let d = header_dep(rpm::Dependency::any("(a or b)"));
        assert_eq!(d, Dep::any("(a or b)"));
    }

    /// A synthetic primary.xml of 50k packages; run with
    /// `cargo test --release --lib repodata::tests::parse_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn parse_speed() {
        let mut xml = String::from("<metadata>");
        for i in 0..50_000 {
            xml.push_str(&format!(
                r#"<package type="rpm"><name>pkg{i}</name><arch>x86_64</arch>
<version epoch="0" ver="1.{i}" rel="1.fc40"/><checksum type="sha256" pkgid="YES">{i:064x}</checksum>
<size package="1000" installed="5000" archive="0"/><location href="Packages/p/pkg{i}.rpm"/>
<format><rpm:provides><rpm:entry name="pkg{i}" flags="EQ" epoch="0" ver="1.{i}" rel="1.fc40"/>
<rpm:entry name="libpkg{i}.so.1()(64bit)"/></rpm:provides><rpm:requires>
<rpm:entry name="libc.so.6()(64bit)"/><rpm:entry name="pkg{}" flags="GE" epoch="0" ver="1"/>
<rpm:entry name="/bin/sh" pre="1"/></rpm:requires><file>/usr/bin/pkg{i}</file></format></package>
"#,
                i / 2
            ));
        }
        xml.push_str("</metadata>");
        let t = std::time::Instant::now();
        let pkgs = parse_primary(xml.as_bytes(), "r").unwrap();
        eprintln!(
            "parsed {} packages ({} MB) in {:?}",
            pkgs.len(),
            xml.len() / 1_000_000,
            t.elapsed()
        );
        assert_eq!(pkgs.len(), 50_000);
    }
}
