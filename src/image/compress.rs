//! Compression of build artifacts (`cosa compress` / `cosa uncompress`), as
//! coreos-assembler's `src/cmd-compress` does it: xz, zstd or gzip, streamed in
//! chunks (artifacts are gigabytes), using every core.
//!
//! Upstream runs `xz -c9 -T<ncpu>`, `zstd -10 -T<ncpu>` and `gzip -6`
//! (`--fast`: `gzip -1`). Here xz is liblzma's multithreaded encoder (the
//! same library and block format as `xz -T`), zstd is libzstd's multithreaded
//! mode, and gzip is written as independent gzip members compressed in
//! parallel (what `pigz --independent` does; `gzip -d` reads it as one file).
//! Every function here reads and writes whole files only: the caller picks the
//! temp path and renames it into place.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::util::digest::{Hasher, HashingWriter};
use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use crate::store::meta::Artifact;
use crate::util::progress::Progress;

/// Read size of the streaming loops, in bytes.
const CHUNK: usize = 4 << 20;
/// Largest xz block, in bytes: `xz -T`'s default for `-9` (three times the
/// 64 MiB dictionary).
const XZ_MAX_BLOCK: u64 = 192 << 20;
/// Smallest xz block, in bytes, so tiny files are not cut into tiny blocks.
const XZ_MIN_BLOCK: u64 = 1 << 20;
/// Size of one independently compressed gzip member, in bytes.
const GZIP_MEMBER: usize = 16 << 20;

/// A compressor upstream knows (`ext_dict` in cmd-compress, minus zip).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compressor {
    Xz,
    Zstd,
    Gzip,
}

/// Upstream's `DEFAULT_COMPRESSOR` when image.yaml names none.
pub const DEFAULT_COMPRESSOR: Compressor = Compressor::Gzip;

impl Compressor {
    /// Every compressor, in the order `--help` lists them.
    pub const ALL: [Compressor; 3] = [Compressor::Xz, Compressor::Zstd, Compressor::Gzip];

    /// Parse the name used by `--compressor`, image.yaml `compressor` and
    /// `platform-compressor`.
    pub fn from_name(name: &str) -> Result<Compressor> {
        Compressor::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .with_context(|| format!("unknown compressor {name:?}: use one of xz, zstd or gzip"))
    }

    pub fn name(self) -> &'static str {
        match self {
            Compressor::Xz => "xz",
            Compressor::Zstd => "zstd",
            Compressor::Gzip => "gzip",
        }
    }

    /// The file extension, without the dot.
    pub fn ext(self) -> &'static str {
        match self {
            Compressor::Xz => "xz",
            Compressor::Zstd => "zst",
            Compressor::Gzip => "gz",
        }
    }

    /// The compressor whose extension `path` ends with.
    pub fn from_path(path: &str) -> Option<Compressor> {
        let (_, ext) = path.rsplit_once('.')?;
        Compressor::ALL.into_iter().find(|c| c.ext() == ext)
    }

    /// Upstream's level: `xz -9`, `zstd -10`, `gzip -6`; with `fast` the
    /// lowest useful one (upstream's `--fast` is `gzip -1`).
    pub fn level(self, fast: bool) -> u32 {
        match (self, fast) {
            (Compressor::Xz, false) => 9,
            (Compressor::Zstd, false) => 10,
            (Compressor::Gzip, false) => 6,
            (Compressor::Xz, true) => 1,
            (Compressor::Zstd, true) => 1,
            (Compressor::Gzip, true) => 1,
        }
    }

    /// Whether `head` (the first bytes of a file) is this format's magic.
    pub fn magic_matches(self, head: &[u8]) -> bool {
        match self {
            Compressor::Xz => head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Compressor::Zstd => head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compressor::Gzip => head.starts_with(&[0x1f, 0x8b]),
        }
    }
}

/// Artifacts coreos-assembler never compresses, whether or not their
/// meta.json entry says `skip-compression`: the OSTree commit (imported with
/// skip-compression by cmd-import), formats that are compressed already or
/// internally (cmd-osbuild: gcp, kubevirt, nutanix, nvidiabluefield and the
/// live media; qemuvariants: digitalocean's .qcow2.gz; ova.py: vmware and
/// virtualbox), and the Ignition signing key.
pub const NEVER_COMPRESSED: &[&str] = &[
    "ostree",
    "oci-manifest",
    "gcp",
    "kubevirt",
    "nutanix",
    "nvidiabluefield",
    "digitalocean",
    "vmware",
    "virtualbox",
    "live-iso",
    "live-kernel",
    "live-initramfs",
    "live-rootfs",
    "iso",
    "kernel",
    "initramfs",
    "ignition-gpg-key",
];

/// Why an artifact is left alone, or what to do with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// `skip-compression: true` in meta.json.
    SkipFlagged,
    /// In [`NEVER_COMPRESSED`].
    SkipNever,
    /// Compressed already (has `uncompressed-sha256`).
    Done,
    Compress,
}

/// What `cosa compress` does with `images.<name>`.
pub fn plan_compress(name: &str, art: &Artifact) -> Plan {
    if art.skip_compression == Some(true) {
        Plan::SkipFlagged
    } else if NEVER_COMPRESSED.contains(&name) {
        Plan::SkipNever
    } else if art.uncompressed_sha256.is_some() {
        Plan::Done
    } else {
        Plan::Compress
    }
}

/// The compressor `cosa uncompress` undoes on `art`: one with
/// `uncompressed-sha256` whose path ends in a compressor's extension, and
/// without `skip-compression` (upstream's gcp .tar.gz carries
/// uncompressed-sha256 with skip-compression: it stays compressed).
pub fn plan_uncompress(art: &Artifact) -> Result<Option<Compressor>> {
    if art.skip_compression == Some(true) || art.uncompressed_sha256.is_none() {
        return Ok(None);
    }
    match Compressor::from_path(&art.path) {
        Some(c) => Ok(Some(c)),
        None => bail!(
            "{} has uncompressed-sha256 but no .xz, .zst or .gz extension: \
             it was not compressed by cosa compress",
            art.path
        ),
    }
}

/// How to compress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub compressor: Compressor,
    pub level: u32,
    /// Worker threads (at least 1).
    pub threads: u32,
}

impl Settings {
    /// Upstream's level for `compressor`, on every core of this machine.
    pub fn new(compressor: Compressor, fast: bool) -> Settings {
        Settings {
            compressor,
            level: compressor.level(fast),
            threads: cores(),
        }
    }

    /// A short description such as `xz -9, 2 threads`.
    pub fn describe(&self) -> String {
        format!(
            "{} -{}, {} thread{}",
            self.compressor.name(),
            self.level,
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        )
    }
}

/// The cores this process may use.
pub fn cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// sha256 (hex) and size of a byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    pub sha256: String,
    pub size: u64,
}

/// What went in and what came out of a (de)compression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub input: Digest,
    pub output: Digest,
}

impl Digest {
    fn of(h: Hasher, size: u64) -> Digest {
        Digest {
            sha256: h.finish_hex(),
            size,
        }
    }
}

/// The inner writer and the digest of what passed through `out`.
fn written<W>(out: HashingWriter<W>) -> (W, Digest) {
    let (inner, sha256, size) = out.finish();
    (inner, Digest { sha256, size })
}

/// A file writer that seeks over all-zero 4 KiB blocks instead of writing
/// them, so a decompressed disk image is sparse again.
struct Sparse {
    file: File,
    pos: u64,
}

impl Sparse {
    const BLOCK: usize = 4096;

    fn finish(self) -> io::Result<File> {
        self.file.set_len(self.pos)?;
        Ok(self.file)
    }
}

impl Write for Sparse {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Keep block alignment: write up to the next block boundary first.
        let into = (self.pos % Self::BLOCK as u64) as usize;
        let n = buf.len().min(Self::BLOCK - into);
        let part = &buf[..n];
        if into == 0 && n == Self::BLOCK && part.iter().all(|&b| b == 0) {
            self.file.seek(SeekFrom::Current(n as i64))?;
        } else {
            self.file.write_all(part)?;
        }
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The xz block size for an input of `size` bytes on `threads` threads: a
/// multiple of `threads` blocks, each at most [`XZ_MAX_BLOCK`], so every
/// thread gets the same share of the work (with the default 192 MiB blocks a
/// 512 MiB image is three blocks, and one of two cores idles for a third of
/// the time).
pub fn xz_block_size(size: u64, threads: u32) -> u64 {
    let threads = u64::from(threads.max(1));
    let rounds = size.div_ceil(threads * XZ_MAX_BLOCK).max(1);
    let block = size.div_ceil(threads * rounds);
    block
        .next_multiple_of(XZ_MIN_BLOCK)
        .clamp(XZ_MIN_BLOCK, XZ_MAX_BLOCK)
}

fn open(path: &Path) -> Result<(File, u64)> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("reading the size of {}", path.display()))?
        .len();
    Ok((f, len))
}

fn create(path: &Path) -> Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))
}

/// Read `src` in chunks into `sink`, hashing what was read.
fn pump(src: &Path, mut f: File, sink: &mut dyn Write, progress: &Progress) -> Result<Digest> {
    let mut hash = Hasher::sha256();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", src.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
        sink.write_all(&buf[..n])
            .with_context(|| format!("compressing {}", src.display()))?;
        progress.inc(n as u64);
    }
    Ok(Digest::of(hash, size))
}

/// Compress `src` into a new file `dst` (which the caller renames into
/// place); `dst` is synced to disk before this returns.
pub fn compress(src: &Path, dst: &Path, s: &Settings, what: &str) -> Result<Outcome> {
    let (input, len) = open(src)?;
    let out = HashingWriter::sha256(io::BufWriter::with_capacity(1 << 20, create(dst)?));
    let progress = Progress::new(what, len, true);
    let threads = s.threads.max(1);
    let (input, out) = match s.compressor {
        Compressor::Xz => {
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(threads)
                .preset(s.level)
                .block_size(xz_block_size(len, threads))
                .check(liblzma::stream::Check::Crc64)
                .encoder()
                .context("starting the xz encoder")?;
            let mut enc = liblzma::write::XzEncoder::new_stream(out, stream);
            let input = pump(src, input, &mut enc, &progress)?;
            (input, enc.finish())
        }
        Compressor::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out, s.level as i32)
                .context("starting the zstd encoder")?;
            if threads > 1 {
                enc.multithread(threads)
                    .context("starting zstd worker threads")?;
            }
            enc.include_checksum(true)
                .and_then(|_| enc.set_pledged_src_size(Some(len)))
                .context("setting zstd frame parameters")?;
            let input = pump(src, input, &mut enc, &progress)?;
            (input, enc.finish())
        }
        Compressor::Gzip => {
            let mut out = out;
            let input = gzip_parallel(src, input, &mut out, s.level, &progress)?;
            (input, Ok(out))
        }
    };
    let out = out.with_context(|| format!("finishing {}", dst.display()))?;
    let (buf, output) = written(out);
    let file = buf
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", dst.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", dst.display()))?;
    progress.finish(&format!(
        "{} -> {} ({:.1}%)",
        indicatif::HumanBytes(input.size),
        indicatif::HumanBytes(output.size),
        100.0 * output.size as f64 / input.size.max(1) as f64
    ));
    Ok(Outcome { input, output })
}

/// gzip in independent members of [`GZIP_MEMBER`] bytes, a batch of them
/// compressed in parallel (rayon) and written in order.
fn gzip_parallel(
    src: &Path,
    mut f: File,
    out: &mut dyn Write,
    level: u32,
    progress: &Progress,
) -> Result<Digest> {
    let batch = rayon::current_num_threads().max(1) * 2;
    let mut hash = Hasher::sha256();
    let mut size = 0u64;
    loop {
        let mut chunks = Vec::with_capacity(batch);
        for _ in 0..batch {
            let mut buf = Vec::with_capacity(GZIP_MEMBER);
            (&mut f)
                .take(GZIP_MEMBER as u64)
                .read_to_end(&mut buf)
                .with_context(|| format!("reading {}", src.display()))?;
            if buf.is_empty() {
                break;
            }
            chunks.push(buf);
        }
        if chunks.is_empty() && size > 0 {
            break;
        }
        let last = chunks.len() < batch;
        let members: Vec<io::Result<Vec<u8>>> = chunks
            .par_iter()
            .map(|c| {
                let mut e = flate2::GzBuilder::new().write(
                    Vec::with_capacity(c.len() / 2),
                    flate2::Compression::new(level),
                );
                e.write_all(c)?;
                e.finish()
            })
            .collect();
        if chunks.is_empty() {
            // An empty input still makes one (empty) gzip member.
            let e = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(level));
            out.write_all(&e.finish()?)
                .with_context(|| format!("compressing {}", src.display()))?;
            break;
        }
        for (c, m) in chunks.iter().zip(members) {
            let m = m.with_context(|| format!("compressing {}", src.display()))?;
            out.write_all(&m)
                .with_context(|| format!("compressing {}", src.display()))?;
            hash.update(c);
            size += c.len() as u64;
            progress.inc(c.len() as u64);
        }
        if last {
            break;
        }
    }
    Ok(Digest::of(hash, size))
}

/// Decompress `src` (in format `c`) into a new sparse file `dst`, synced to
/// disk before this returns.
pub fn decompress(src: &Path, dst: &Path, c: Compressor, what: &str) -> Result<Outcome> {
    let (mut input, len) = open(src)?;
    let mut head = [0u8; 6];
    let n = input
        .read(&mut head)
        .with_context(|| format!("reading {}", src.display()))?;
    if !c.magic_matches(&head[..n]) {
        bail!(
            "{} is not a {} file (its first bytes are not {}'s magic)",
            src.display(),
            c.name(),
            c.name()
        );
    }
    input
        .seek(SeekFrom::Start(0))
        .with_context(|| format!("reading {}", src.display()))?;
    let out = HashingWriter::sha256(io::BufWriter::with_capacity(
        1 << 20,
        Sparse {
            file: create(dst)?,
            pos: 0,
        },
    ));
    let progress = Progress::new(what, len, true);
    // The progress counts compressed bytes read: the total is known.
    let reader = Counting {
        inner: input,
        progress: &progress,
    };
    let mut out = out;
    let copied = match c {
        Compressor::Xz => {
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(cores())
                .memlimit_threading(u64::MAX)
                .memlimit_stop(u64::MAX)
                .decoder()
                .context("starting the xz decoder")?;
            let mut dec = liblzma::read::XzDecoder::new_stream(io::BufReader::new(reader), stream);
            io::copy(&mut dec, &mut out)
        }
        Compressor::Zstd => {
            let mut dec =
                zstd::stream::read::Decoder::new(reader).context("starting the zstd decoder")?;
            io::copy(&mut dec, &mut out)
        }
        Compressor::Gzip => {
            let mut dec = flate2::read::MultiGzDecoder::new(io::BufReader::new(reader));
            io::copy(&mut dec, &mut out)
        }
    };
    copied.with_context(|| format!("decompressing {}", src.display()))?;
    let (buf, output) = written(out);
    let file = buf
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(Sparse::finish)
        .with_context(|| format!("writing {}", dst.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", dst.display()))?;
    let input = file_digest(src)?;
    progress.finish(&format!(
        "{} -> {}",
        indicatif::HumanBytes(input.size),
        indicatif::HumanBytes(output.size)
    ));
    Ok(Outcome { input, output })
}

/// A reader that reports the bytes it reads to a progress counter.
struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// sha256 and size of a file.
pub fn file_digest(path: &Path) -> Result<Digest> {
    let (sha256, size) = crate::util::digest::sha256_file(path)?;
    Ok(Digest { sha256, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Semi-compressible: text-like runs, zero runs and noise.
        let mut v = Vec::with_capacity(len);
        let mut x: u32 = 1;
        while v.len() < len {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            match (x >> 16) % 3 {
                0 => v.extend_from_slice(b"the quick brown fox jumps over the lazy dog "),
                1 => v.extend(std::iter::repeat_n(0u8, 5000)),
                _ => v.extend((0..64).map(|i| (x >> (i % 24)) as u8)),
            }
        }
        v.truncate(len);
        v
    }

    #[test]
    fn every_compressor_round_trips() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("in.raw");
        let data = sample(20 << 20);
        std::fs::write(&src, &data).unwrap();
        let want = file_digest(&src).unwrap();
        for c in Compressor::ALL {
            for fast in [false, true] {
                let mut s = Settings::new(c, fast);
                s.threads = 2;
                let z = t.path().join(format!("out.{}", c.ext()));
                let o = compress(&src, &z, &s, "test").unwrap();
                assert_eq!(o.input, want);
                assert_eq!(o.output, file_digest(&z).unwrap());
                assert!(o.output.size < want.size / 2, "{c:?} fast={fast}: {o:?}");
                let back = t.path().join("back.raw");
                let d = decompress(&z, &back, c, "test").unwrap();
                assert_eq!(d.output, want, "{c:?} fast={fast}");
                assert_eq!(std::fs::read(&back).unwrap(), data);
            }
        }
    }

    #[test]
    fn empty_files_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("empty");
        std::fs::write(&src, b"").unwrap();
        for c in Compressor::ALL {
            let z = t.path().join(format!("empty.{}", c.ext()));
            compress(&src, &z, &Settings::new(c, true), "test").unwrap();
            let back = t.path().join("back");
            let d = decompress(&z, &back, c, "test").unwrap();
            assert_eq!(d.output.size, 0);
        }
    }

    #[test]
    fn wrong_format_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let z = t.path().join("x.xz");
        std::fs::write(&z, b"not xz at all").unwrap();
        let e = decompress(&z, &t.path().join("o"), Compressor::Xz, "test").unwrap_err();
        assert!(format!("{e:#}").contains("not a xz file"), "{e:#}");
    }

    #[test]
    fn names_extensions_and_levels_are_upstreams() {
        assert_eq!(Compressor::from_name("zstd").unwrap(), Compressor::Zstd);
        assert!(Compressor::from_name("zip").is_err());
        assert_eq!(Compressor::from_path("a.raw.zst"), Some(Compressor::Zstd));
        assert_eq!(Compressor::from_path("a.qcow2"), None);
        assert_eq!(Compressor::Xz.level(false), 9);
        assert_eq!(Compressor::Zstd.level(false), 10);
        assert_eq!(Compressor::Gzip.level(false), 6);
        assert_eq!(Compressor::Gzip.level(true), 1);
    }

    #[test]
    fn plans_follow_upstream() {
        let art = |path: &str| Artifact {
            path: path.into(),
            sha256: "0".repeat(64),
            size: Some(1),
            ..Default::default()
        };
        assert_eq!(plan_compress("metal", &art("a.raw")), Plan::Compress);
        assert_eq!(plan_compress("ostree", &art("a.tar")), Plan::SkipNever);
        assert_eq!(plan_compress("gcp", &art("a.tar.gz")), Plan::SkipNever);
        let mut flagged = art("a.qcow2");
        flagged.skip_compression = Some(true);
        assert_eq!(plan_compress("qemu", &flagged), Plan::SkipFlagged);
        let mut done = art("a.raw.xz");
        done.uncompressed_sha256 = Some("1".repeat(64));
        assert_eq!(plan_compress("metal", &done), Plan::Done);
        assert_eq!(plan_uncompress(&done).unwrap(), Some(Compressor::Xz));
        assert_eq!(plan_uncompress(&art("a.raw")).unwrap(), None);
        let mut odd = art("a.raw");
        odd.uncompressed_sha256 = Some("1".repeat(64));
        assert!(plan_uncompress(&odd).is_err());
        let mut gcp = done.clone();
        gcp.path = "a.tar.gz".into();
        gcp.skip_compression = Some(true);
        assert_eq!(plan_uncompress(&gcp).unwrap(), None);
    }

    #[test]
    fn xz_blocks_balance_threads() {
        const M: u64 = 1 << 20;
        assert_eq!(xz_block_size(512 * M, 2), 128 * M);
        assert_eq!(xz_block_size(100 * M, 2), 50 * M);
        assert_eq!(xz_block_size(10 * 1024 * M, 1), 190 * M);
        assert_eq!(xz_block_size(384 * M, 1), 192 * M);
        assert_eq!(xz_block_size(0, 4), M);
        assert_eq!(xz_block_size(1000 * M, 4), 125 * M);
    }
}
