//! Install packages into a root directory: parallel payload unpacking with
//! cpio semantics, path safety, file conflicts, owners resolved through the
//! tree's own passwd/group, file capabilities, then scriptlets.
//!
//! Steps (see [`install`]):
//! 1. read every header (in parallel) and plan: normalized paths, what each
//!    package writes, conflicts, symlinked parents;
//! 2. create every directory, checking that no parent is a symlink;
//! 3. unpack payloads in parallel; each path has exactly one writer, so
//!    packages never race on a file;
//! 4. run %pre then %post (bubblewrap), apply owners through the tree's
//!    etc/passwd and etc/group, then %posttrans.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use super::caps;
use super::scripts::{self, Kind, Outcome, Scriptlet};
use super::users::IdTables;
use crate::rpm::PackageMeta;
use crate::util::progress::Progress;

/// How to treat scriptlets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptPolicy {
    Run,
    /// Skip all scriptlets, recording why.
    Skip(String),
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Install %doc files.
    pub documentation: bool,
    /// (package name, regexes of paths not to install)
    pub remove_from_packages: Vec<(String, Vec<regex::Regex>)>,
    pub scripts: ScriptPolicy,
    /// The target arch; scriptlets are skipped (and recorded) when it is not the host's.
    pub basearch: String,
    /// `/usr/lib/passwd` and `/usr/lib/group` of the previous build: their
    /// entries are added to the tree's `/etc/passwd` and `/etc/group` before
    /// the scriptlets run, so that `useradd` in `%pre` finds existing users
    /// and uids and gids stay what they were (rpm-ostree's `preserve-passwd`).
    pub previous_ids: Option<(String, String)>,
    /// treefile `install-langs` (rpm's `%_install_langs`): files marked
    /// with other languages (`%lang`) are not installed; `None` installs all.
    pub install_langs: Option<Vec<String>>,
    /// treefile `sysusers`: systemd-sysusers before the scriptlets.
    pub sysusers: super::sysusers::Sysusers,
}

/// What happened, for the compose report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InstallReport {
    pub packages: usize,
    pub files: u64,
    pub bytes: u64,
    /// Whether systemd-sysusers ran (treefile `sysusers`).
    pub sysusers_ran: bool,
    /// "package %pre" entries that ran.
    pub scripts_run: Vec<String>,
    /// ("package %post", reason) entries that were skipped.
    pub scripts_skipped: Vec<(String, String)>,
    /// Files left owned by root because their user or group does not exist in
    /// the tree; only when scriptlets (which usually create them) were skipped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owners_unresolved: Vec<String>,
}

/// Size of the read buffer on a compressed payload, in bytes.
const READ_BUF: usize = 256 * 1024;
/// Size of the copy buffer for file contents, in bytes.
const COPY_BUF: usize = 1024 * 1024;

/// The type of an entry, with what decides whether two packages agree on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryKind {
    Dir,
    File {
        digest: String,
        size: u64,
    },
    Symlink(String),
    /// Devices, fifos, sockets: not created (rpm-ostree refuses them too).
    Other(u16),
}

#[derive(Debug, Clone)]
struct Entry {
    /// Normalized path relative to the root, e.g. `usr/bin/x`.
    path: String,
    kind: EntryKind,
    perms: u32,
    user: String,
    group: String,
    mtime: u32,
    caps: Option<String>,
    /// Not ghost, not %doc-skipped, not removed: the package ships it.
    wanted: bool,
    /// This package is the one that writes it.
    writes: bool,
    inode: u32,
}

/// One package after its header was read.
struct Planned {
    nevra: String,
    rpm: PathBuf,
    payload_offset: u64,
    compression: rpm::CompressionType,
    entries: Vec<Entry>,
    by_path: HashMap<String, usize>,
    /// Stripped-cpio only: payload size per header index (0 for hardlinks but the last).
    stripped_sizes: Vec<u64>,
    scripts: Vec<Scriptlet>,
}

/// Normalize a payload or header path: strip `./` and `/`, drop `.` and
/// empty components, refuse `..`. The root itself normalizes to "".
pub fn normalize(path: &str) -> Result<String> {
    let mut out = String::with_capacity(path.len());
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => bail!("path {path:?} has a '..' component"),
            c => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(c);
            }
        }
    }
    Ok(out)
}

/// The parents of a normalized path, nearest first: `a/b/c` -> `a/b`, `a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut p = path;
    std::iter::from_fn(move || {
        let i = p.rfind('/')?;
        p = &p[..i];
        Some(p)
    })
}

fn read_plan(meta: &PackageMeta, rpm_path: &Path, opts: &InstallOptions) -> Result<Planned> {
    let nevra = meta.nevra();
    // Our own reader first: it keeps rpm's limits on header sizes, which the
    // rpm library trusts for its allocations.
    crate::rpm::rpmdb::read_package_headers(rpm_path)?;
    let f = File::open(rpm_path).with_context(|| format!("opening {}", rpm_path.display()))?;
    let md = rpm::PackageMetadata::parse(&mut BufReader::new(f))
        .with_context(|| format!("reading the header of {}", rpm_path.display()))?;
    let payload_offset = md.get_package_segment_offsets().payload;
    let compression = md
        .get_payload_compressor()
        .with_context(|| format!("package {nevra}: payload compressor"))?;
    let removes: Vec<&regex::Regex> = opts
        .remove_from_packages
        .iter()
        .filter(|(n, _)| *n == meta.name)
        .flat_map(|(_, r)| r.iter())
        .collect();
    let inodes = md
        .header
        .get_entry_data_as_u32_array(rpm::IndexTag::RPMTAG_FILEINODES)
        .unwrap_or_default();
    let files = md
        .get_file_entries()
        .with_context(|| format!("package {nevra}: reading the file list"))?;
    let langs = match &opts.install_langs {
        Some(_) => md
            .header
            .get_entry_data_as_string_array(rpm::IndexTag::RPMTAG_FILELANGS)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let mut entries = Vec::with_capacity(files.len());
    let mut by_path = HashMap::with_capacity(files.len());
    for (i, fe) in files.iter().enumerate() {
        let full = format!("{}{}", fe.dirname(), fe.basename());
        let path = normalize(&full).with_context(|| format!("package {nevra}: refusing {full}"))?;
        let flags = fe.flags();
        let ghost = flags.contains(rpm::FileFlags::GHOST);
        let removed = removes.iter().any(|r| r.is_match(&format!("/{path}")));
        let doc = flags.contains(rpm::FileFlags::DOC) && !opts.documentation;
        let other_lang = match (&opts.install_langs, langs.get(i)) {
            (Some(want), Some(l)) => !crate::rpm::lang_wanted(l, want),
            _ => false,
        };
        let kind = match fe.file_type() {
            rpm::FileType::Dir => EntryKind::Dir,
            rpm::FileType::Regular => EntryKind::File {
                digest: fe
                    .digest()
                    .map(|d| d.as_hex().to_string())
                    .unwrap_or_default(),
                size: fe.size() as u64,
            },
            rpm::FileType::SymbolicLink => {
                EntryKind::Symlink(fe.linkto().unwrap_or_default().to_string())
            }
            _ => EntryKind::Other(fe.mode().raw_mode()),
        };
        let wanted = !ghost && !removed && !doc && !other_lang && !path.is_empty();
        by_path.insert(path.clone(), i);
        entries.push(Entry {
            path,
            kind,
            perms: fe.permissions() as u32,
            user: fe.user().to_string(),
            group: fe.group().to_string(),
            mtime: fe.modified_at().0,
            caps: fe.caps().filter(|c| !c.is_empty()).map(String::from),
            wanted,
            writes: wanted,
            inode: inodes.get(i).copied().unwrap_or(0),
        });
    }
    // Stripped payloads (large files) carry no sizes: a hardlink set's data
    // comes with its last member, as rpm writes it.
    let mut last_of_inode: HashMap<u32, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if matches!(e.kind, EntryKind::File { .. }) {
            last_of_inode.insert(e.inode, i);
        }
    }
    let stripped_sizes = entries
        .iter()
        .enumerate()
        .map(|(i, e)| match &e.kind {
            EntryKind::File { size, .. } if last_of_inode.get(&e.inode) == Some(&i) => *size,
            EntryKind::Symlink(t) => t.len() as u64,
            _ => 0,
        })
        .collect();
    let scripts = scripts::from_header(&meta.name, &md)?;
    Ok(Planned {
        nevra,
        rpm: rpm_path.to_path_buf(),
        payload_offset,
        compression,
        entries,
        by_path,
        stripped_sizes,
        scripts,
    })
}

/// Do two packages' entries for one path agree (rpm's `rpmfilesCompare`)?
fn same_entry(a: &Entry, b: &Entry) -> bool {
    match (&a.kind, &b.kind) {
        (EntryKind::Dir, EntryKind::Dir) => true,
        (ka, kb) => ka == kb && a.perms == b.perms && a.user == b.user && a.group == b.group,
    }
}

/// Decide one writer per path, refuse conflicts and symlinked parents;
/// returns the directories to create (path -> (package index, entry index)
/// for packaged ones, None for implicit parents).
fn plan(plans: &mut [Planned]) -> Result<BTreeMap<String, Option<(usize, usize)>>> {
    let mut owner: HashMap<String, (usize, usize)> = HashMap::new();
    for pi in 0..plans.len() {
        for ei in 0..plans[pi].entries.len() {
            let e = &plans[pi].entries[ei];
            if !e.wanted {
                continue;
            }
            if let Some(&(opi, oei)) = owner.get(&e.path) {
                let o = &plans[opi].entries[oei];
                if !same_entry(o, e) {
                    bail!(
                        "file conflict: {} is shipped differently by {} and {}",
                        format_args!("/{}", e.path),
                        plans[opi].nevra,
                        plans[pi].nevra
                    );
                }
                plans[pi].entries[ei].writes = false;
            } else {
                owner.insert(e.path.clone(), (pi, ei));
            }
        }
    }
    let mut dirs: BTreeMap<String, Option<(usize, usize)>> = BTreeMap::new();
    for (path, &(pi, ei)) in &owner {
        let p = &plans[pi];
        for anc in ancestors(path) {
            if let Some(&(api, aei)) = owner.get(anc) {
                match &plans[api].entries[aei].kind {
                    EntryKind::Dir => {}
                    EntryKind::Symlink(t) => bail!(
                        "package {}: refusing /{path}: its parent /{anc} is a symlink (to {t}, shipped by {})",
                        p.nevra,
                        plans[api].nevra
                    ),
                    _ => bail!(
                        "package {}: refusing /{path}: its parent /{anc} is not a directory in {}",
                        p.nevra,
                        plans[api].nevra
                    ),
                }
            } else {
                dirs.entry(anc.to_string()).or_insert(None);
            }
        }
        if plans[pi].entries[ei].kind == EntryKind::Dir {
            dirs.insert(path.clone(), Some((pi, ei)));
        }
    }
    Ok(dirs)
}

/// Create the directories (parents first), refusing anything in the way
/// that is not a directory, symlinks above all.
fn make_dirs(
    dest: &Path,
    dirs: &BTreeMap<String, Option<(usize, usize)>>,
    plans: &[Planned],
) -> Result<()> {
    for (path, owner) in dirs {
        let host = dest.join(path);
        let who = match owner {
            Some((pi, _)) => format!("package {}", plans[*pi].nevra),
            None => "implicit parent directory".to_string(),
        };
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                bail!("{who}: refusing /{path}: it is a symlink in the tree")
            }
            Ok(_) => bail!("{who}: refusing /{path}: a non-directory is in the way"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&host)
                .with_context(|| format!("{who}: creating {}", host.display()))?,
            Err(e) => {
                return Err(e).with_context(|| format!("{who}: inspecting {}", host.display()));
            }
        }
        let mode = match owner {
            Some((pi, ei)) => plans[*pi].entries[*ei].perms,
            None => 0o755,
        };
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("{who}: setting the mode of {}", host.display()))?;
    }
    Ok(())
}

/// Create `path` exclusively (never following a symlink at it); an old
/// non-directory at the path is replaced.
fn create_excl(path: &Path) -> io::Result<File> {
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            remove_non_dir(path)?;
            open()
        }
        r => r,
    }
}

fn remove_non_dir(path: &Path) -> io::Result<()> {
    let m = std::fs::symlink_metadata(path)?;
    if m.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "a directory is in the way",
        ));
    }
    std::fs::remove_file(path)
}

/// Per-thread unpack state.
struct Unpacker<'a> {
    dest: &'a Path,
    p: &'a Planned,
    buf: Vec<u8>,
    files: u64,
    bytes: u64,
}

impl Unpacker<'_> {
    fn host(&self, e: &Entry) -> PathBuf {
        self.dest.join(&e.path)
    }

    fn write_file(&mut self, e: &Entry, r: &mut impl Read, size: u64) -> Result<()> {
        let host = self.host(e);
        let mut f = create_excl(&host).with_context(|| format!("creating {}", host.display()))?;
        let mut left = size;
        while left > 0 {
            let n = (left as usize).min(self.buf.len());
            r.read_exact(&mut self.buf[..n])
                .with_context(|| format!("reading the payload for /{}", e.path))?;
            f.write_all(&self.buf[..n])
                .with_context(|| format!("writing {}", host.display()))?;
            left -= n as u64;
        }
        self.finish_file(e, &f, &host)?;
        self.files += 1;
        self.bytes += size;
        Ok(())
    }

    fn finish_file(&self, e: &Entry, f: &File, host: &Path) -> Result<()> {
        f.set_permissions(std::fs::Permissions::from_mode(e.perms))
            .with_context(|| format!("setting the mode of {}", host.display()))?;
        if let Some(c) = &e.caps {
            let v = caps::to_xattr(c).with_context(|| format!("capabilities of /{}", e.path))?;
            xattr::FileExt::set_xattr(f, caps::XATTR, &v)
                .with_context(|| format!("setting {} on {}", caps::XATTR, host.display()))?;
        }
        let t = filetime::FileTime::from_unix_time(e.mtime as i64, 0);
        filetime::set_file_handle_times(f, Some(t), Some(t))
            .with_context(|| format!("setting the mtime of {}", host.display()))?;
        Ok(())
    }

    fn symlink(&mut self, e: &Entry, target: &str) -> Result<()> {
        let host = self.host(e);
        if let Err(err) = std::os::unix::fs::symlink(target, &host) {
            if err.kind() != io::ErrorKind::AlreadyExists {
                return Err(err).with_context(|| format!("creating symlink {}", host.display()));
            }
            remove_non_dir(&host)
                .and_then(|_| std::os::unix::fs::symlink(target, &host))
                .with_context(|| format!("replacing {} with a symlink", host.display()))?;
        }
        let t = filetime::FileTime::from_unix_time(e.mtime as i64, 0);
        filetime::set_symlink_file_times(&host, t, t)
            .with_context(|| format!("setting the mtime of {}", host.display()))?;
        self.files += 1;
        Ok(())
    }

    /// Write a hardlink set: data into the first member this package writes,
    /// links for the others.
    fn hardlink_set(&mut self, members: &[usize], r: &mut impl Read, size: u64) -> Result<()> {
        let p = self.p;
        let mut writers = members.iter().map(|&i| &p.entries[i]).filter(|e| e.writes);
        let Some(first) = writers.next() else {
            io::copy(&mut r.take(size), &mut io::sink()).context("skipping payload data")?;
            return Ok(());
        };
        self.write_file(first, r, size)?;
        let src = self.host(first);
        for e in writers {
            let dst = self.host(e);
            if let Err(err) = std::fs::hard_link(&src, &dst) {
                if err.kind() != io::ErrorKind::AlreadyExists {
                    return Err(err).with_context(|| format!("linking {}", dst.display()));
                }
                remove_non_dir(&dst)
                    .and_then(|_| std::fs::hard_link(&src, &dst))
                    .with_context(|| format!("linking {}", dst.display()))?;
            }
            self.files += 1;
        }
        Ok(())
    }

    fn run(&mut self) -> Result<()> {
        let p = self.p;
        let mut f = File::open(&p.rpm).with_context(|| format!("opening {}", p.rpm.display()))?;
        f.seek(SeekFrom::Start(p.payload_offset))
            .with_context(|| format!("seeking to the payload of {}", p.rpm.display()))?;
        let raw = BufReader::with_capacity(READ_BUF, f);
        let mut r: Box<dyn Read> = match p.compression {
            rpm::CompressionType::None => Box::new(raw),
            rpm::CompressionType::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            rpm::CompressionType::Xz => {
                Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(raw))
            }
            rpm::CompressionType::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(raw).context("zstd decoder")?)
            }
            rpm::CompressionType::Bzip2 => bail!("bzip2 payloads are not supported"),
        };
        let mut r = BufReader::with_capacity(READ_BUF, &mut r);
        let mut pending: HashMap<u32, Vec<usize>> = HashMap::new();
        while let Some(h) = read_cpio_header(&mut r, p)? {
            let idx = match h.index {
                Some(i) if i < p.entries.len() => i,
                Some(i) => bail!("stripped payload index {i} is out of range"),
                None => {
                    let n = normalize(&h.name).with_context(|| format!("refusing {}", h.name))?;
                    match p.by_path.get(&n) {
                        Some(&i) => i,
                        None => bail!("payload entry {} is not in the header", h.name),
                    }
                }
            };
            let e = &p.entries[idx];
            let size = h.size;
            match (&e.kind, h.mode & 0o170000) {
                (EntryKind::File { .. }, 0o100000) if h.nlink > 1 => {
                    let set = pending.entry(h.ino).or_default();
                    set.push(idx);
                    if size > 0 || set.len() as u32 >= h.nlink {
                        let members = pending.remove(&h.ino).unwrap_or_default();
                        self.hardlink_set(&members, &mut r, size)?;
                    }
                }
                (EntryKind::File { .. }, 0o100000) if e.writes => {
                    self.write_file(e, &mut r, size)?
                }
                (EntryKind::Symlink(_), 0o120000) if e.writes => {
                    let mut t = vec![0u8; size as usize];
                    r.read_exact(&mut t).context("reading a symlink target")?;
                    let t = String::from_utf8(t)
                        .with_context(|| format!("symlink target of /{}", e.path))?;
                    self.symlink(e, &t)?;
                }
                (EntryKind::Other(m), _) if e.writes => {
                    bail!("/{}: unsupported file type (mode {m:o})", e.path)
                }
                (_, t) if h.index.is_none() && t != (e.mode_type()) => {
                    bail!("payload entry {} does not match its header type", h.name)
                }
                _ => {
                    io::copy(&mut (&mut r).take(size), &mut io::sink())
                        .context("skipping payload data")?;
                }
            }
            skip_pad(&mut r, size)?;
        }
        // Hardlink sets whose data never came (all members empty).
        for (_, members) in pending {
            self.hardlink_set(&members, &mut io::empty(), 0)?;
        }
        Ok(())
    }
}

impl Entry {
    fn mode_type(&self) -> u32 {
        match self.kind {
            EntryKind::Dir => 0o040000,
            EntryKind::File { .. } => 0o100000,
            EntryKind::Symlink(_) => 0o120000,
            EntryKind::Other(m) => m as u32 & 0o170000,
        }
    }
}

struct CpioHeader {
    name: String,
    /// Header index, for stripped payloads.
    index: Option<usize>,
    ino: u32,
    mode: u32,
    nlink: u32,
    size: u64,
}

fn hex(b: &[u8]) -> Result<u32> {
    let s = std::str::from_utf8(b).context("cpio header is not ASCII")?;
    u32::from_str_radix(s, 16).with_context(|| format!("bad cpio hex field {s:?}"))
}

fn skip_pad(r: &mut impl Read, len: u64) -> Result<()> {
    let pad = ((4 - (len % 4)) % 4) as usize;
    let mut b = [0u8; 4];
    r.read_exact(&mut b[..pad])
        .context("reading cpio padding")?;
    Ok(())
}

/// Read the next cpio (newc/crc, or rpm's stripped `07070X`) header; None at the trailer.
fn read_cpio_header(r: &mut impl Read, p: &Planned) -> Result<Option<CpioHeader>> {
    let mut magic = [0u8; 6];
    r.read_exact(&mut magic).context("reading a cpio header")?;
    match &magic {
        b"070701" | b"070702" => {
            let mut h = [0u8; 104];
            r.read_exact(&mut h).context("reading a cpio header")?;
            let f = |i: usize| hex(&h[i * 8..i * 8 + 8]);
            let namesize = f(11)? as usize;
            if namesize == 0 || namesize > 65536 {
                bail!("bad cpio name size {namesize}");
            }
            let mut name = vec![0u8; namesize];
            r.read_exact(&mut name).context("reading a cpio name")?;
            skip_pad(r, (110 + namesize) as u64)?;
            while name.last() == Some(&0) {
                name.pop();
            }
            let name = String::from_utf8(name).context("cpio name is not UTF-8")?;
            if name == "TRAILER!!!" {
                return Ok(None);
            }
            Ok(Some(CpioHeader {
                name,
                index: None,
                ino: f(0)?,
                mode: f(1)?,
                nlink: f(4)?,
                size: f(6)? as u64,
            }))
        }
        b"07070X" => {
            let mut h = [0u8; 8];
            r.read_exact(&mut h)
                .context("reading a stripped cpio header")?;
            let i = hex(&h)? as usize;
            skip_pad(r, 14)?;
            let e = p
                .entries
                .get(i)
                .with_context(|| format!("stripped payload index {i} is out of range"))?;
            let links = p
                .entries
                .iter()
                .filter(|o| o.inode == e.inode && matches!(o.kind, EntryKind::File { .. }))
                .count() as u32;
            Ok(Some(CpioHeader {
                name: e.path.clone(),
                index: Some(i),
                ino: e.inode,
                mode: e.mode_type(),
                nlink: if matches!(e.kind, EntryKind::File { .. }) {
                    links
                } else {
                    1
                },
                size: p.stripped_sizes.get(i).copied().unwrap_or(0),
            }))
        }
        m => bail!("bad cpio magic {:?}", String::from_utf8_lossy(m)),
    }
}

/// Apply users and groups through the tree's etc/passwd and etc/group;
/// re-apply modes (chown clears setuid/setgid) and capabilities.
///
/// With `lenient` (scriptlets were skipped, so the users they would create are
/// missing), an unknown owner leaves the file root-owned and is recorded in
/// `unresolved` instead of failing.
fn apply_owners(
    dest: &Path,
    plans: &[Planned],
    lenient: bool,
    unresolved: &mut Vec<String>,
) -> Result<()> {
    let ids = IdTables::load(dest)?;
    for p in plans {
        for e in p.entries.iter().filter(|e| e.writes) {
            if e.user == "root" && e.group == "root" {
                continue;
            }
            if lenient && (ids.uid(&e.user).is_none() || ids.gid(&e.group).is_none()) {
                unresolved.push(format!("{}: /{} ({}:{})", p.nevra, e.path, e.user, e.group));
                continue;
            }
            let uid = ids.uid(&e.user).with_context(|| {
                format!(
                    "package {}: file /{} is owned by user {:?}, which is not in the tree's /etc/passwd",
                    p.nevra, e.path, e.user
                )
            })?;
            let gid = ids.gid(&e.group).with_context(|| {
                format!(
                    "package {}: file /{} is owned by group {:?}, which is not in the tree's /etc/group",
                    p.nevra, e.path, e.group
                )
            })?;
            let host = dest.join(&e.path);
            std::os::unix::fs::lchown(&host, Some(uid), Some(gid))
                .with_context(|| format!("changing the owner of {}", host.display()))?;
            if matches!(e.kind, EntryKind::Symlink(_)) {
                continue;
            }
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(e.perms))
                .with_context(|| format!("setting the mode of {}", host.display()))?;
            if let Some(c) = &e.caps {
                let v = caps::to_xattr(c)?;
                xattr::set(&host, caps::XATTR, &v)
                    .with_context(|| format!("setting {} on {}", caps::XATTR, host.display()))?;
            }
        }
    }
    Ok(())
}

/// Set directory mtimes last: writing into a directory changes its mtime.
fn dir_times(
    dest: &Path,
    dirs: &BTreeMap<String, Option<(usize, usize)>>,
    plans: &[Planned],
) -> Result<()> {
    for (path, owner) in dirs.iter().rev() {
        if let Some((pi, ei)) = owner {
            let e = &plans[*pi].entries[*ei];
            let t = filetime::FileTime::from_unix_time(e.mtime as i64, 0);
            let host = dest.join(path);
            filetime::set_symlink_file_times(&host, t, t)
                .with_context(|| format!("setting the mtime of {}", host.display()))?;
        }
    }
    Ok(())
}

fn record(report: &mut InstallReport, outcomes: Vec<(String, Outcome)>) {
    for (id, o) in outcomes {
        match o {
            Outcome::Ran => report.scripts_run.push(id),
            Outcome::Skipped(why) => report.scripts_skipped.push((id, why)),
        }
    }
}

/// Install `pkgs` (metadata + path of the verified .rpm), given in install
/// order, into `dest`.
pub fn install(
    dest: &Path,
    pkgs: &[(PackageMeta, PathBuf)],
    opts: &InstallOptions,
) -> Result<InstallReport> {
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    // 1. Headers and the plan.
    let mut plans: Vec<Planned> = pkgs
        .par_iter()
        .map(|(m, p)| crate::rpm::guard(p, || read_plan(m, p, opts)))
        .collect::<Result<_>>()?;
    let dirs = plan(&mut plans)?;
    // 2. Directories.
    make_dirs(dest, &dirs, &plans)?;
    // 3. Payloads, biggest first so the slowest one starts early.
    let progress = Progress::new("Unpacking packages", plans.len() as u64, false);
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pkgs[i].0.size_installed));
    let counts: Vec<(u64, u64)> = order
        .par_iter()
        .map(|&i| {
            let p = &plans[i];
            let mut u = Unpacker {
                dest,
                p,
                buf: vec![0u8; COPY_BUF],
                files: 0,
                bytes: 0,
            };
            u.run()
                .with_context(|| format!("unpacking package {} ({})", p.nevra, p.rpm.display()))?;
            progress.inc(1);
            Ok((u.files, u.bytes))
        })
        .collect::<Result<_>>()?;
    progress.finish(&format!("{} packages", plans.len()));
    dir_times(dest, &dirs, &plans)?;
    let mut report = InstallReport {
        packages: plans.len(),
        files: counts.iter().map(|c| c.0).sum(),
        bytes: counts.iter().map(|c| c.1).sum(),
        ..Default::default()
    };
    // 4. Scriptlets and owners, with the previous build's users in place.
    if let Some((passwd, group)) = &opts.previous_ids {
        super::users::merge_previous(dest, passwd, group)?;
    }
    report.sysusers_ran = super::sysusers::run(dest, opts.sysusers)?;
    let skip = scripts::skip_reason(&opts.scripts, &opts.basearch);
    let of_kind = |k: Kind| -> Vec<&Scriptlet> {
        plans
            .iter()
            .flat_map(|p| p.scripts.iter().filter(move |s| s.kind == k))
            .collect()
    };
    for k in [Kind::Pre, Kind::Post] {
        let outcomes = scripts::run_all(dest, &of_kind(k), skip.as_deref())?;
        record(&mut report, outcomes);
    }
    let mut unresolved = Vec::new();
    apply_owners(dest, &plans, skip.is_some(), &mut unresolved)?;
    report.owners_unresolved = unresolved;
    let outcomes = scripts::run_all(dest, &of_kind(Kind::PostTrans), skip.as_deref())?;
    record(&mut report, outcomes);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize("./usr/bin/x").unwrap(), "usr/bin/x");
        assert_eq!(normalize("/usr//bin/./x/").unwrap(), "usr/bin/x");
        assert_eq!(normalize("/").unwrap(), "");
        assert!(normalize("./usr/../../etc").is_err());
        let a: Vec<&str> = ancestors("a/b/c").collect();
        assert_eq!(a, ["a/b", "a"]);
    }
}
