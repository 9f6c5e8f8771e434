//! The initramfs made from the tree itself, for OSes whose initramfs is not
//! shipped in a package and cannot be made by running the tree's own dracut
//! (another architecture, or no dracut at all): the config repo's
//! `initramfs.yaml` names what goes in, and cosa copies it out of the tree.
//!
//! ```yaml
//! init: /usr/lib/sample-initrd/init     # becomes /init
//! binaries:                             # programs: their shared libraries come along
//!   - /usr/bin/bash
//!   - /usr/lib/ostree/ostree-prepare-root
//! files:                                # copied as they are (directories: everything below)
//!   - /usr/lib/udev/rules.d/60-persistent-storage.rules
//! kernel-modules: [virtio_blk, ext4]    # with the modules they depend on (modules.dep)
//! kernel-modules-x86_64: [crc32c_intel] # and those of one arch (-aarch64, -s390x, -ppc64le)
//! compression: zstd                     # zstd (default), gzip or none
//! ```
//!
//! A program's libraries are found as the dynamic loader would find them
//! inside the tree: its `PT_INTERP`, then each `DT_NEEDED` in its
//! `DT_RUNPATH`/`DT_RPATH` (`$ORIGIN` expanded), the tree's `ld.so.conf`
//! directories, and the default ones, skipping libraries of another ELF
//! class or machine. The ELF headers are read here ([`super::elf`]);
//! nothing of the tree runs, so the same build works for any architecture.
//! Symbolic links met on the way (`/lib64 -> usr/lib64`, `libc.so.6 ->
//! libc-2.36.so`) are reproduced. Kernel modules and their dependencies
//! come from the tree's `modules.dep`; the image's own module index is made
//! with the host's `depmod`. Every entry is owned by root with one mtime,
//! in sorted order, so the same tree gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use super::elf;
use crate::util::cmd::CommandRunExt;

/// The file in the config repo.
pub const SPEC_FILE: &str = "initramfs.yaml";

/// `initramfs.yaml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Spec {
    /// The tree's program that becomes `/init`.
    pub init: String,
    #[serde(default)]
    pub binaries: Vec<String>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub kernel_modules: Vec<String>,
    /// `kernel-modules-<arch>`: more modules for one architecture, as the
    /// treefile's `packages-<arch>` (e.g. `crc32c_intel` exists only on x86).
    #[serde(default, rename = "kernel-modules-x86_64")]
    pub kernel_modules_x86_64: Vec<String>,
    #[serde(default, rename = "kernel-modules-aarch64")]
    pub kernel_modules_aarch64: Vec<String>,
    #[serde(default, rename = "kernel-modules-s390x")]
    pub kernel_modules_s390x: Vec<String>,
    #[serde(default, rename = "kernel-modules-ppc64le")]
    pub kernel_modules_ppc64le: Vec<String>,
    #[serde(default = "default_compression")]
    pub compression: String,
}

fn default_compression() -> String {
    "zstd".into()
}

impl Spec {
    /// The spec for `arch`: `kernel-modules` plus `kernel-modules-<arch>`.
    pub fn for_arch(&self, arch: &str) -> Spec {
        let extra = match arch {
            "x86_64" => &self.kernel_modules_x86_64,
            "aarch64" => &self.kernel_modules_aarch64,
            "s390x" => &self.kernel_modules_s390x,
            "ppc64le" => &self.kernel_modules_ppc64le,
            _ => &Vec::new(),
        };
        let mut s = self.clone();
        s.kernel_modules.extend(extra.iter().cloned());
        s
    }

    /// `config_dir/initramfs.yaml`, or `None` when there is none.
    pub fn load(config_dir: &Path) -> Result<Option<Spec>> {
        let path = config_dir.join(SPEC_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let spec: Spec = serde_yaml::from_str(&text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(" line {} column {}", l.line(), l.column()))
                .unwrap_or_default();
            anyhow::anyhow!("{}{at}: {e}", path.display())
        })?;
        ensure!(
            ["zstd", "gzip", "none"].contains(&spec.compression.as_str()),
            "{}: compression {:?}: zstd, gzip or none",
            path.display(),
            spec.compression
        );
        for p in std::iter::once(&spec.init)
            .chain(&spec.binaries)
            .chain(&spec.files)
        {
            ensure!(
                p.starts_with('/') && !p.split('/').any(|c| c == ".."),
                "{}: {p:?} is not an absolute path inside the tree",
                path.display()
            );
        }
        Ok(Some(spec))
    }
}

/// What went into an initramfs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Made {
    pub files: usize,
    pub libraries: usize,
    pub modules: usize,
    /// Compressed size in bytes.
    pub size: u64,
}

/// One entry of the image, by its path inside it (no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir,
    /// A copy of this file of the tree (or of the staging directory).
    File(PathBuf),
    Symlink(String),
}

struct Collector<'a> {
    tree: &'a Path,
    entries: BTreeMap<String, Entry>,
    /// ELF files already followed.
    seen: BTreeSet<String>,
    search: Vec<String>,
    libraries: usize,
}

/// Resolve `path` (absolute, inside the tree) as the target would, each
/// symbolic link met relative to the tree's root. Returns the path of the
/// file it names and the links on the way, as (link path, target) pairs.
fn resolve(tree: &Path, path: &str) -> Result<(String, Vec<(String, String)>)> {
    let mut links = Vec::new();
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(c);
        let rel = done.join("/");
        let full = tree.join(&rel);
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("{path}: /{rel} is not in the tree")
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", full.display())),
        };
        if meta.file_type().is_symlink() {
            hops += 1;
            ensure!(hops <= 40, "{path}: too many levels of symbolic links");
            let target = fs::read_link(&full)
                .with_context(|| format!("reading the link {}", full.display()))?
                .to_string_lossy()
                .into_owned();
            if !links.iter().any(|(l, _)| *l == rel) {
                links.push((rel.clone(), target.clone()));
            }
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            todo.extend(
                target
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .rev()
                    .map(str::to_string),
            );
        }
    }
    Ok((done.join("/"), links))
}

/// The ELF class and machine of a file: libraries must match the program.
fn elf_kind(data: &[u8]) -> Option<(u8, u8, [u8; 2])> {
    (data.len() >= 20 && elf::is_elf(data)).then(|| (data[4], data[5], [data[18], data[19]]))
}

/// The dynamic loader's own directories, searched last.
const DEFAULT_DIRS: [&str; 4] = ["/lib64", "/usr/lib64", "/lib", "/usr/lib"];

/// Debian's dynamic loader also searches the multiarch directories of its
/// architecture, built in (`/usr/lib/x86_64-linux-gnu`), with or without
/// an `ld.so.conf`.
fn multiarch_dirs(kind: (u8, u8, [u8; 2])) -> Vec<String> {
    let (class, data, m) = kind;
    let machine = if data == 2 {
        u16::from_be_bytes(m)
    } else {
        u16::from_le_bytes(m)
    };
    let triplet = match (machine, class, data) {
        (62, 2, _) => "x86_64-linux-gnu",
        (3, 1, _) => "i386-linux-gnu",
        (183, 2, _) => "aarch64-linux-gnu",
        (40, 1, _) => "arm-linux-gnueabihf",
        (21, 2, 1) => "powerpc64le-linux-gnu",
        (21, 2, 2) => "powerpc64-linux-gnu",
        (22, 2, _) => "s390x-linux-gnu",
        (243, 2, _) => "riscv64-linux-gnu",
        _ => return Vec::new(),
    };
    vec![format!("/lib/{triplet}"), format!("/usr/lib/{triplet}")]
}

/// The directories the tree's `ld.so.conf` names (its `include` globs
/// followed): what `ldconfig` would put in the loader's cache.
fn search_dirs(tree: &Path) -> Result<Vec<String>> {
    let mut dirs = Vec::new();
    for conf in ["etc/ld.so.conf", "usr/etc/ld.so.conf"] {
        let p = tree.join(conf);
        if p.is_file() {
            read_ld_conf(tree, &p, &mut dirs, 0)?;
            break;
        }
    }
    let mut seen = BTreeSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    Ok(dirs)
}

fn read_ld_conf(tree: &Path, file: &Path, dirs: &mut Vec<String>, depth: u32) -> Result<()> {
    ensure!(depth < 8, "{}: includes nest too deep", file.display());
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            let pattern = pattern.trim();
            // `include /etc/ld.so.conf.d/*.conf`: a directory and a
            // file-name pattern with one `*`; /etc may be /usr/etc here.
            let (dir, glob) = pattern.rsplit_once('/').unwrap_or(("", pattern));
            let (pre, post) = glob.split_once('*').unwrap_or((glob, ""));
            for base in [dir.to_string(), format!("/usr{dir}")] {
                let d = tree.join(base.trim_start_matches('/'));
                let Ok(rd) = fs::read_dir(&d) else { continue };
                let mut names: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(pre) && n.ends_with(post))
                    .collect();
                names.sort();
                for n in names {
                    read_ld_conf(tree, &d.join(n), dirs, depth + 1)?;
                }
                break;
            }
        } else if line.starts_with('/') {
            dirs.push(line.to_string());
        }
    }
    Ok(())
}

impl Collector<'_> {
    fn add_parents(&mut self, rel: &str) {
        let mut p = Path::new(rel).parent();
        while let Some(d) = p {
            let s = d.to_string_lossy();
            if s.is_empty() {
                break;
            }
            self.entries.entry(s.into_owned()).or_insert(Entry::Dir);
            p = d.parent();
        }
    }

    /// Put the file at tree path `path` in (with the links on its way);
    /// returns its resolved path.
    fn add_path(&mut self, path: &str) -> Result<String> {
        let (real, links) = resolve(self.tree, path)?;
        for (link, target) in links {
            self.add_parents(&link);
            self.entries.insert(link, Entry::Symlink(target));
        }
        self.add_parents(&real);
        let full = self.tree.join(&real);
        if full.is_dir() {
            self.entries.entry(real.clone()).or_insert(Entry::Dir);
        } else {
            self.entries.insert(real.clone(), Entry::File(full));
        }
        Ok(real)
    }

    /// A program or library and, if it is dynamic, what it needs.
    fn add_elf(&mut self, path: &str, want: Option<(u8, u8, [u8; 2])>) -> Result<()> {
        let real = self.add_path(path)?;
        if !self.seen.insert(real.clone()) {
            return Ok(());
        }
        let full = self.tree.join(&real);
        let data = fs::read(&full).with_context(|| format!("reading {}", full.display()))?;
        let Some(kind) = elf_kind(&data) else {
            // A script: its interpreter (`#!/usr/bin/bash`) comes along.
            if let Some(line) = data.strip_prefix(b"#!") {
                let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
                let line = String::from_utf8_lossy(line);
                if let Some(interp) = line.split_whitespace().next() {
                    self.add_elf(interp, None)
                        .with_context(|| format!("the interpreter of /{real}"))?;
                }
            }
            return Ok(());
        };
        if let Some(w) = want {
            ensure!(
                w == kind,
                "/{real} is not of the program's ELF class and machine"
            );
        }
        let dynamic = elf::dynamic(&data).with_context(|| format!("reading ELF /{real}"))?;
        if let Some(interp) = &dynamic.interpreter {
            self.add_elf(interp, Some(kind))
                .with_context(|| format!("the loader of /{real}"))?;
        }
        let origin = format!(
            "/{}",
            Path::new(&real).parent().unwrap_or(Path::new("")).display()
        );
        for lib in &dynamic.needed {
            let found = self
                .find_library(lib, &dynamic.runpath, &origin, kind)
                .with_context(|| format!("/{real} needs {lib}"))?;
            if !self.seen.contains(&resolve(self.tree, &found)?.0) {
                self.libraries += 1;
            }
            self.add_elf(&found, Some(kind))?;
        }
        Ok(())
    }

    fn find_library(
        &self,
        name: &str,
        runpath: &[String],
        origin: &str,
        kind: (u8, u8, [u8; 2]),
    ) -> Result<String> {
        if name.contains('/') {
            return Ok(name.to_string());
        }
        let dirs: Vec<String> = runpath
            .iter()
            .map(|d| d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin))
            .chain(self.search.iter().cloned())
            .chain(multiarch_dirs(kind))
            .chain(DEFAULT_DIRS.iter().map(|d| d.to_string()))
            .collect();
        for dir in &dirs {
            let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
            let Ok((real, _)) = resolve(self.tree, &candidate) else {
                continue;
            };
            let full = self.tree.join(&real);
            let mut head = [0u8; 20];
            let ok = fs::File::open(&full)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok();
            if ok && elf_kind(&head) == Some(kind) {
                return Ok(candidate);
            }
        }
        bail!("not found in the tree (searched {})", dirs.join(":"))
    }

    /// A path of the tree and, for a directory, everything below it.
    fn add_tree(&mut self, path: &str) -> Result<()> {
        let real = self.add_path(path)?;
        let full = self.tree.join(&real);
        if !full.is_dir() {
            return Ok(());
        }
        let mut stack = vec![real];
        while let Some(dir) = stack.pop() {
            let d = self.tree.join(&dir);
            for e in fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
                let e = e.with_context(|| format!("listing {}", d.display()))?;
                let rel = format!("{dir}/{}", e.file_name().to_string_lossy());
                let ft = e.file_type()?;
                if ft.is_symlink() {
                    let t = fs::read_link(e.path())?.to_string_lossy().into_owned();
                    self.entries.insert(rel, Entry::Symlink(t));
                } else if ft.is_dir() {
                    self.entries.insert(rel.clone(), Entry::Dir);
                    stack.push(rel);
                } else if ft.is_file() {
                    self.entries.insert(rel, Entry::File(e.path()));
                }
            }
        }
        Ok(())
    }
}

/// Module name as modprobe compares them: `-` and `_` are the same.
fn module_key(name: &str) -> String {
    name.replace('-', "_")
}

/// The name of a module file: `virtio_blk.ko.xz` -> `virtio_blk`.
fn module_name(file: &str) -> &str {
    let base = file.rsplit('/').next().unwrap_or(file);
    base.split(".ko").next().unwrap_or(base)
}

/// Make the kernel's module index (`modules.dep` and its binary forms)
/// with the host's `depmod` when the tree has modules but no index (a
/// kernel package whose scriptlet, which runs depmod, did not run). The
/// tree's modules are at `usr/lib/modules`; depmod looks below
/// `BASE/lib/modules`, so BASE is a scratch directory linking there.
pub fn ensure_module_index(tree: &Path, kver: &str) -> Result<bool> {
    let moddir = tree.join("usr/lib/modules").join(kver);
    if moddir.join("modules.dep").exists() || !moddir.join("kernel").is_dir() {
        return Ok(false);
    }
    run_depmod(&tree.join("usr/lib/modules"), kver)?;
    Ok(true)
}

fn run_depmod(modules: &Path, kver: &str) -> Result<()> {
    let base = tempfile::Builder::new()
        .prefix("cosa-depmod-")
        .tempdir()
        .context("creating a depmod directory")?;
    fs::create_dir(base.path().join("lib")).context("creating the depmod base")?;
    let modules =
        fs::canonicalize(modules).with_context(|| format!("resolving {}", modules.display()))?;
    std::os::unix::fs::symlink(&modules, base.path().join("lib/modules"))
        .context("linking the module directory for depmod")?;
    Command::new("depmod")
        .arg("-b")
        .arg(base.path())
        .arg(kver)
        .run_capture(&format!(
            "making the module index of kernel {kver} (depmod from Debian's kmod)"
        ))?;
    Ok(())
}

/// The modules `wanted` and those they depend on, as paths relative to the
/// kernel's module directory; built-in modules are skipped.
fn select_modules(moddir: &Path, wanted: &[String]) -> Result<Vec<String>> {
    let dep_file = moddir.join("modules.dep");
    let text =
        fs::read_to_string(&dep_file).with_context(|| format!("reading {}", dep_file.display()))?;
    let mut deps: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for line in text.lines() {
        let Some((module, rest)) = line.split_once(':') else {
            continue;
        };
        let list = rest.split_whitespace().map(str::to_string).collect();
        deps.insert(module_key(module_name(module)), (module.to_string(), list));
    }
    let builtin: BTreeSet<String> = fs::read_to_string(moddir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .map(|l| module_key(module_name(l)))
        .collect();
    let mut out = BTreeSet::new();
    for w in wanted {
        let key = module_key(w);
        match deps.get(&key) {
            Some((file, list)) => {
                out.insert(file.clone());
                out.extend(list.iter().cloned());
            }
            None if builtin.contains(&key) => {}
            None => bail!(
                "kernel module {w} is neither a module of this kernel nor built in ({})",
                dep_file.display()
            ),
        }
    }
    Ok(out.into_iter().collect())
}

/// Make the initramfs of kernel `kver` from `tree` as `spec` says, at
/// `out`, with every mtime `mtime`.
pub fn build(tree: &Path, kver: &str, spec: &Spec, out: &Path, mtime: i64) -> Result<Made> {
    let mut c = Collector {
        tree,
        entries: BTreeMap::new(),
        seen: BTreeSet::new(),
        search: search_dirs(tree)?,
        libraries: 0,
    };
    for b in std::iter::once(&spec.init).chain(&spec.binaries) {
        c.add_elf(b, None)
            .with_context(|| format!("putting {b} into the initramfs"))?;
    }
    for f in &spec.files {
        c.add_tree(f)
            .with_context(|| format!("putting {f} into the initramfs"))?;
    }
    let (real_init, _) = resolve(tree, &spec.init)?;
    c.entries
        .insert("init".into(), Entry::Symlink(format!("/{real_init}")));
    // Kernel modules, with an index of their own.
    let staging = tempfile::Builder::new()
        .prefix("cosa-initramfs-")
        .tempdir()
        .context("creating the initramfs staging directory")?;
    let mut modules = 0;
    if !spec.kernel_modules.is_empty() {
        let moddir = tree.join("usr/lib/modules").join(kver);
        ensure_module_index(tree, kver)?;
        let smod = staging.path().join("modules");
        let sk = smod.join(kver);
        for rel in select_modules(&moddir, &spec.kernel_modules)? {
            let dest = sk.join(&rel);
            fs::create_dir_all(dest.parent().context("module path")?)?;
            fs::copy(moddir.join(&rel), &dest).with_context(|| format!("copying module {rel}"))?;
            modules += 1;
        }
        for f in [
            "modules.builtin",
            "modules.order",
            "modules.builtin.modinfo",
        ] {
            if moddir.join(f).exists() {
                fs::copy(moddir.join(f), sk.join(f)).with_context(|| format!("copying {f}"))?;
            }
        }
        run_depmod(&smod, kver)?;
        let mut stack = vec![sk.clone()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d)? {
                let e = e?;
                let rel = e
                    .path()
                    .strip_prefix(&smod)
                    .context("staging path")?
                    .to_string_lossy()
                    .into_owned();
                let rel = format!("usr/lib/modules/{rel}");
                c.add_parents(&rel);
                if e.file_type()?.is_dir() {
                    c.entries.insert(rel, Entry::Dir);
                    stack.push(e.path());
                } else {
                    c.entries.insert(rel, Entry::File(e.path()));
                }
            }
        }
    }
    for d in ["dev", "proc", "sys", "run", "tmp", "sysroot"] {
        c.entries.entry(d.into()).or_insert(Entry::Dir);
    }
    let libraries = c.libraries;
    let mut files = 0;
    let mut w = crate::util::cpio::Writer::new(Vec::new(), mtime);
    // /dev/console, for the kernel to give /init a console.
    w.dir("dev", 0o755)?;
    w.chardev("dev/console", 0o600, 5, 1)?;
    for (path, entry) in &c.entries {
        match entry {
            Entry::Dir if path == "dev" => {}
            Entry::Dir => w.dir(path, 0o755)?,
            Entry::Symlink(t) => w.symlink(path, t)?,
            Entry::File(src) => {
                let data = fs::read(src).with_context(|| format!("reading {}", src.display()))?;
                let mode = fs::metadata(src)?.permissions().mode();
                w.file(path, mode & 0o7777, &data)?;
                files += 1;
            }
        }
    }
    let cpio = w.finish()?;
    let data = match spec.compression.as_str() {
        "zstd" => zstd::bulk::compress(&cpio, 10).context("compressing the initramfs")?,
        "gzip" => {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
            e.write_all(&cpio)?;
            e.finish().context("compressing the initramfs")?
        }
        _ => cpio,
    };
    crate::util::write_atomic(out, &data)?;
    Ok(Made {
        files,
        libraries,
        modules,
        size: data.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(tree: &Path, rel: &str, target: &str) {
        let p = tree.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    #[test]
    fn links_resolve_inside_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        fs::create_dir_all(tree.join("usr/lib64")).unwrap();
        fs::write(tree.join("usr/lib64/ld.so"), b"x").unwrap();
        link(tree, "lib64", "usr/lib64");
        link(tree, "usr/lib64/ld-linux.so.2", "/lib64/ld.so");
        let (real, links) = resolve(tree, "/lib64/ld-linux.so.2").unwrap();
        assert_eq!(real, "usr/lib64/ld.so");
        assert_eq!(
            links,
            [
                ("lib64".to_string(), "usr/lib64".to_string()),
                (
                    "usr/lib64/ld-linux.so.2".to_string(),
                    "/lib64/ld.so".to_string()
                )
            ]
        );
        // An absolute link never leaves the tree.
        link(tree, "usr/escape", "/../../etc/passwd");
        assert!(resolve(tree, "/usr/escape").is_err());
        link(tree, "loop", "loop");
        assert!(resolve(tree, "/loop").is_err());
    }

    #[test]
    fn ld_so_conf_includes_are_followed() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        fs::create_dir_all(tree.join("usr/etc/ld.so.conf.d")).unwrap();
        fs::write(
            tree.join("usr/etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n",
        )
        .unwrap();
        fs::write(
            tree.join("usr/etc/ld.so.conf.d/x86_64-linux-gnu.conf"),
            "# multiarch\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n",
        )
        .unwrap();
        let dirs = search_dirs(tree).unwrap();
        assert_eq!(dirs, ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]);
    }

    #[test]
    fn module_names_match_as_modprobe_does() {
        assert_eq!(
            module_name("kernel/drivers/block/virtio_blk.ko.xz"),
            "virtio_blk"
        );
        assert_eq!(module_key("virtio-blk"), module_key("virtio_blk"));
    }

    #[test]
    fn spec_errors_name_the_file() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join(SPEC_FILE), "init: /init\nbinares: []\n").unwrap();
        let e = format!("{:#}", Spec::load(t.path()).unwrap_err());
        assert!(e.contains("initramfs.yaml") && e.contains("binares"), "{e}");
        fs::write(t.path().join(SPEC_FILE), "init: ../init\n").unwrap();
        assert!(Spec::load(t.path()).is_err());
        fs::remove_file(t.path().join(SPEC_FILE)).unwrap();
        assert_eq!(Spec::load(t.path()).unwrap(), None);
    }

    #[test]
    fn per_arch_modules_join_the_common_ones() {
        let t = tempfile::tempdir().unwrap();
        fs::write(
            t.path().join(SPEC_FILE),
            "init: /init\nkernel-modules: [virtio_blk]\nkernel-modules-x86_64: [crc32c_intel]\n",
        )
        .unwrap();
        let s = Spec::load(t.path()).unwrap().unwrap();
        assert_eq!(
            s.for_arch("x86_64").kernel_modules,
            ["virtio_blk", "crc32c_intel"]
        );
        assert_eq!(s.for_arch("aarch64").kernel_modules, ["virtio_blk"]);
        fs::write(
            t.path().join(SPEC_FILE),
            "init: /init\nkernel-modules-x86-64: []\n",
        )
        .unwrap();
        assert!(Spec::load(t.path()).is_err());
    }
}
