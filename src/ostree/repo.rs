//! An archive-mode OSTree repository: loose objects under `objects/XX/`,
//! refs under `refs/heads/`, a `summary`. Objects go through `tmp/` and a
//! rename; present objects are never rewritten; refs move last.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use sha2::Digest;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::gvariant::{Type, Value};
use super::objects::{
    Commit, CommitSpec, DirMeta, DirTree, FileMeta, ObjectType, Xattrs, ZLIB_LEVEL, checksum_bytes,
    parse_metadata, sha256_hex, size_prefixed,
};

const CONFIG: &str = "[core]\nrepo_version=1\nmode=archive-z2\n";
/// Files up to this size are read once into memory; larger ones are streamed.
const SMALL_FILE: u64 = 4 << 20;

/// One object: checksum and type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectName {
    pub checksum: String,
    pub kind: ObjectType,
}

/// An archive-mode OSTree repository on disk.
#[derive(Clone, Debug)]
pub struct Repo {
    root: PathBuf,
    /// Flush the file system before a ref moves (like ostree's default fsync=true).
    pub fsync: bool,
}

/// A function giving the SELinux label of a path in the commit (absolute,
/// `/` for the root) with its mode (file type bits included), or an error.
pub type LabelFn<'a> = &'a (dyn Fn(&str, u32) -> Result<String> + Sync);

/// How [`Repo::write_dir_with`] commits a tree.
#[derive(Clone, Copy, Default)]
pub struct CommitOptions<'a> {
    /// Label every file, directory and symlink: the label goes into the
    /// object's `security.selinux` xattr (with a trailing NUL, as the kernel
    /// stores it and ostree commits it), replacing any the file has on disk.
    pub selinux: Option<LabelFn<'a>>,
}

/// What `prune` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub objects_removed: usize,
    pub bytes_freed: u64,
}

/// The directories of a new repository, any mode (as `ostree init`).
pub(crate) const REPO_DIRS: [&str; 7] = [
    "objects",
    "refs/heads",
    "refs/remotes",
    "refs/mirrors",
    "tmp",
    "state",
    "extensions",
];

impl Repo {
    /// Create an archive repository at `path` (or open it if one is there).
    pub fn init_archive(path: &Path) -> Result<Repo> {
        for d in REPO_DIRS {
            let p = path.join(d);
            fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        }
        let config = path.join("config");
        if !config.exists() {
            crate::util::write_atomic(&config, CONFIG.as_bytes())?;
        }
        Repo::open(path)
    }

    /// Open the archive repository at `path`, creating it on first use.
    pub fn open_or_init(path: &Path) -> Result<Repo> {
        if path.join("config").exists() {
            Repo::open(path)
        } else {
            Repo::init_archive(path)
        }
    }

    /// Open an existing archive repository.
    pub fn open(path: &Path) -> Result<Repo> {
        let config = path.join("config");
        let text = fs::read_to_string(&config)
            .with_context(|| format!("reading OSTree repo config {}", config.display()))?;
        let mode = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("mode"))
            .filter_map(|l| l.trim_start().strip_prefix('='))
            .map(str::trim)
            .next()
            .unwrap_or("bare");
        ensure!(
            mode == "archive-z2" || mode == "archive",
            "OSTree repo {} has mode {mode:?}; only archive repositories are supported",
            path.display()
        );
        for d in ["objects", "tmp", "refs/heads"] {
            fs::create_dir_all(path.join(d))
                .with_context(|| format!("creating {d} in {}", path.display()))?;
        }
        Ok(Repo {
            root: path.to_path_buf(),
            fsync: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Path of an object inside the repository.
    pub fn object_path(&self, checksum: &str, kind: ObjectType) -> PathBuf {
        self.root.join("objects").join(&checksum[..2]).join(format!(
            "{}.{}",
            &checksum[2..],
            kind.extension()
        ))
    }

    pub fn has_object(&self, checksum: &str, kind: ObjectType) -> bool {
        self.object_path(checksum, kind).exists()
    }

    /// Read a whole object file.
    pub fn read_object(&self, checksum: &str, kind: ObjectType) -> Result<Vec<u8>> {
        checksum_bytes(checksum)?;
        let p = self.object_path(checksum, kind);
        fs::read(&p).with_context(|| {
            format!(
                "reading {} object {checksum} ({})",
                kind.extension(),
                p.display()
            )
        })
    }

    fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix("obj-")
            .tempfile_in(self.root.join("tmp"))
            .with_context(|| format!("creating a temp file in {}/tmp", self.root.display()))
    }

    /// Move a finished temp file to its object path (readable by all, like ostree's).
    fn commit_temp(
        &self,
        tmp: tempfile::NamedTempFile,
        checksum: &str,
        kind: ObjectType,
    ) -> Result<()> {
        let dest = self.object_path(checksum, kind);
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .with_context(|| format!("setting the mode of {}", tmp.path().display()))?;
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        tmp.persist(&dest)
            .with_context(|| format!("renaming an object into {}", dest.display()))?;
        Ok(())
    }

    /// Write `data` as an object at `checksum` unless it is already there.
    fn write_object_bytes(&self, checksum: &str, kind: ObjectType, data: &[u8]) -> Result<()> {
        if self.has_object(checksum, kind) {
            return Ok(());
        }
        let mut tmp = self.temp_file()?;
        tmp.write_all(data)
            .with_context(|| format!("writing {} object {checksum}", kind.extension()))?;
        self.commit_temp(tmp, checksum, kind)
    }

    /// Write a metadata object (dirtree, dirmeta, commit); returns its checksum.
    pub fn write_metadata(&self, kind: ObjectType, value: &Value) -> Result<String> {
        ensure!(kind != ObjectType::File, "content objects are not metadata");
        let data = value.to_bytes();
        let csum = sha256_hex(&data);
        self.write_object_bytes(&csum, kind, &data)?;
        Ok(csum)
    }

    /// Write one content object from a file on disk (regular file or symlink).
    pub fn write_content(&self, path: &Path, meta: &FileMeta, size: u64) -> Result<String> {
        if meta.is_symlink() {
            let csum = hex::encode(meta.checksum_start().finalize());
            if !self.has_object(&csum, ObjectType::File) {
                let data = size_prefixed(&meta.zlib_header(0).to_bytes());
                self.write_object_bytes(&csum, ObjectType::File, &data)?;
            }
            return Ok(csum);
        }
        if size <= SMALL_FILE {
            let content = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let mut h = meta.checksum_start();
            h.update(&content);
            let csum = hex::encode(h.finalize());
            if !self.has_object(&csum, ObjectType::File) {
                self.write_filez(
                    &csum,
                    meta,
                    &mut content.as_slice(),
                    content.len() as u64,
                    path,
                )?;
            }
            return Ok(csum);
        }
        // Large file: hash first (cheap), compress only if the object is new,
        // re-hashing on the way to catch a file that changed in between.
        let csum = hash_stream(meta, path)?;
        if !self.has_object(&csum, ObjectType::File) {
            let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            self.write_filez(&csum, meta, &mut f, size, path)?;
        }
        Ok(csum)
    }

    fn write_filez(
        &self,
        csum: &str,
        meta: &FileMeta,
        input: &mut dyn Read,
        size: u64,
        path: &Path,
    ) -> Result<()> {
        let tmp = self.temp_file()?;
        let mut out = BufWriter::with_capacity(256 << 10, tmp);
        out.write_all(&size_prefixed(&meta.zlib_header(size).to_bytes()))?;
        let mut enc = flate2::write::DeflateEncoder::new(out, flate2::Compression::new(ZLIB_LEVEL));
        let mut h = meta.checksum_start();
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = input
                .read(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            enc.write_all(&buf[..n])
                .with_context(|| format!("compressing {}", path.display()))?;
            total += n as u64;
        }
        ensure!(
            total == size && hex::encode(h.finalize()) == csum,
            "{} changed while it was being committed",
            path.display()
        );
        let out = enc.finish().context("finishing deflate stream")?;
        let tmp = out
            .into_inner()
            .map_err(|e| e.into_error())
            .context("flushing object")?;
        self.commit_temp(tmp, csum, ObjectType::File)
    }

    /// Commit a directory tree: returns (root dirtree checksum, root dirmeta checksum).
    /// Regular files and symlinks are hashed and compressed in parallel.
    pub fn write_dir(&self, dir: &Path) -> Result<(String, String)> {
        self.write_dir_with(dir, &CommitOptions::default())
    }

    /// [`Repo::write_dir`] with options (SELinux labels).
    pub fn write_dir_with(&self, dir: &Path, opts: &CommitOptions) -> Result<(String, String)> {
        let mut files = Vec::new();
        let mut tree = scan_dir(dir, "", &mut files)?;
        if let Some(label) = opts.selinux {
            label_dirs(&mut tree, "/", label)?;
            use rayon::prelude::*;
            files.par_iter_mut().try_for_each(|f| -> Result<()> {
                f.label = Some(label(&f.commit_path, f.mode)?);
                Ok(())
            })?;
        }
        let csums = self.write_contents(&files)?;
        self.write_tree(&tree, &csums)
    }

    /// Write every file's content object on all rayon threads, largest files
    /// first (so one big file does not start last and run alone); returns
    /// the checksums in `files` order.
    fn write_contents(&self, files: &[FileEntry]) -> Result<Vec<String>> {
        let mut order: Vec<usize> = (0..files.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(files[i].size));
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Vec<OnceLock<Result<String>>> =
            files.iter().map(|_| OnceLock::new()).collect();
        rayon::scope(|s| {
            for _ in 0..rayon::current_num_threads() {
                s.spawn(|_| {
                    while !failed.load(Ordering::Relaxed) {
                        let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        let f = &files[i];
                        let r = f
                            .meta()
                            .and_then(|meta| self.write_content(&f.path, &meta, f.size));
                        let r = r.with_context(|| {
                            format!("writing content object for {}", f.path.display())
                        });
                        failed.fetch_or(r.is_err(), Ordering::Relaxed);
                        let _ = results[i].set(r);
                    }
                });
            }
        });
        if let Some(e) = results
            .iter()
            .find_map(|r| r.get().and_then(|r| r.as_ref().err()))
        {
            return Err(anyhow::anyhow!("{e:#}"));
        }
        results
            .into_iter()
            .map(|r| r.into_inner().context("a content object was not written")?)
            .collect()
    }

    fn write_tree(&self, node: &DirNode, csums: &[String]) -> Result<(String, String)> {
        let mut dt = DirTree::default();
        for (name, entry) in &node.entries {
            match entry {
                Entry::File(i) => dt.files.push((name.clone(), csums[*i].clone())),
                Entry::Dir(sub) => {
                    let (t, m) = self.write_tree(sub, csums)?;
                    dt.dirs.push((name.clone(), t, m));
                }
            }
        }
        let tree = self.write_metadata(ObjectType::DirTree, &dt.to_value()?)?;
        let meta = self.write_metadata(ObjectType::DirMeta, &node.meta.to_value())?;
        Ok((tree, meta))
    }

    /// Write a commit object; the root objects (and the parent, if given) must exist.
    pub fn write_commit(&self, spec: &CommitSpec) -> Result<String> {
        if let Some(p) = &spec.parent {
            ensure!(
                self.has_object(p, ObjectType::Commit),
                "parent commit {p} is not in {}",
                self.root.display()
            );
        }
        self.write_commit_shallow(spec)
    }

    /// Write a commit object whose parent need not be in this repository
    /// (a shallow history, as `ostree pull --depth=0` leaves; a rebuild
    /// names the recorded parent); the root objects must exist.
    pub fn write_commit_shallow(&self, spec: &CommitSpec) -> Result<String> {
        ensure!(
            self.has_object(&spec.root.0, ObjectType::DirTree)
                && self.has_object(&spec.root.1, ObjectType::DirMeta),
            "the commit's root objects {} / {} are not in {}",
            spec.root.0,
            spec.root.1,
            self.root.display()
        );
        self.write_metadata(ObjectType::Commit, &spec.to_value()?)
    }

    /// Write (replace) a commit's detached metadata (`.commitmeta`).
    pub fn write_commit_detached_metadata(
        &self,
        commit: &str,
        metadata: &BTreeMap<String, Value>,
    ) -> Result<()> {
        checksum_bytes(commit)?;
        let data = Value::dict(metadata).to_bytes();
        let mut tmp = self.temp_file()?;
        tmp.write_all(&data)
            .with_context(|| format!("writing detached metadata of {commit}"))?;
        self.commit_temp(tmp, commit, ObjectType::CommitMeta)
    }

    /// A commit's detached metadata, if any.
    pub fn read_commit_detached_metadata(
        &self,
        commit: &str,
    ) -> Result<Option<BTreeMap<String, Value>>> {
        if !self.has_object(commit, ObjectType::CommitMeta) {
            return Ok(None);
        }
        let data = self.read_object(commit, ObjectType::CommitMeta)?;
        Ok(Some(parse_metadata(&data).with_context(|| {
            format!("parsing detached metadata of {commit}")
        })?))
    }

    /// Read and verify a commit object.
    pub fn read_commit(&self, checksum: &str) -> Result<Commit> {
        let data = self.read_object(checksum, ObjectType::Commit)?;
        ensure!(
            sha256_hex(&data) == checksum,
            "commit object {checksum} is corrupt"
        );
        Commit::parse(&data).with_context(|| format!("parsing commit {checksum}"))
    }

    /// Read and verify a dirtree object.
    pub fn read_dirtree(&self, checksum: &str) -> Result<DirTree> {
        let data = self.read_object(checksum, ObjectType::DirTree)?;
        ensure!(
            sha256_hex(&data) == checksum,
            "dirtree object {checksum} is corrupt"
        );
        DirTree::parse(&data).with_context(|| format!("parsing dirtree {checksum}"))
    }

    /// The content of `path` (relative to the root) in `commit`, if the
    /// commit is in the repository and `path` is a regular file in it.
    pub fn read_commit_file(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>> {
        if !self.has_object(commit, ObjectType::Commit) {
            return Ok(None);
        }
        let c = self.read_commit(commit)?;
        let mut tree = self.read_dirtree(&c.root.0)?;
        let parts: Vec<&str> = path.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                let Some((_, csum)) = tree.files.iter().find(|(n, _)| n == part) else {
                    return Ok(None);
                };
                let data = self.read_object(csum, ObjectType::File)?;
                let (meta, content) = super::objects::parse_filez(&data)?;
                return Ok((!meta.is_symlink()).then_some(content));
            }
            let Some((_, t, _)) = tree.dirs.iter().find(|(n, _, _)| n == part) else {
                return Ok(None);
            };
            tree = self.read_dirtree(t)?;
        }
        Ok(None)
    }

    /// Flush the repository's file system (objects durable before a ref moves).
    pub fn sync(&self) -> Result<()> {
        let f =
            File::open(&self.root).with_context(|| format!("opening {}", self.root.display()))?;
        // SAFETY: syncfs on a valid, open descriptor has no memory effects.
        let rc = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("syncing {}", self.root.display()));
        }
        Ok(())
    }

    fn ref_path(&self, name: &str) -> Result<PathBuf> {
        ensure!(
            !name.is_empty()
                && name
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != "..")
                && !name.contains(char::is_whitespace),
            "invalid ref name {name:?}"
        );
        Ok(self.root.join("refs/heads").join(name))
    }

    /// Point ref `name` at `commit`, atomically, after flushing the objects.
    pub fn set_ref(&self, name: &str, commit: &str) -> Result<()> {
        let path = self.ref_path(name)?;
        ensure!(
            self.has_object(commit, ObjectType::Commit),
            "commit {commit} is not in {}",
            self.root.display()
        );
        if self.fsync {
            self.sync()?;
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        crate::util::write_atomic(&path, format!("{commit}\n").as_bytes())
            .with_context(|| format!("setting ref {name}"))
    }

    /// The commit a ref points at, or None when the ref does not exist.
    pub fn resolve_ref(&self, name: &str) -> Result<Option<String>> {
        let path = self.ref_path(name)?;
        match fs::read_to_string(&path) {
            Ok(s) => {
                let c = s.trim().to_string();
                checksum_bytes(&c)
                    .with_context(|| format!("ref {name} in {}", self.root.display()))?;
                Ok(Some(c))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading ref {}", path.display())),
        }
    }

    /// All refs under refs/heads with their commits.
    pub fn list_refs(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let heads = self.root.join("refs/heads");
        let mut stack = vec![heads.clone()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
                let e = e?;
                let p = e.path();
                if e.file_type()?.is_dir() {
                    stack.push(p);
                } else {
                    let name = p.strip_prefix(&heads)?.to_string_lossy().into_owned();
                    if let Some(c) = self.resolve_ref(&name)? {
                        out.insert(name, c);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every object a commit needs: itself, its detached metadata, and its
    /// trees and content (not its parents).
    pub fn reachable_objects(&self, commit: &str) -> Result<BTreeSet<ObjectName>> {
        let c = self.read_commit(commit)?;
        let mut out = BTreeSet::new();
        let obj = |checksum: &str, kind| ObjectName {
            checksum: checksum.to_string(),
            kind,
        };
        out.insert(obj(commit, ObjectType::Commit));
        if self.has_object(commit, ObjectType::CommitMeta) {
            out.insert(obj(commit, ObjectType::CommitMeta));
        }
        out.insert(obj(&c.root.1, ObjectType::DirMeta));
        let mut stack = vec![c.root.0.clone()];
        while let Some(t) = stack.pop() {
            if !out.insert(obj(&t, ObjectType::DirTree)) {
                continue;
            }
            let dt = self.read_dirtree(&t)?;
            for (_, f) in &dt.files {
                out.insert(obj(f, ObjectType::File));
            }
            for (_, sub, meta) in dt.dirs {
                out.insert(obj(&meta, ObjectType::DirMeta));
                stack.push(sub);
            }
        }
        Ok(out)
    }

    /// Every loose object in the repository.
    pub fn list_objects(&self) -> Result<Vec<(ObjectName, PathBuf)>> {
        let mut out = Vec::new();
        let objects = self.root.join("objects");
        for d in fs::read_dir(&objects).with_context(|| format!("listing {}", objects.display()))? {
            let d = d?;
            let prefix = d.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !d.file_type()?.is_dir() {
                continue;
            }
            for f in
                fs::read_dir(d.path()).with_context(|| format!("listing {}", d.path().display()))?
            {
                let f = f?;
                let name = f.file_name().to_string_lossy().into_owned();
                let Some((rest, ext)) = name.split_once('.') else {
                    continue;
                };
                let (Some(kind), true) = (ObjectType::from_extension(ext), rest.len() == 62) else {
                    continue;
                };
                out.push((
                    ObjectName {
                        checksum: format!("{prefix}{rest}"),
                        kind,
                    },
                    f.path(),
                ));
            }
        }
        Ok(out)
    }

    /// Remove every object that neither `keep_commits` nor any ref's commit
    /// needs. Returns what was removed.
    pub fn prune(&self, keep_commits: &[String]) -> Result<PruneStats> {
        let mut live = BTreeSet::new();
        let roots: BTreeSet<String> = keep_commits
            .iter()
            .cloned()
            .chain(self.list_refs()?.into_values())
            .collect();
        for c in &roots {
            live.extend(
                self.reachable_objects(c)
                    .with_context(|| format!("walking commit {c} for prune"))?,
            );
        }
        let mut stats = PruneStats::default();
        for (name, path) in self.list_objects()? {
            if live.contains(&name) {
                continue;
            }
            let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            stats.objects_removed += 1;
            stats.bytes_freed += size;
        }
        Ok(stats)
    }

    /// Regenerate the `summary` file: `(a(s(taya{sv}))a{sv})`, refs sorted;
    /// per ref (commit size, little-endian as ostree writes it; checksum;
    /// big-endian `ostree.commit.timestamp` and the version).
    pub fn update_summary(&self) -> Result<()> {
        let mut refs = Vec::new();
        for (name, commit) in self.list_refs()? {
            let data = self.read_object(&commit, ObjectType::Commit)?;
            let c = Commit::parse(&data).with_context(|| format!("parsing commit {commit}"))?;
            let mut md = BTreeMap::new();
            md.insert(
                "ostree.commit.timestamp".to_string(),
                Value::U64(c.timestamp.to_be()),
            );
            if let Some(v @ Value::Str(_)) = c.metadata.get("version") {
                md.insert("ostree.commit.version".to_string(), v.clone());
            }
            refs.push(Value::Tuple(vec![
                Value::Str(name),
                Value::Tuple(vec![
                    Value::U64(data.len() as u64),
                    Value::Bytes(checksum_bytes(&commit)?.to_vec()),
                    Value::dict(&md),
                ]),
            ]));
        }
        let mut md = BTreeMap::new();
        md.insert(
            "ostree.summary.last-modified".to_string(),
            Value::U64((crate::util::time::now_secs().max(0) as u64).to_be()),
        );
        md.insert(
            "ostree.summary.tombstone-commits".to_string(),
            Value::Bool(false),
        );
        md.insert("ostree.summary.mode".to_string(), Value::str("archive-z2"));
        md.insert(
            "ostree.summary.indexed-deltas".to_string(),
            Value::Bool(true),
        );
        let summary = Value::Tuple(vec![
            Value::Array(Type::parse("(s(taya{sv}))")?, refs),
            Value::dict(&md),
        ]);
        crate::util::write_atomic(&self.root.join("summary"), &summary.to_bytes())
            .with_context(|| format!("writing the summary of {}", self.root.display()))
    }
}

fn hash_stream(meta: &FileMeta, path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = meta.checksum_start();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Extended attributes of a path (not following symlinks), sorted by name.
pub fn read_xattrs(path: &Path) -> Result<Xattrs> {
    let mut out = Vec::new();
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("listing xattrs of {}", path.display())),
    };
    for name in names {
        let value = xattr::get(path, &name)
            .with_context(|| format!("reading xattr {name:?} of {}", path.display()))?
            .unwrap_or_default();
        out.push((
            std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()).to_vec(),
            value,
        ));
    }
    out.sort();
    Ok(out)
}

struct FileEntry {
    path: PathBuf,
    /// Absolute path in the commit, for the labeller.
    commit_path: String,
    /// The SELinux label, when labelling.
    label: Option<String>,
    uid: u32,
    gid: u32,
    mode: u32,
    size: u64,
}

impl FileEntry {
    fn meta(&self) -> Result<FileMeta> {
        let symlink = if self.mode & libc::S_IFMT == libc::S_IFLNK {
            let t = fs::read_link(&self.path)
                .with_context(|| format!("reading symlink {}", self.path.display()))?;
            t.into_os_string().into_string().map_err(|t| {
                anyhow::anyhow!(
                    "symlink {} has a non-UTF-8 target {t:?}",
                    self.path.display()
                )
            })?
        } else {
            String::new()
        };
        Ok(FileMeta {
            uid: self.uid,
            gid: self.gid,
            mode: self.mode,
            symlink,
            xattrs: with_label(read_xattrs(&self.path)?, self.label.as_deref()),
        })
    }
}

/// `xattrs` with `security.selinux` set to `label` (NUL-terminated) in
/// name order, when a label is given; unchanged otherwise.
fn with_label(mut xattrs: Xattrs, label: Option<&str>) -> Xattrs {
    let Some(label) = label else {
        return xattrs;
    };
    let name = b"security.selinux".to_vec();
    xattrs.retain(|(n, _)| *n != name);
    let mut value = label.as_bytes().to_vec();
    value.push(0);
    xattrs.push((name, value));
    xattrs.sort();
    xattrs
}

/// Label every directory of the tree (`path` is the node's commit path).
fn label_dirs(node: &mut DirNode, path: &str, label: LabelFn) -> Result<()> {
    let l = label(path, node.meta.mode)?;
    node.meta.xattrs = with_label(std::mem::take(&mut node.meta.xattrs), Some(&l));
    for (name, entry) in node.entries.iter_mut() {
        if let Entry::Dir(sub) = entry {
            let p = if path == "/" {
                format!("/{name}")
            } else {
                format!("{path}/{name}")
            };
            label_dirs(sub, &p, label)?;
        }
    }
    Ok(())
}

enum Entry {
    File(usize),
    Dir(DirNode),
}

struct DirNode {
    meta: DirMeta,
    entries: BTreeMap<String, Entry>,
}

/// Scan `dir`, whose path in the commit is `commit_path` ("" for the root).
fn scan_dir(dir: &Path, commit_path: &str, files: &mut Vec<FileEntry>) -> Result<DirNode> {
    let md = fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    ensure!(md.is_dir(), "{} is not a directory", dir.display());
    let meta = DirMeta {
        uid: md.uid(),
        gid: md.gid(),
        mode: md.mode(),
        xattrs: read_xattrs(dir)?,
    };
    let mut entries = BTreeMap::new();
    for e in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let path = e.path();
        let name = e
            .file_name()
            .into_string()
            .map_err(|n| anyhow::anyhow!("{}: file name {n:?} is not UTF-8", dir.display()))?;
        let md =
            fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let ft = md.file_type();
        let child = format!("{commit_path}/{name}");
        let entry = if ft.is_dir() {
            Entry::Dir(scan_dir(&path, &child, files)?)
        } else if ft.is_file() || ft.is_symlink() {
            files.push(FileEntry {
                path,
                commit_path: child,
                label: None,
                uid: md.uid(),
                gid: md.gid(),
                mode: md.mode(),
                size: md.len(),
            });
            Entry::File(files.len() - 1)
        } else {
            bail!(
                "{} is not a regular file, symlink or directory; OSTree cannot store it",
                path.display()
            );
        };
        entries.insert(name, entry);
    }
    Ok(DirNode { meta, entries })
}
