//! Digests, in one place for the whole tool: of a file (reading around its
//! holes), of a reader, and of what passes through a writer or a reader.
//! Every algorithm repodata names is here (`sha`/`sha1`, `sha224`, `sha256`,
//! `sha384`, `sha512`); everything cosa writes itself uses sha256.

use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::Digest as _;

/// Read buffer for hashing, in bytes.
const BUF_SIZE: usize = 1 << 20;

/// A running digest.
#[derive(Clone)]
pub enum Hasher {
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// `kind` as repodata names it: `sha` (an old name for sha1), `sha1`,
    /// `sha224`, `sha256`, `sha384`, `sha512`, in any case.
    pub fn new(kind: &str) -> Result<Hasher> {
        Ok(match kind.to_ascii_lowercase().as_str() {
            "sha" | "sha1" => Hasher::Sha1(<sha1::Sha1 as sha1::Digest>::new()),
            "sha224" => Hasher::Sha224(sha2::Sha224::new()),
            "sha256" => Hasher::Sha256(sha2::Sha256::new()),
            "sha384" => Hasher::Sha384(sha2::Sha384::new()),
            "sha512" => Hasher::Sha512(sha2::Sha512::new()),
            other => bail!("unsupported checksum type {other:?}"),
        })
    }

    pub fn sha256() -> Hasher {
        Hasher::Sha256(sha2::Sha256::new())
    }

    /// The length of the hex digest.
    pub fn hex_len(&self) -> usize {
        match self {
            Hasher::Sha1(_) => 40,
            Hasher::Sha224(_) => 56,
            Hasher::Sha256(_) => 64,
            Hasher::Sha384(_) => 96,
            Hasher::Sha512(_) => 128,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => sha1::Digest::update(h, data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish_hex(self) -> String {
        match self {
            Hasher::Sha1(h) => hex::encode(sha1::Digest::finalize(h)),
            Hasher::Sha224(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// Hex digest of a whole file, and its size. Holes (disk images are mostly
/// holes) are hashed from a zero buffer instead of being read
/// (SEEK_DATA/SEEK_HOLE; a file without holes is one run of data).
pub fn file(path: &Path, kind: &str) -> Result<(String, u64)> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let mut h = Hasher::new(kind)?;
    let mut buf = vec![0u8; BUF_SIZE];
    let zeros = vec![0u8; BUF_SIZE];
    let fd = f.as_raw_fd();
    let mut pos = 0u64;
    while pos < len {
        // SAFETY: lseek on a file descriptor that `f` keeps open.
        let data = unsafe { libc::lseek(fd, pos as i64, libc::SEEK_DATA) };
        let data = if data < 0 {
            len
        } else {
            (data as u64).min(len)
        };
        let mut z = data - pos;
        while z > 0 {
            let n = z.min(zeros.len() as u64) as usize;
            h.update(&zeros[..n]);
            z -= n as u64;
        }
        if data >= len {
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data as i64, libc::SEEK_HOLE) };
        let end = if hole < 0 {
            len
        } else {
            (hole as u64).min(len)
        };
        let mut off = data;
        while off < end {
            let n = ((end - off) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], off)
                .with_context(|| format!("reading {}", path.display()))?;
            h.update(&buf[..n]);
            off += n as u64;
        }
        pos = end;
    }
    Ok((h.finish_hex(), len))
}

/// Hex sha256 of a whole file, and its size.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    file(path, "sha256")
}

/// Hex sha256 of the files at `paths`, one after the other (ostree's
/// bootcsum of a kernel and its initramfs, for example).
pub fn sha256_files(paths: &[&Path]) -> Result<String> {
    let mut h = HashingWriter::sha256(io::sink());
    for p in paths {
        let mut f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        io::copy(&mut f, &mut h).with_context(|| format!("reading {}", p.display()))?;
    }
    Ok(h.finish().1)
}

/// Hex digest of everything `r` yields, and its length.
pub fn reader(mut r: impl Read, kind: &str) -> io::Result<(String, u64)> {
    let mut h = HashingWriter::new(io::sink(), Hasher::new(kind).map_err(io::Error::other)?);
    io::copy(&mut r, &mut h)?;
    let (_, hex, len) = h.finish();
    Ok((hex, len))
}

/// A writer that hashes and counts what passes through it to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    len: u64,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W, hasher: Hasher) -> Self {
        HashingWriter {
            inner,
            hasher,
            len: 0,
        }
    }

    pub fn sha256(inner: W) -> Self {
        Self::new(inner, Hasher::sha256())
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inner writer, the hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, self.hasher.finish_hex(), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what is read through it from `inner`.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    len: u64,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R, hasher: Hasher) -> Self {
        HashingReader {
            inner,
            hasher,
            len: 0,
        }
    }

    pub fn sha256(inner: R) -> Self {
        Self::new(inner, Hasher::sha256())
    }

    /// The inner reader, the hex digest and the byte count.
    pub fn finish(self) -> (R, String, u64) {
        (self.inner, self.hasher.finish_hex(), self.len)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_digests() {
        let d = |kind: &str| reader(&b"abc"[..], kind).unwrap();
        assert_eq!(d("sha256"), (ABC_SHA256.to_string(), 3));
        assert_eq!(d("SHA1").0, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(d("sha").0, d("sha1").0);
        assert_eq!(
            d("sha224").0,
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"
        );
        assert_eq!(d("sha384").0.len(), 96);
        assert_eq!(d("sha512").0.len(), 128);
        assert_eq!(sha256_hex(b"abc"), ABC_SHA256);
        let e = Hasher::new("md5").err().unwrap();
        assert!(e.to_string().contains("md5"), "{e}");
        for kind in ["sha1", "sha224", "sha256", "sha384", "sha512"] {
            let h = Hasher::new(kind).unwrap();
            assert_eq!(h.hex_len(), h.clone().finish_hex().len(), "{kind}");
        }
    }

    #[test]
    fn writer_and_reader_pass_data_through() {
        let mut w = HashingWriter::sha256(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        assert_eq!(w.len(), 3);
        let (out, hex, len) = w.finish();
        assert_eq!(
            (out.as_slice(), hex.as_str(), len),
            (&b"abc"[..], ABC_SHA256, 3)
        );

        let mut r = HashingReader::sha256(&b"abc"[..]);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        let (_, hex, len) = r.finish();
        assert_eq!(
            (got.as_slice(), hex.as_str(), len),
            (&b"abc"[..], ABC_SHA256, 3)
        );
    }

    /// A sparse file hashes as its bytes, holes included, at every layout.
    #[test]
    fn file_digest_reads_around_holes() {
        let dir = tempfile::tempdir().unwrap();
        let layouts: [&[(u64, &[u8])]; 4] = [
            &[],
            &[(0, b"abc")],
            &[(5 << 20, b"middle")],
            &[(0, b"head"), (3 << 20, b"mid"), ((7 << 20) + 1, b"tail")],
        ];
        for (i, runs) in layouts.iter().enumerate() {
            let path = dir.path().join(format!("f{i}"));
            let f = std::fs::File::create(&path).unwrap();
            let mut plain = Vec::new();
            for (off, data) in runs.iter() {
                f.write_all_at(data, *off).unwrap();
                let end = *off as usize + data.len();
                plain.resize(plain.len().max(end), 0);
                plain[*off as usize..end].copy_from_slice(data);
            }
            // A trailing hole too.
            let size = plain.len() as u64 + (1 << 20);
            f.set_len(size).unwrap();
            plain.resize(size as usize, 0);
            assert_eq!(
                sha256_file(&path).unwrap(),
                (sha256_hex(&plain), size),
                "layout {i}"
            );
        }
        let e = sha256_file(&dir.path().join("missing")).unwrap_err();
        assert!(format!("{e:#}").contains("missing"), "{e:#}");
    }
}
