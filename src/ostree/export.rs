//! Export one commit as a tarball holding a self-contained archive
//! repository (config, the commit's objects, its detached metadata), and
//! import such a tarball back, verifying every object's checksum.
//! The tarball is plain ustar, sorted, with fixed owners and the commit's
//! timestamp as mtime, so the same commit always exports to the same bytes.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

use super::objects::{
    Commit, DirTree, ObjectType, content_checksum, parse_filez, parse_metadata, sha256_hex,
};
use super::repo::Repo;

const BLOCK: usize = 512;
const DIRS: [&str; 9] = [
    "extensions/",
    "objects/",
    "refs/",
    "refs/heads/",
    "refs/mirrors/",
    "refs/remotes/",
    "state/",
    "tmp/",
    "",
];

fn octal(field: &mut [u8], value: u64) -> Result<()> {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    ensure!(
        s.len() == digits,
        "value {value} does not fit a tar header field"
    );
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    Ok(())
}

fn header(name: &str, size: u64, mtime: u64, dir: bool) -> Result<[u8; BLOCK]> {
    let mut h = [0u8; BLOCK];
    ensure!(name.len() < 100, "tar entry name {name:?} is too long");
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], if dir { 0o755 } else { 0o644 })?;
    octal(&mut h[108..116], 0)?;
    octal(&mut h[116..124], 0)?;
    octal(&mut h[124..136], size)?;
    octal(&mut h[136..148], mtime)?;
    h[156] = if dir { b'5' } else { b'0' };
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    Ok(h)
}

fn write_entry(out: &mut impl Write, name: &str, data: &[u8], mtime: u64) -> Result<()> {
    out.write_all(&header(name, data.len() as u64, mtime, false)?)?;
    out.write_all(data)?;
    let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
    out.write_all(&[0u8; BLOCK][..pad])?;
    Ok(())
}

impl Repo {
    /// Write `commit` and everything it needs as a tarball of an archive repo.
    pub fn export_commit(&self, commit: &str, file: &Path) -> Result<()> {
        let mtime = self.read_commit(commit)?.timestamp;
        let objects = self.reachable_objects(commit)?;
        let dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a temp file in {}", dir.display()))?;
        let mut out = BufWriter::new(tmp);
        let mut dirs: Vec<String> = DIRS
            .iter()
            .filter(|d| !d.is_empty())
            .map(|d| d.to_string())
            .collect();
        let prefixes: std::collections::BTreeSet<&str> =
            objects.iter().map(|o| &o.checksum[..2]).collect();
        dirs.extend(prefixes.iter().map(|p| format!("objects/{p}/")));
        dirs.sort();
        for d in &dirs {
            out.write_all(&header(d, 0, mtime, true)?)?;
        }
        write_entry(
            &mut out,
            "config",
            b"[core]\nrepo_version=1\nmode=archive-z2\n",
            mtime,
        )?;
        for o in &objects {
            let name = format!(
                "objects/{}/{}.{}",
                &o.checksum[..2],
                &o.checksum[2..],
                o.kind.extension()
            );
            let data = self.read_object(&o.checksum, o.kind)?;
            write_entry(&mut out, &name, &data, mtime)
                .with_context(|| format!("writing {name} to {}", file.display()))?;
        }
        out.write_all(&[0u8; 2 * BLOCK])?;
        let tmp = out
            .into_inner()
            .map_err(|e| e.into_error())
            .context("flushing export")?;
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("syncing {}", file.display()))?;
        tmp.persist(file)
            .with_context(|| format!("renaming export into {}", file.display()))?;
        Ok(())
    }

    /// Import a tarball written by `export_commit`; returns the commit checksum.
    /// Every object is verified before it enters the repository, and the
    /// commit object enters last.
    pub fn import_commit(&self, file: &Path) -> Result<String> {
        let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let mut input = BufReader::new(f);
        let mut commits = Vec::new();
        let mut block = [0u8; BLOCK];
        loop {
            input
                .read_exact(&mut block)
                .with_context(|| format!("reading {}: truncated tar", file.display()))?;
            if block.iter().all(|&b| b == 0) {
                break;
            }
            let (name, size, kind) =
                parse_header(&block).with_context(|| format!("reading {}", file.display()))?;
            let mut data = vec![0u8; size as usize];
            input
                .read_exact(&mut data)
                .with_context(|| format!("reading {name} from {}", file.display()))?;
            let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
            input.read_exact(&mut block[..pad])?;
            if kind != b'0' && kind != 0 {
                continue;
            }
            let Some(rest) = name.strip_prefix("objects/") else {
                continue;
            };
            let (checksum, otype) =
                object_name(rest).with_context(|| format!("{}: entry {name}", file.display()))?;
            verify_object(&checksum, otype, &data)
                .with_context(|| format!("{}: object {name}", file.display()))?;
            if otype == ObjectType::Commit {
                commits.push((checksum, data));
            } else {
                self.import_object(&checksum, otype, &data)?;
            }
        }
        let [(commit, data)] = commits.as_slice() else {
            bail!(
                "{} holds {} commits, expected exactly one",
                file.display(),
                commits.len()
            );
        };
        // The commit object last: a repo that has it has all it needs (an
        // import killed half-way must not leave a commit that `has_object`
        // finds and whose files are missing).
        self.import_object(commit, ObjectType::Commit, data)?;
        // Everything the commit needs must now be present.
        for o in self.reachable_objects(commit)? {
            ensure!(
                self.has_object(&o.checksum, o.kind),
                "{}: object {} is missing",
                file.display(),
                o.checksum
            );
        }
        Ok(commit.clone())
    }

    pub(crate) fn import_object(
        &self,
        checksum: &str,
        kind: ObjectType,
        data: &[u8],
    ) -> Result<()> {
        if kind == ObjectType::CommitMeta {
            let md = parse_metadata(data)?;
            return self.write_commit_detached_metadata(checksum, &md);
        }
        if self.has_object(checksum, kind) {
            return Ok(());
        }
        let mut tmp = tempfile::Builder::new()
            .prefix("obj-")
            .tempfile_in(self.path().join("tmp"))
            .with_context(|| format!("creating a temp file in {}/tmp", self.path().display()))?;
        tmp.write_all(data)?;
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
        let dest = self.object_path(checksum, kind);
        if let Some(d) = dest.parent() {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        tmp.persist(&dest)
            .with_context(|| format!("renaming into {}", dest.display()))?;
        Ok(())
    }
}

fn parse_octal(field: &[u8]) -> Result<u64> {
    let s = std::str::from_utf8(field).context("tar header field is not text")?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).with_context(|| format!("bad octal field {s:?}"))
}

fn parse_header(h: &[u8; BLOCK]) -> Result<(String, u64, u8)> {
    let stored = parse_octal(&h[148..156])?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    ensure!(stored == sum, "tar header checksum mismatch");
    let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
    let name = std::str::from_utf8(&h[..end])
        .context("tar entry name is not UTF-8")?
        .to_string();
    ensure!(
        !name.starts_with('/') && !name.split('/').any(|c| c == ".."),
        "unsafe tar entry name {name:?}"
    );
    let size = parse_octal(&h[124..136])?;
    ensure!(size < (16 << 30), "tar entry {name} is implausibly large");
    Ok((name, size, h[156]))
}

fn object_name(rest: &str) -> Result<(String, ObjectType)> {
    let (prefix, file) = rest.split_once('/').context("object outside objects/XX/")?;
    let (tail, ext) = file.split_once('.').context("object without extension")?;
    let kind =
        ObjectType::from_extension(ext).with_context(|| format!("unknown object type {ext:?}"))?;
    let checksum = format!("{prefix}{tail}");
    super::objects::checksum_bytes(&checksum)?;
    Ok((checksum, kind))
}

pub(crate) fn verify_object(checksum: &str, kind: ObjectType, data: &[u8]) -> Result<()> {
    match kind {
        ObjectType::File => {
            let (meta, content) = parse_filez(data)?;
            ensure!(
                content_checksum(&meta, &content) == checksum,
                "content checksum mismatch"
            );
        }
        ObjectType::CommitMeta => {
            parse_metadata(data)?;
        }
        ObjectType::Commit | ObjectType::DirTree | ObjectType::DirMeta => {
            ensure!(sha256_hex(data) == checksum, "checksum mismatch");
            match kind {
                ObjectType::Commit => drop(Commit::parse(data)?),
                ObjectType::DirTree => drop(DirTree::parse(data)?),
                _ => {}
            }
        }
    }
    Ok(())
}
