//! OSTree object encodings: file headers, dirmeta, dirtree and commit
//! GVariants, and content checksums. Integers that OSTree stores big-endian
//! (uid, gid, mode, sizes, timestamps) are byte-swapped here, so the
//! GVariant layer stays plain little-endian.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

use super::gvariant::{Type, Value};

/// `(uuuusa(ayay))`: uid, gid, mode, rdev, symlink target, xattrs.
pub const FILE_HEADER: &str = "(uuuusa(ayay))";
/// `(tuuuusa(ayay))`: the archive-mode header, with the uncompressed size first.
pub const ZLIB_FILE_HEADER: &str = "(tuuuusa(ayay))";
/// `(uuua(ayay))`: uid, gid, mode, xattrs.
pub const DIRMETA: &str = "(uuua(ayay))";
/// `(a(say)a(sayay))`: files (name, content checksum), dirs (name, tree, meta).
pub const DIRTREE: &str = "(a(say)a(sayay))";
/// `(a{sv}aya(say)sstayay)`: metadata, parent, related, subject, body,
/// timestamp, root tree, root meta.
pub const COMMIT: &str = "(a{sv}aya(say)sstayay)";
/// `a{sv}`: commit metadata and detached metadata.
pub const METADATA: &str = "a{sv}";

/// The deflate level OSTree uses for archive objects (`core.zlib-level`).
pub const ZLIB_LEVEL: u32 = 6;

/// Extended attributes: (name without NUL, value), sorted by name.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The kinds of loose objects in an archive repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectType {
    File,
    DirTree,
    DirMeta,
    Commit,
    CommitMeta,
}

impl ObjectType {
    /// File name extension in an archive repository.
    pub fn extension(self) -> &'static str {
        match self {
            ObjectType::File => "filez",
            ObjectType::DirTree => "dirtree",
            ObjectType::DirMeta => "dirmeta",
            ObjectType::Commit => "commit",
            ObjectType::CommitMeta => "commitmeta",
        }
    }

    pub fn from_extension(ext: &str) -> Option<ObjectType> {
        Some(match ext {
            "filez" => ObjectType::File,
            "dirtree" => ObjectType::DirTree,
            "dirmeta" => ObjectType::DirMeta,
            "commit" => ObjectType::Commit,
            "commitmeta" => ObjectType::CommitMeta,
            _ => return None,
        })
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Decode a 64-character checksum into its 32 bytes.
pub fn checksum_bytes(csum: &str) -> Result<[u8; 32]> {
    ensure!(
        csum.len() == 64
            && csum
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "invalid checksum {csum:?}: expected 64 lower-case hex digits"
    );
    let mut out = [0u8; 32];
    hex::decode_to_slice(csum, &mut out).with_context(|| format!("decoding checksum {csum}"))?;
    Ok(out)
}

fn checksum_from_value(v: &Value, what: &str) -> Result<String> {
    let b = v
        .as_bytes()
        .with_context(|| format!("{what}: not a byte array"))?;
    ensure!(
        b.len() == 32,
        "{what}: checksum has {} bytes, expected 32",
        b.len()
    );
    Ok(hex::encode(b))
}

fn xattrs_value(xattrs: &Xattrs) -> Value {
    let t = Type::parse("(ayay)").expect("static type");
    Value::Array(
        t,
        xattrs
            .iter()
            .map(|(name, value)| {
                let mut n = name.clone();
                n.push(0);
                Value::Tuple(vec![Value::Bytes(n), Value::Bytes(value.clone())])
            })
            .collect(),
    )
}

fn xattrs_from_value(v: &Value) -> Result<Xattrs> {
    let items = v.as_array().context("xattrs: not an array")?;
    items
        .iter()
        .map(|it| {
            let m = it.as_tuple().context("xattr: not a tuple")?;
            let name = m[0].as_bytes().context("xattr name")?;
            let name = name.strip_suffix(&[0]).unwrap_or(name).to_vec();
            Ok((name, m[1].as_bytes().context("xattr value")?.to_vec()))
        })
        .collect()
}

fn be32(v: u32) -> Value {
    Value::U32(v.to_be())
}

/// What a content object records about a file (OSTree keeps no timestamps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    pub uid: u32,
    pub gid: u32,
    /// Full `st_mode`, file type bits included.
    pub mode: u32,
    /// Symlink target; empty for regular files.
    pub symlink: String,
    pub xattrs: Xattrs,
}

impl FileMeta {
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }

    /// The `(uuuusa(ayay))` header that the content checksum covers.
    pub fn header(&self) -> Value {
        Value::Tuple(vec![
            be32(self.uid),
            be32(self.gid),
            be32(self.mode),
            be32(0),
            Value::str(self.symlink.clone()),
            xattrs_value(&self.xattrs),
        ])
    }

    /// The archive `(tuuuusa(ayay))` header for content of `size` bytes.
    pub fn zlib_header(&self, size: u64) -> Value {
        let Value::Tuple(mut fields) = self.header() else {
            unreachable!("header() is a tuple")
        };
        fields.insert(0, Value::U64(size.to_be()));
        Value::Tuple(fields)
    }

    /// Start a content checksum: the size-prefixed header; feed the content after.
    pub fn checksum_start(&self) -> Sha256 {
        let mut h = Sha256::new();
        h.update(size_prefixed(&self.header().to_bytes()));
        h
    }
}

/// A variant prefixed as OSTree streams it: its size as a big-endian u32,
/// four zero bytes so the data is 8-aligned, then the data.
pub fn size_prefixed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(data);
    out
}

/// Parse an archive `.filez` object: its metadata, uncompressed size and content.
pub fn parse_filez(data: &[u8]) -> Result<(FileMeta, Vec<u8>)> {
    ensure!(data.len() >= 8, "content object shorter than its header");
    let len = u32::from_be_bytes(data[..4].try_into().expect("4 bytes")) as usize;
    let end = 8usize.checked_add(len).context("header size overflow")?;
    let hdr = data
        .get(8..end)
        .context("content object header is truncated")?;
    let v = Value::parse(&Type::parse(ZLIB_FILE_HEADER)?, hdr)?;
    let m = v.as_tuple().context("file header is not a tuple")?;
    let u32_of = |i: usize| match &m[i] {
        Value::U32(x) => Ok(u32::from_be(*x)),
        _ => bail!("file header member {i} is not a u32"),
    };
    let Value::U64(size) = m[0] else {
        bail!("file header size is not a u64");
    };
    let size = u64::from_be(size);
    let meta = FileMeta {
        uid: u32_of(1)?,
        gid: u32_of(2)?,
        mode: u32_of(3)?,
        symlink: m[5].as_str().context("symlink target")?.to_string(),
        xattrs: xattrs_from_value(&m[6])?,
    };
    // The header's size is not trusted for the allocation (a crafted object
    // could ask for any amount), and inflating stops one byte past it (a
    // deflate bomb cannot grow the buffer beyond what the header claims).
    let mut content = Vec::with_capacity(size.min(64 << 20) as usize);
    if meta.mode & libc::S_IFMT == libc::S_IFREG {
        flate2::read::DeflateDecoder::new(&data[end..])
            .take(size.saturating_add(1))
            .read_to_end(&mut content)
            .context("inflating content")?;
    }
    ensure!(
        content.len() as u64 == size,
        "content is {} bytes, header says {size}",
        content.len()
    );
    Ok((meta, content))
}

/// The checksum of a content object given its metadata and content.
pub fn content_checksum(meta: &FileMeta, content: &[u8]) -> String {
    let mut h = meta.checksum_start();
    h.update(content);
    hex::encode(h.finalize())
}

/// A directory's metadata object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirMeta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub xattrs: Xattrs,
}

impl DirMeta {
    /// Parse a `.dirmeta` object.
    pub fn parse(data: &[u8]) -> Result<DirMeta> {
        let v = Value::parse(&Type::parse(DIRMETA)?, data)?;
        let m = v.as_tuple().context("dirmeta is not a tuple")?;
        let u32_of = |i: usize| match &m[i] {
            Value::U32(x) => Ok(u32::from_be(*x)),
            _ => bail!("dirmeta member {i} is not a u32"),
        };
        Ok(DirMeta {
            uid: u32_of(0)?,
            gid: u32_of(1)?,
            mode: u32_of(2)?,
            xattrs: xattrs_from_value(&m[3])?,
        })
    }

    pub fn to_value(&self) -> Value {
        Value::Tuple(vec![
            be32(self.uid),
            be32(self.gid),
            be32(self.mode),
            xattrs_value(&self.xattrs),
        ])
    }
}

/// A directory listing: entries sorted by name (byte order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirTree {
    /// (name, content checksum)
    pub files: Vec<(String, String)>,
    /// (name, dirtree checksum, dirmeta checksum)
    pub dirs: Vec<(String, String, String)>,
}

impl DirTree {
    pub fn to_value(&self) -> Result<Value> {
        let files = self
            .files
            .iter()
            .map(|(n, c)| {
                Ok(Value::Tuple(vec![
                    Value::str(n.clone()),
                    Value::Bytes(checksum_bytes(c)?.to_vec()),
                ]))
            })
            .collect::<Result<Vec<_>>>()?;
        let dirs = self
            .dirs
            .iter()
            .map(|(n, t, m)| {
                Ok(Value::Tuple(vec![
                    Value::str(n.clone()),
                    Value::Bytes(checksum_bytes(t)?.to_vec()),
                    Value::Bytes(checksum_bytes(m)?.to_vec()),
                ]))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Value::Tuple(vec![
            Value::Array(Type::parse("(say)")?, files),
            Value::Array(Type::parse("(sayay)")?, dirs),
        ]))
    }

    pub fn parse(data: &[u8]) -> Result<DirTree> {
        let v = Value::parse(&Type::parse(DIRTREE)?, data)?;
        let m = v.as_tuple().context("dirtree is not a tuple")?;
        let name = |v: &Value| -> Result<String> {
            let n = v.as_str().context("dirtree entry name")?;
            ensure!(
                !n.is_empty() && n != "." && n != ".." && !n.contains('/'),
                "invalid dirtree entry name {n:?}"
            );
            Ok(n.to_string())
        };
        let mut t = DirTree::default();
        for f in m[0].as_array().context("dirtree files")? {
            let f = f.as_tuple().context("dirtree file entry")?;
            t.files
                .push((name(&f[0])?, checksum_from_value(&f[1], "dirtree file")?));
        }
        for d in m[1].as_array().context("dirtree dirs")? {
            let d = d.as_tuple().context("dirtree dir entry")?;
            t.dirs.push((
                name(&d[0])?,
                checksum_from_value(&d[1], "dirtree subtree")?,
                checksum_from_value(&d[2], "dirtree submeta")?,
            ));
        }
        Ok(t)
    }
}

/// A commit: what `write_commit` takes and `read_commit` returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Commit {
    pub parent: Option<String>,
    pub subject: String,
    pub body: String,
    /// Seconds since the epoch (UTC).
    pub timestamp: u64,
    pub metadata: BTreeMap<String, Value>,
    /// (root dirtree checksum, root dirmeta checksum)
    pub root: (String, String),
}

/// What `Repo::write_commit` takes: the same fields as a read commit.
pub type CommitSpec = Commit;

impl Commit {
    pub fn to_value(&self) -> Result<Value> {
        let parent = match &self.parent {
            Some(p) => checksum_bytes(p).context("commit parent")?.to_vec(),
            None => Vec::new(),
        };
        Ok(Value::Tuple(vec![
            Value::dict(&self.metadata),
            Value::Bytes(parent),
            Value::Array(Type::parse("(say)")?, Vec::new()),
            Value::str(self.subject.clone()),
            Value::str(self.body.clone()),
            Value::U64(self.timestamp.to_be()),
            Value::Bytes(
                checksum_bytes(&self.root.0)
                    .context("commit root tree")?
                    .to_vec(),
            ),
            Value::Bytes(
                checksum_bytes(&self.root.1)
                    .context("commit root meta")?
                    .to_vec(),
            ),
        ]))
    }

    pub fn parse(data: &[u8]) -> Result<Commit> {
        let v = Value::parse(&Type::parse(COMMIT)?, data)?;
        let m = v.as_tuple().context("commit is not a tuple")?;
        let metadata = m[0].as_dict().context("commit metadata is not a{sv}")?;
        let parent = match m[1].as_bytes() {
            Some([]) => None,
            Some(_) => Some(checksum_from_value(&m[1], "commit parent")?),
            None => bail!("commit parent is not a byte array"),
        };
        let Value::U64(ts) = m[5] else {
            bail!("commit timestamp is not a u64");
        };
        Ok(Commit {
            parent,
            subject: m[3].as_str().context("commit subject")?.to_string(),
            body: m[4].as_str().context("commit body")?.to_string(),
            timestamp: u64::from_be(ts),
            metadata,
            root: (
                checksum_from_value(&m[6], "commit root tree")?,
                checksum_from_value(&m[7], "commit root meta")?,
            ),
        })
    }
}

/// Parse an `a{sv}` (commit metadata, detached metadata).
pub fn parse_metadata(data: &[u8]) -> Result<BTreeMap<String, Value>> {
    Value::parse(&Type::parse(METADATA)?, data)?
        .as_dict()
        .context("metadata is not a{sv}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_prefix_is_big_endian_and_padded() {
        assert_eq!(size_prefixed(b"abc"), b"\0\0\0\x03\0\0\0\0abc");
    }

    #[test]
    fn commit_round_trips() {
        let mut md = BTreeMap::new();
        md.insert("version".into(), Value::str("1"));
        let c = Commit {
            parent: Some("ab".repeat(32)),
            subject: "s".into(),
            body: String::new(),
            timestamp: 1_700_000_000,
            metadata: md,
            root: ("01".repeat(32), "02".repeat(32)),
        };
        let b = c.to_value().unwrap().to_bytes();
        assert_eq!(Commit::parse(&b).unwrap(), c);
    }

    #[test]
    fn filez_round_trips() {
        let meta = FileMeta {
            uid: 1,
            gid: 2,
            mode: 0o100644,
            symlink: String::new(),
            xattrs: vec![(b"user.a".to_vec(), b"v".to_vec())],
        };
        let mut data = size_prefixed(&meta.zlib_header(5).to_bytes());
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(ZLIB_LEVEL));
        std::io::Write::write_all(&mut enc, b"hello").unwrap();
        data.extend(enc.finish().unwrap());
        let (m, c) = parse_filez(&data).unwrap();
        assert_eq!((m, c.as_slice()), (meta, &b"hello"[..]));
        assert!(checksum_bytes("zz").is_err());
    }
}
