//! The rpm database writer: rpm's sqlite backend (`rpmdb.sqlite`), written
//! from the package files without rpm, so that `rpm -qa`, `rpm -V` and
//! `rpm -q --whatprovides` work on a composed tree of any architecture.
//!
//! The format follows rpm's `lib/backend/sqlite.c` and `lib/rpmdb.c`
//! (<https://github.com/rpm-software-management/rpm>):
//!
//! - table `Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)`
//!   holds each package's header, numbered 1, 2, ... in install order;
//! - one index table per tag rpm indexes (`Name`, `Basenames`, `Group`,
//!   `Requirename`, ... [`INDEXES`]): `(key, hnum, idx)`, `key` TEXT for
//!   string tags and BLOB otherwise, `idx` the position in the tag's array;
//!   an sqlite index on `key` for string tags and on `hnum` for array tags.
//!
//! What goes in as rpm's `tag2index` does: install-only requirements
//! (`Requires(pre)`, `Requires(post)`, `rpmlib()` ...) are not indexed;
//! trigger names once per package; a rich dependency's whole text and each
//! package name inside it (`!name` for those in an `if`/`unless` condition);
//! a package without a group gets `Unknown`.
//!
//! A header blob is the package's main header exactly as in the file (the
//! immutable region, so `rpm -V` and rpm's header digest checks see what was
//! signed), followed by the tags rpm adds, as `headerExport` lays them out
//! after the region, sorted by tag: the signature header's digests and sizes
//! (rpm's `headerMergeLegacySigs`: `SIGMD5`, `SHA1HEADER`, `SHA256HEADER`,
//! `SIGSIZE`, ...), `SOURCERPM "(none)"` when a binary package lacks it, and
//! the install-time tags of rpm's `dbAdd` (`FILESTATES`, `INSTALLTID`,
//! `INSTALLTIME`, `INSTALLCOLOR`).
//!
//! Deterministic: the same packages and timestamp give the same bytes.
//! `INSTALLTID` is the timestamp, `INSTALLTIME` the timestamp plus the
//! package's position in the install order (rpm-ostree's `rpmdb-normalize`
//! does the same), and the sqlite library is the one built into cosa. The
//! file is left in rollback-journal mode, so no `-wal`/`-shm` files are needed
//! to read it from a read-only `/usr`.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use rayon::prelude::*;

use super::PackageMeta;

/// The database file rpm's sqlite backend opens in its `%_dbpath`.
pub const DB_FILE: &str = "rpmdb.sqlite";

/// rpm tag numbers used here (`include/rpm/rpmtag.h`).
pub mod tag {
    pub const HEADERIMMUTABLE: u32 = 63;
    pub const SIGSIZE: u32 = 257;
    pub const SIGPGP: u32 = 259;
    pub const SIGMD5: u32 = 261;
    pub const SIGGPG: u32 = 262;
    pub const DSAHEADER: u32 = 267;
    pub const RSAHEADER: u32 = 268;
    pub const SHA1HEADER: u32 = 269;
    pub const LONGSIGSIZE: u32 = 270;
    pub const LONGARCHIVESIZE: u32 = 271;
    pub const SHA256HEADER: u32 = 273;
    pub const VERITYSIGNATURES: u32 = 276;
    pub const VERITYSIGNATUREALGO: u32 = 277;
    pub const OPENPGP: u32 = 278;
    pub const SHA3_256HEADER: u32 = 279;
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const INSTALLTIME: u32 = 1008;
    pub const GROUP: u32 = 1016;
    pub const ARCH: u32 = 1022;
    pub const OLDFILENAMES: u32 = 1027;
    pub const FILESTATES: u32 = 1029;
    pub const FILEFLAGS: u32 = 1037;
    pub const FILELANGS: u32 = 1097;
    pub const SOURCERPM: u32 = 1044;
    pub const ARCHIVESIZE: u32 = 1046;
    pub const PROVIDENAME: u32 = 1047;
    pub const REQUIREFLAGS: u32 = 1048;
    pub const REQUIRENAME: u32 = 1049;
    pub const CONFLICTNAME: u32 = 1054;
    pub const TRIGGERNAME: u32 = 1066;
    pub const OBSOLETENAME: u32 = 1090;
    pub const SOURCEPACKAGE: u32 = 1106;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
    pub const INSTALLCOLOR: u32 = 1127;
    pub const INSTALLTID: u32 = 1128;
    pub const RECOMMENDNAME: u32 = 5046;
    pub const SUGGESTNAME: u32 = 5049;
    pub const SUPPLEMENTNAME: u32 = 5052;
    pub const ENHANCENAME: u32 = 5055;
    pub const FILETRIGGERNAME: u32 = 5069;
    pub const FILETRIGGERINDEX: u32 = 5070;
    pub const TRANSFILETRIGGERNAME: u32 = 5079;
    pub const TRANSFILETRIGGERINDEX: u32 = 5080;
    pub const FILESIGNATURES: u32 = 5090;
    pub const FILESIGNATURELENGTH: u32 = 5091;
    pub const RPMFORMAT: u32 = 5114;
}

/// Header data types (rpm's `rpmTagType`).
mod ty {
    pub const CHAR: u32 = 1;
    pub const INT8: u32 = 2;
    pub const INT16: u32 = 3;
    pub const INT32: u32 = 4;
    pub const INT64: u32 = 5;
    pub const STRING: u32 = 6;
    pub const BIN: u32 = 7;
    pub const STRING_ARRAY: u32 = 8;
    pub const I18NSTRING: u32 = 9;
}

/// Signature header tags and the main-header tags rpm merges them into:
/// (signature tag, header tag, type, required count or 0, may also be in
/// the main header of a v4 package). rpm's `xlateTags` in `lib/package.c`.
const SIG_TAGS: &[(u32, u32, u32, u32, bool)] = &[
    (1000, tag::SIGSIZE, ty::INT32, 1, false),
    (1002, tag::SIGPGP, ty::BIN, 0, false),
    (1004, tag::SIGMD5, ty::BIN, 16, false),
    (1005, tag::SIGGPG, ty::BIN, 0, false),
    (1007, tag::ARCHIVESIZE, ty::INT32, 1, true),
    (274, tag::FILESIGNATURES, ty::STRING_ARRAY, 0, true),
    (275, tag::FILESIGNATURELENGTH, ty::INT32, 1, true),
    (
        tag::VERITYSIGNATURES,
        tag::VERITYSIGNATURES,
        ty::STRING_ARRAY,
        0,
        false,
    ),
    (
        tag::VERITYSIGNATUREALGO,
        tag::VERITYSIGNATUREALGO,
        ty::INT32,
        1,
        false,
    ),
    (tag::SHA1HEADER, tag::SHA1HEADER, ty::STRING, 1, false),
    (tag::SHA256HEADER, tag::SHA256HEADER, ty::STRING, 1, false),
    (
        tag::SHA3_256HEADER,
        tag::SHA3_256HEADER,
        ty::STRING,
        1,
        false,
    ),
    (tag::DSAHEADER, tag::DSAHEADER, ty::BIN, 0, false),
    (tag::RSAHEADER, tag::RSAHEADER, ty::BIN, 0, false),
    (tag::LONGSIGSIZE, tag::LONGSIGSIZE, ty::INT64, 1, false),
    (
        tag::LONGARCHIVESIZE,
        tag::LONGARCHIVESIZE,
        ty::INT64,
        1,
        false,
    ),
    (tag::OPENPGP, tag::OPENPGP, ty::STRING_ARRAY, 0, false),
];

/// One index table: its name (rpm's tag name), the tag it indexes, whether
/// the key is text, and whether the tag is an array (then `hnum` is indexed).
pub struct IndexTable {
    pub name: &'static str,
    pub tag: u32,
    pub text: bool,
    pub array: bool,
}

/// rpm's `dbiTags`, in its order.
pub const INDEXES: &[IndexTable] = &[
    idx("Name", tag::NAME, true, false),
    idx("Basenames", tag::BASENAMES, true, true),
    idx("Group", tag::GROUP, true, false),
    idx("Requirename", tag::REQUIRENAME, true, true),
    idx("Providename", tag::PROVIDENAME, true, true),
    idx("Conflictname", tag::CONFLICTNAME, true, true),
    idx("Obsoletename", tag::OBSOLETENAME, true, true),
    idx("Triggername", tag::TRIGGERNAME, true, true),
    idx("Dirnames", tag::DIRNAMES, true, true),
    idx("Installtid", tag::INSTALLTID, false, false),
    idx("Sigmd5", tag::SIGMD5, false, false),
    idx("Sha1header", tag::SHA1HEADER, true, false),
    idx("Filetriggername", tag::FILETRIGGERNAME, true, true),
    idx(
        "Transfiletriggername",
        tag::TRANSFILETRIGGERNAME,
        true,
        true,
    ),
    idx("Recommendname", tag::RECOMMENDNAME, true, true),
    idx("Suggestname", tag::SUGGESTNAME, true, true),
    idx("Supplementname", tag::SUPPLEMENTNAME, true, true),
    idx("Enhancename", tag::ENHANCENAME, true, true),
];

const fn idx(name: &'static str, tag: u32, text: bool, array: bool) -> IndexTable {
    IndexTable {
        name,
        tag,
        text,
        array,
    }
}

/// `RPMFILE_DOC`
const FILE_DOC: u32 = 1 << 1;
/// `RPMFILE_STATE_NORMAL` and `RPMFILE_STATE_NOTINSTALLED`.
const STATE_NORMAL: u8 = 0;
const STATE_NOTINSTALLED: u8 = 2;
/// The `RPMSENSE_*` bits of an install-only requirement, and those that make
/// it needed at erase time or a meta dependency (rpm's `isTransientReq`).
const SENSE_INSTALL_ONLY: u32 = (1 << 9) | (1 << 10) | (1 << 24) | (1 << 26) | (1 << 7) | (1 << 5);
const SENSE_ERASE_ONLY: u32 = (1 << 11) | (1 << 12) | (1 << 20) | (1 << 21);
const SENSE_META: u32 = 1 << 29;

/// The header magic before each header in a package file.
const HEADER_MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
/// rpm's limits on a header: index entries and data bytes.
const MAX_ENTRIES: u32 = 0xffff;
const MAX_DATA: u32 = 0x0fff_ffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    tag: u32,
    ty: u32,
    offset: u32,
    count: u32,
}

/// A header as rpm stores it (without the magic): index entries and data.
#[derive(Debug, Clone)]
pub struct Header {
    entries: Vec<Entry>,
    data: Vec<u8>,
}

impl Header {
    /// Parse `il`, `dl`, the index and the data from the start of `b`;
    /// returns the header and the bytes it took.
    pub fn parse(b: &[u8]) -> Result<(Header, usize)> {
        ensure!(b.len() >= 8, "truncated header ({} bytes)", b.len());
        let il = be32(&b[0..4]);
        let dl = be32(&b[4..8]);
        ensure!(
            il > 0 && il <= MAX_ENTRIES && dl <= MAX_DATA,
            "bad header size: {il} entries, {dl} bytes of data"
        );
        let index_end = 8 + il as usize * 16;
        let end = index_end + dl as usize;
        ensure!(
            b.len() >= end,
            "truncated header: {} bytes of {end}",
            b.len()
        );
        let entries: Vec<Entry> = b[8..index_end]
            .chunks_exact(16)
            .map(|c| Entry {
                tag: be32(&c[0..4]),
                ty: be32(&c[4..8]),
                offset: be32(&c[8..12]),
                count: be32(&c[12..16]),
            })
            .collect();
        let h = Header {
            entries,
            data: b[index_end..end].to_vec(),
        };
        for e in &h.entries {
            ensure!(
                (ty::CHAR..=ty::I18NSTRING).contains(&e.ty) || e.tag == tag::HEADERIMMUTABLE,
                "tag {} has unknown type {}",
                e.tag,
                e.ty
            );
            h.raw(e).with_context(|| {
                format!("tag {} (type {}) lies outside the header", e.tag, e.ty)
            })?;
        }
        Ok((h, end))
    }

    /// The header as rpm's `headerExport` writes it: `il`, `dl`, index, data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.entries.len() * 16 + self.data.len());
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(self.data.len() as u32).to_be_bytes());
        for e in &self.entries {
            for v in [e.tag, e.ty, e.offset, e.count] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        out.extend_from_slice(&self.data);
        out
    }

    fn entry(&self, tag: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }

    pub fn has(&self, tag: u32) -> bool {
        self.entry(tag).is_some()
    }

    /// The data bytes of an entry.
    fn raw(&self, e: &Entry) -> Result<&[u8]> {
        let start = e.offset as usize;
        let d = self.data.get(start..).context("offset past the data")?;
        let len = match e.ty {
            ty::CHAR | ty::INT8 | ty::BIN => e.count as usize,
            ty::INT16 => e.count as usize * 2,
            ty::INT32 => e.count as usize * 4,
            ty::INT64 => e.count as usize * 8,
            ty::STRING | ty::STRING_ARRAY | ty::I18NSTRING => {
                let mut n = 0;
                for _ in 0..e.count.max(1) {
                    let z = d[n..]
                        .iter()
                        .position(|&c| c == 0)
                        .context("unterminated string")?;
                    n += z + 1;
                }
                n
            }
            // The region tag: a 16-byte trailer.
            _ => 16,
        };
        d.get(..len).context("data runs past the end of the header")
    }

    /// The strings of a string, string array or i18n string tag.
    pub fn strings(&self, tag: u32) -> Result<Vec<String>> {
        let Some(e) = self.entry(tag) else {
            return Ok(Vec::new());
        };
        ensure!(
            matches!(e.ty, ty::STRING | ty::STRING_ARRAY | ty::I18NSTRING),
            "tag {tag} is not a string (type {})",
            e.ty
        );
        let raw = self.raw(e)?;
        let mut v: Vec<String> = raw
            .split(|&c| c == 0)
            .take(e.count.max(1) as usize)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        if e.ty == ty::STRING {
            v.truncate(1);
        }
        Ok(v)
    }

    /// The first string of a tag (an i18n string's C locale).
    pub fn string(&self, tag: u32) -> Result<Option<String>> {
        Ok(self.strings(tag)?.into_iter().next())
    }

    /// The values of an integer tag (INT8 to INT32).
    pub fn u32s(&self, tag: u32) -> Result<Vec<u32>> {
        let Some(e) = self.entry(tag) else {
            return Ok(Vec::new());
        };
        let raw = self.raw(e)?;
        Ok(match e.ty {
            ty::CHAR | ty::INT8 => raw.iter().map(|&b| b as u32).collect(),
            ty::INT16 => raw
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
                .collect(),
            ty::INT32 => raw.chunks_exact(4).map(be32).collect(),
            t => bail!("tag {tag} is not an integer (type {t})"),
        })
    }

    /// The raw bytes of a binary tag.
    pub fn bin(&self, tag: u32) -> Result<Option<Vec<u8>>> {
        match self.entry(tag) {
            None => Ok(None),
            Some(e) => Ok(Some(self.raw(e)?.to_vec())),
        }
    }

    /// The file paths (`DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]`).
    pub fn file_paths(&self) -> Result<Vec<String>> {
        let base = self.strings(tag::BASENAMES)?;
        let dirs = self.strings(tag::DIRNAMES)?;
        let di = self.u32s(tag::DIRINDEXES)?;
        ensure!(
            di.len() == base.len(),
            "{} base names but {} dir indexes",
            base.len(),
            di.len()
        );
        base.iter()
            .zip(&di)
            .map(|(b, &d)| {
                let dir = dirs
                    .get(d as usize)
                    .with_context(|| format!("dir index {d} out of range for {b}"))?;
                Ok(format!("{dir}{b}"))
            })
            .collect()
    }

    /// (name, epoch, version, release, arch)
    pub fn nevra(&self) -> Result<Nevra> {
        let s = |t: u32| -> Result<String> {
            self.string(t)?
                .with_context(|| format!("the header has no tag {t}"))
        };
        Ok(Nevra {
            name: s(tag::NAME)?,
            epoch: self.u32s(tag::EPOCH)?.first().copied().unwrap_or(0),
            version: s(tag::VERSION)?,
            release: s(tag::RELEASE)?,
            arch: self.string(tag::ARCH)?.unwrap_or_default(),
        })
    }
}

/// A package's identity as read from a header.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nevra {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
}

impl std::fmt::Display for Nevra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-", self.name)?;
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        write!(f, "{}-{}.{}", self.version, self.release, self.arch)
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The signature header and the main header of a package file.
pub struct PackageHeaders {
    pub signature: Header,
    pub main: Header,
}

/// Read the lead, the signature header (padded to 8 bytes) and the main
/// header of an .rpm file.
pub fn read_package_headers(path: &Path) -> Result<PackageHeaders> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut r = std::io::BufReader::new(f);
    let what = || format!("reading the headers of {}", path.display());
    let mut lead = [0u8; 96];
    read_full(&mut r, &mut lead, "the lead").with_context(what)?;
    if lead[..4] != [0xed, 0xab, 0xee, 0xdb] {
        bail!("{} is not an RPM package (bad lead magic)", path.display());
    }
    let (signature, sig_len) = read_header(&mut r, "the signature header").with_context(what)?;
    let pad = (8 - sig_len % 8) % 8;
    let mut skip = vec![0u8; pad];
    read_full(&mut r, &mut skip, "the signature header padding").with_context(what)?;
    let (main, _) = read_header(&mut r, "the main header").with_context(what)?;
    Ok(PackageHeaders { signature, main })
}

fn read_full(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => bail!(
                "the file is truncated in {what} ({n} of {} bytes)",
                buf.len()
            ),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading {what}")),
        }
    }
    Ok(())
}

/// Read a header with its magic; returns it and its length without the magic.
fn read_header(r: &mut impl Read, what: &str) -> Result<(Header, usize)> {
    let mut intro = [0u8; 16];
    read_full(r, &mut intro, what)?;
    if intro[..8] != HEADER_MAGIC {
        bail!("{what} has a bad magic");
    }
    let il = be32(&intro[8..12]);
    let dl = be32(&intro[12..16]);
    if il == 0 || il > MAX_ENTRIES || dl > MAX_DATA {
        bail!("{what} has a bad size: {il} entries, {dl} bytes of data");
    }
    let mut buf = vec![0u8; 8 + il as usize * 16 + dl as usize];
    buf[..8].copy_from_slice(&intro[8..]);
    read_full(r, &mut buf[8..], what)?;
    let (h, len) = Header::parse(&buf).with_context(|| format!("parsing {what}"))?;
    Ok((h, len))
}

/// A tag added to a header outside its region.
struct NewTag {
    tag: u32,
    ty: u32,
    count: u32,
    data: Vec<u8>,
}

impl NewTag {
    fn u32(tag: u32, v: u32) -> NewTag {
        NewTag {
            tag,
            ty: ty::INT32,
            count: 1,
            data: v.to_be_bytes().to_vec(),
        }
    }
}

fn align_of(t: u32) -> usize {
    match t {
        ty::INT16 => 2,
        ty::INT32 => 4,
        ty::INT64 => 8,
        _ => 1,
    }
}

/// The main header with `extra` appended after its data, sorted by tag, each
/// aligned for its type (rpm's `headerExport` of a header read from a file).
fn append_tags(main: &Header, mut extra: Vec<NewTag>) -> Header {
    extra.sort_by_key(|t| t.tag);
    let mut h = main.clone();
    for t in extra {
        let a = align_of(t.ty);
        while !h.data.len().is_multiple_of(a) {
            h.data.push(0);
        }
        h.entries.push(Entry {
            tag: t.tag,
            ty: t.ty,
            offset: h.data.len() as u32,
            count: t.count,
        });
        h.data.extend_from_slice(&t.data);
    }
    h
}

/// The signature tags rpm copies into the main header on install.
fn merged_sig_tags(h: &PackageHeaders) -> Result<Vec<NewTag>> {
    let rpmformat = h.main.u32s(tag::RPMFORMAT)?.first().copied().unwrap_or(4);
    let mut out = Vec::new();
    for &(stag, xtag, want_ty, want_count, quirk) in SIG_TAGS {
        let in_sig = h.signature.entry(stag);
        if h.main.has(xtag) {
            if rpmformat < 6 && quirk && in_sig.is_none() {
                continue;
            }
            bail!("tag {xtag} is in both the main header and the signature header");
        }
        let Some(e) = in_sig else { continue };
        if e.ty != want_ty || e.count == 0 || (want_count != 0 && e.count != want_count) {
            bail!(
                "invalid signature tag {stag} (type {}, count {})",
                e.ty,
                e.count
            );
        }
        out.push(NewTag {
            tag: xtag,
            ty: e.ty,
            count: e.count,
            data: h.signature.raw(e)?.to_vec(),
        });
    }
    Ok(out)
}

/// What the compose left out of the tree, for `FILESTATES`.
#[derive(Debug, Clone, Default)]
pub struct FileSkips {
    /// %doc files were installed (treefile `documentation`).
    pub documentation: bool,
    /// (package name, regexes of paths) removed by `remove-from-packages`.
    pub remove_from_packages: Vec<(String, Vec<regex::Regex>)>,
    /// treefile `install-langs`: files of other languages were not installed.
    pub install_langs: Option<Vec<String>>,
}

/// How to write the database.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Seconds since the epoch: `INSTALLTID`, and `INSTALLTIME` of the first package.
    pub timestamp: u32,
    /// The target architecture: the transaction color and the byte order of
    /// the `Installtid` index keys.
    pub arch: String,
    pub skips: FileSkips,
}

/// rpm's transaction color for an arch (`installplatform`): 3 on 64-bit
/// multilib arches, 0 elsewhere.
fn transaction_color(arch: &str) -> u32 {
    match arch {
        "x86_64" | "amd64" | "ia32e" | "aarch64" | "s390x" | "ppc64" | "ppc64le" | "ppc64p7"
        | "riscv64" | "loongarch64" | "mips64" | "mips64el" | "sparc64" | "sparc64v" => 3,
        "ia64" => 2,
        _ => 0,
    }
}

fn big_endian(arch: &str) -> bool {
    matches!(
        arch,
        "s390x" | "s390" | "ppc64" | "ppc" | "sparc64" | "sparc" | "mips" | "mips64"
    )
}

/// One package's database record.
struct Record {
    blob: Vec<u8>,
    /// (index table number in [`INDEXES`], key, idx)
    rows: Vec<(usize, Key, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Text(String),
    Blob(Vec<u8>),
}

/// The header rpm would store for the package at install position `pos`.
fn db_header(h: &PackageHeaders, name: &str, pos: u32, opts: &WriteOptions) -> Result<Header> {
    if !h.main.has(tag::HEADERIMMUTABLE) {
        bail!(
            "the package has no immutable header region (a v3 package); cosa does not install those"
        );
    }
    if h.main.has(tag::OLDFILENAMES) {
        bail!(
            "the package lists its files in OLDFILENAMES (built with --nodirtokens); cosa does not install those"
        );
    }
    let mut extra = merged_sig_tags(h)?;
    if !h.main.has(tag::SOURCERPM) && !h.main.has(tag::SOURCEPACKAGE) {
        extra.push(NewTag {
            tag: tag::SOURCERPM,
            ty: ty::STRING,
            count: 1,
            data: b"(none)\0".to_vec(),
        });
    }
    let paths = h.main.file_paths()?;
    if !paths.is_empty() {
        let flags = h.main.u32s(tag::FILEFLAGS)?;
        let langs = match &opts.skips.install_langs {
            Some(_) => h.main.strings(tag::FILELANGS)?,
            None => Vec::new(),
        };
        let removes: Vec<&regex::Regex> = opts
            .skips
            .remove_from_packages
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, r)| r.iter())
            .collect();
        let states: Vec<u8> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let doc = flags.get(i).is_some_and(|f| f & FILE_DOC != 0);
                let removed = removes.iter().any(|r| r.is_match(p));
                let other_lang = match (&opts.skips.install_langs, langs.get(i)) {
                    (Some(want), Some(l)) => !super::lang_wanted(l, want),
                    _ => false,
                };
                if (doc && !opts.skips.documentation) || removed || other_lang {
                    STATE_NOTINSTALLED
                } else {
                    STATE_NORMAL
                }
            })
            .collect();
        extra.push(NewTag {
            tag: tag::FILESTATES,
            ty: ty::CHAR,
            count: states.len() as u32,
            data: states,
        });
    }
    extra.push(NewTag::u32(tag::INSTALLTID, opts.timestamp));
    extra.push(NewTag::u32(
        tag::INSTALLTIME,
        opts.timestamp.wrapping_add(pos),
    ));
    extra.push(NewTag::u32(
        tag::INSTALLCOLOR,
        transaction_color(&opts.arch),
    ));
    extra.retain(|t| !h.main.has(t.tag));
    Ok(append_tags(&h.main, extra))
}

/// Is a requirement needed only while installing (not indexed)?
fn transient(flags: u32) -> bool {
    flags & SENSE_INSTALL_ONLY != 0 && flags & SENSE_ERASE_ONLY == 0 && flags & SENSE_META == 0
}

/// The package names inside a rich dependency, as rpm's `updateRichDep`
/// indexes them: sorted, unique, `!name` for names in a condition.
fn rich_names(dep: &str) -> Result<Vec<String>> {
    use super::solver::richdep::{Rich, parse};
    fn walk(r: &Rich, neg: bool, out: &mut Vec<String>) {
        let mark = |neg: bool| if neg { '!' } else { ' ' };
        match r {
            Rich::Simple(d) => {
                let n = &d.name;
                if !(n.is_empty() || n.len() > 7 && n.starts_with("rpmlib(")) {
                    out.push(format!("{}{n}", mark(neg)));
                }
            }
            Rich::And(v) | Rich::Or(v) => v.iter().for_each(|x| walk(x, neg, out)),
            Rich::With(a, b) | Rich::Without(a, b) => {
                walk(a, neg, out);
                walk(b, neg, out);
            }
            Rich::If(a, c, e) | Rich::Unless(a, c, e) => {
                walk(a, neg, out);
                let start = out.len();
                walk(c, !neg, out);
                if let Some(e) = e {
                    // rpm's else branch repeats the condition, inverted.
                    let cond: Vec<String> = out[start..]
                        .iter()
                        .map(|s| {
                            let (m, n) = s.split_at(1);
                            format!("{}{n}", if m == "!" { ' ' } else { '!' })
                        })
                        .collect();
                    out.extend(cond);
                    walk(e, neg, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&parse(dep)?, false, &mut out);
    out.sort();
    out.dedup();
    Ok(out
        .into_iter()
        .map(|s| s.strip_prefix(' ').map(str::to_string).unwrap_or(s))
        .collect())
}

/// The index rows of one stored header (rpm's `tag2index`).
fn index_rows(h: &Header, big_endian: bool) -> Result<Vec<(usize, Key, u32)>> {
    let mut rows = Vec::new();
    for (t, table) in INDEXES.iter().enumerate() {
        let ctx = || format!("indexing tag {} ({})", table.tag, table.name);
        match table.tag {
            tag::INSTALLTID => {
                for v in h.u32s(table.tag).with_context(ctx)? {
                    let key = if big_endian {
                        v.to_be_bytes()
                    } else {
                        v.to_le_bytes()
                    };
                    rows.push((t, Key::Blob(key.to_vec()), 0));
                }
            }
            tag::SIGMD5 => {
                if let Some(b) = h
                    .bin(table.tag)
                    .with_context(ctx)?
                    .filter(|b| !b.is_empty())
                {
                    rows.push((t, Key::Blob(b), 0));
                }
            }
            _ => {
                let mut names = h.strings(table.tag).with_context(ctx)?;
                if names.is_empty() && table.tag == tag::GROUP {
                    names.push("Unknown".into());
                }
                let req_flags = if table.tag == tag::REQUIRENAME {
                    h.u32s(tag::REQUIREFLAGS).with_context(ctx)?
                } else {
                    Vec::new()
                };
                let trig_index = match table.tag {
                    tag::FILETRIGGERNAME => h.u32s(tag::FILETRIGGERINDEX).with_context(ctx)?,
                    tag::TRANSFILETRIGGERNAME => {
                        h.u32s(tag::TRANSFILETRIGGERINDEX).with_context(ctx)?
                    }
                    _ => Vec::new(),
                };
                let mut seen_triggers = BTreeSet::new();
                for (i, n) in names.iter().enumerate() {
                    if req_flags.get(i).is_some_and(|&f| transient(f)) {
                        continue;
                    }
                    if table.tag == tag::TRIGGERNAME && !seen_triggers.insert(n.as_str()) {
                        continue;
                    }
                    let idx = match table.tag {
                        tag::FILETRIGGERNAME | tag::TRANSFILETRIGGERNAME => {
                            trig_index.get(i).copied().unwrap_or(0)
                        }
                        _ => i as u32,
                    };
                    rows.push((t, Key::Text(n.clone()), idx));
                    let rich_tag = matches!(
                        table.tag,
                        tag::REQUIRENAME
                            | tag::CONFLICTNAME
                            | tag::SUGGESTNAME
                            | tag::SUPPLEMENTNAME
                            | tag::RECOMMENDNAME
                            | tag::ENHANCENAME
                    );
                    if rich_tag && n.starts_with('(') {
                        for r in rich_names(n).with_context(|| format!("parsing {n}"))? {
                            rows.push((t, Key::Text(r), idx));
                        }
                    }
                }
            }
        }
    }
    Ok(rows)
}

fn record(pkg: &PackageMeta, path: &Path, pos: u32, opts: &WriteOptions) -> Result<Record> {
    let ctx = || format!("package {} ({})", pkg.nevra(), path.display());
    let headers = read_package_headers(path).with_context(ctx)?;
    let h = db_header(&headers, &pkg.name, pos, opts).with_context(ctx)?;
    let rows = index_rows(&h, big_endian(&opts.arch)).with_context(ctx)?;
    Ok(Record {
        blob: h.to_bytes(),
        rows,
    })
}

/// What was written.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteReport {
    pub packages: usize,
    pub index_rows: usize,
    pub bytes: u64,
}

/// Write `dest` (an `rpmdb.sqlite`) holding `pkgs`, in install order,
/// replacing any file there. Written to a temporary file next to it and
/// renamed: an interrupted run leaves the old file or none.
pub fn write(
    dest: &Path,
    pkgs: &[(PackageMeta, PathBuf)],
    opts: &WriteOptions,
) -> Result<WriteReport> {
    let records: Vec<Record> = pkgs
        .par_iter()
        .enumerate()
        .map(|(i, (m, p))| record(m, p, i as u32, opts))
        .collect::<Result<_>>()?;
    let dir = dest.parent().context("the database path has no parent")?;
    let tmp = tempfile::Builder::new()
        .prefix(".rpmdb-")
        .suffix(".sqlite.tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let index_rows = fill(tmp.path(), &records)
        .with_context(|| format!("writing the rpm database {}", tmp.path().display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", tmp.path().display()))?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .with_context(|| format!("setting the mode of {}", tmp.path().display()))?;
    tmp.persist(dest)
        .with_context(|| format!("renaming into {}", dest.display()))?;
    let bytes = std::fs::metadata(dest)
        .with_context(|| format!("reading {}", dest.display()))?
        .len();
    Ok(WriteReport {
        packages: records.len(),
        index_rows,
        bytes,
    })
}

/// Create rpm's schema in the empty file `path` and insert the records.
fn fill(path: &Path, records: &[Record]) -> Result<usize> {
    let mut db = rusqlite::Connection::open(path)?;
    // A fresh temporary file: no journal is needed, and the database file
    // keeps the rollback-journal format (rpm switches to WAL only when it
    // opens the database read-write).
    db.pragma_update(None, "journal_mode", "OFF")?;
    db.pragma_update(None, "synchronous", "OFF")?;
    let tx = db.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS 'Packages' (\
         hnum INTEGER PRIMARY KEY AUTOINCREMENT,\
         blob BLOB NOT NULL)",
    )?;
    for t in INDEXES {
        let keytype = if t.text { "TEXT" } else { "BLOB" };
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS '{n}' (\
             key '{keytype}' NOT NULL, \
             hnum INTEGER NOT NULL, \
             idx INTEGER NOT NULL, \
             FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum))",
            n = t.name
        ))?;
        if t.text {
            tx.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS '{n}_key_idx' ON '{n}'(key ASC)",
                n = t.name
            ))?;
        }
        if t.array {
            tx.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS '{n}_hnum_idx' ON '{n}'(hnum ASC)",
                n = t.name
            ))?;
        }
    }
    let mut rows = 0;
    {
        let mut put_pkg = tx.prepare("INSERT INTO 'Packages' VALUES(?, ?)")?;
        let mut put_idx: Vec<rusqlite::Statement> = INDEXES
            .iter()
            .map(|t| tx.prepare(&format!("INSERT INTO '{}' VALUES(?, ?, ?)", t.name)))
            .collect::<rusqlite::Result<_>>()?;
        for (i, r) in records.iter().enumerate() {
            let hnum = i as i64 + 1;
            put_pkg.execute(rusqlite::params![hnum, r.blob])?;
            for (t, key, idx) in &r.rows {
                match key {
                    Key::Text(s) => put_idx[*t].execute(rusqlite::params![s, hnum, idx])?,
                    Key::Blob(b) => put_idx[*t].execute(rusqlite::params![b, hnum, idx])?,
                };
                rows += 1;
            }
        }
    }
    tx.commit()?;
    db.close().map_err(|(_, e)| e)?;
    Ok(rows)
}

/// The packages in an `rpmdb.sqlite` (rpm's or ours), in `hnum` order;
/// `gpg-pubkey` entries (imported keys) are left out.
pub fn read_packages(db: &Path) -> Result<Vec<Nevra>> {
    let ctx = || format!("reading the rpm database {}", db.display());
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(ctx)?;
    let mut st = conn
        .prepare("SELECT hnum, blob FROM 'Packages' ORDER BY hnum")
        .with_context(ctx)?;
    let mut rows = st.query([]).with_context(ctx)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().with_context(ctx)? {
        let hnum: i64 = row.get(0).with_context(ctx)?;
        let blob: Vec<u8> = row.get(1).with_context(ctx)?;
        let n = Header::parse(&blob)
            .and_then(|(h, _)| h.nevra())
            .with_context(|| format!("header {hnum} in {}", db.display()))?;
        if n.name != "gpg-pubkey" {
            out.push(n);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rich_dependency_names() {
        assert_eq!(rich_names("(a or b)").unwrap(), ["a", "b"]);
        // Sorted as rpm sorts them, before the ' ' of plain names is dropped.
        assert_eq!(rich_names("(a if b)").unwrap(), ["a", "!b"]);
        assert_eq!(
            rich_names("(a if b else c)").unwrap(),
            ["a", "b", "c", "!b"]
        );
        assert_eq!(rich_names("(a >= 1 and (rpmlib(X) or a))").unwrap(), ["a"]);
    }

    #[test]
    fn transient_requirements() {
        assert!(transient(1 << 9)); // Requires(pre)
        assert!(!transient((1 << 9) | (1 << 11))); // Requires(pre,preun)
        assert!(!transient(0));
        assert!(transient(1 << 24)); // rpmlib()
    }

    #[test]
    fn appended_tags_are_aligned_and_sorted() {
        let mut b = Vec::new();
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&3u32.to_be_bytes());
        for v in [tag::NAME, ty::STRING, 0, 1] {
            b.extend_from_slice(&u32::to_be_bytes(v));
        }
        b.extend_from_slice(b"ab\0");
        let (h, len) = Header::parse(&b).unwrap();
        assert_eq!(len, b.len());
        let h2 = append_tags(
            &h,
            vec![
                NewTag::u32(tag::INSTALLTIME, 7),
                NewTag {
                    tag: tag::FILESTATES,
                    ty: ty::CHAR,
                    count: 1,
                    data: vec![0],
                },
            ],
        );
        let (back, _) = Header::parse(&h2.to_bytes()).unwrap();
        assert_eq!(back.entries[1].tag, tag::INSTALLTIME);
        assert_eq!(back.entries[1].offset, 4);
        assert_eq!(back.entries[2].tag, tag::FILESTATES);
        assert_eq!(back.u32s(tag::INSTALLTIME).unwrap(), [7]);
        assert_eq!(back.string(tag::NAME).unwrap().as_deref(), Some("ab"));
        assert!(Header::parse(&b[..b.len() - 1]).is_err());
    }
}
