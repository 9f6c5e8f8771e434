//! Build RPM packages and repositories from code, with the `rpm` crate and
//! `createrepo_c`. Used by the test suite, the benchmarks and (later) the
//! sample OS: every fixture is generated, never committed as a blob.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// What kind of entry a [`FileSpec`] is.
#[derive(Debug, Clone)]
pub enum FileKind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    /// `%ghost`: owned by the package, not in the payload.
    Ghost,
}

/// One entry of a package's payload.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub path: String,
    pub kind: FileKind,
    /// Permission bits, including setuid/setgid/sticky (e.g. `0o4755`).
    pub mode: u16,
    pub user: String,
    pub group: String,
    /// File capabilities in `cap_from_text` form, e.g. `cap_net_raw=ep`.
    pub caps: Option<String>,
    /// Regular files with the same hardlink set name become one inode.
    pub hardlink_set: Option<String>,
    pub config: bool,
    /// `%config(noreplace)` (implies `config`).
    pub noreplace: bool,
    /// Modification time (seconds since the epoch); None: the package's
    /// source date. Times after the source date are clamped to it.
    pub mtime: Option<u32>,
}

impl FileSpec {
    pub fn file(path: &str, content: impl Into<Vec<u8>>) -> FileSpec {
        FileSpec {
            path: path.into(),
            kind: FileKind::File(content.into()),
            mode: 0o644,
            user: "root".into(),
            group: "root".into(),
            caps: None,
            hardlink_set: None,
            config: false,
            noreplace: false,
            mtime: None,
        }
    }
    pub fn dir(path: &str) -> FileSpec {
        FileSpec {
            kind: FileKind::Dir,
            mode: 0o755,
            ..FileSpec::file(path, "")
        }
    }
    pub fn symlink(path: &str, target: &str) -> FileSpec {
        FileSpec {
            kind: FileKind::Symlink(target.into()),
            mode: 0o777,
            ..FileSpec::file(path, "")
        }
    }
    pub fn ghost(path: &str) -> FileSpec {
        FileSpec {
            kind: FileKind::Ghost,
            ..FileSpec::file(path, "")
        }
    }
    pub fn mode(mut self, mode: u16) -> Self {
        self.mode = mode;
        self
    }
    pub fn owner(mut self, user: &str, group: &str) -> Self {
        self.user = user.into();
        self.group = group.into();
        self
    }
    pub fn caps(mut self, caps: &str) -> Self {
        self.caps = Some(caps.into());
        self
    }
    pub fn hardlink(mut self, set: &str) -> Self {
        self.hardlink_set = Some(set.into());
        self
    }
    pub fn config(mut self) -> Self {
        self.config = true;
        self
    }
    /// `%config(noreplace)`, as Debian's conffiles behave.
    pub fn config_noreplace(mut self) -> Self {
        self.config = true;
        self.noreplace = true;
        self
    }
    pub fn mtime(mut self, t: u32) -> Self {
        self.mtime = Some(t);
        self
    }
}

/// A package to build. Dependency strings are `name`, `name OP evr`, or a
/// rich dependency `(a or b)`.
#[derive(Debug, Clone)]
pub struct PkgSpec {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub provides: Vec<String>,
    pub requires: Vec<String>,
    /// `Requires(pre)`.
    pub requires_pre: Vec<String>,
    pub conflicts: Vec<String>,
    pub obsoletes: Vec<String>,
    pub recommends: Vec<String>,
    pub suggests: Vec<String>,
    pub supplements: Vec<String>,
    pub enhances: Vec<String>,
    pub files: Vec<FileSpec>,
    pub pre: Option<String>,
    pub post: Option<String>,
    pub posttrans: Option<String>,
    /// Payload compression: `gzip`, `xz`, `zstd` or `none`.
    pub compression: String,
    /// Compression level; None for the fast default of each compressor.
    pub level: Option<u32>,
    /// Summary, description, license and URL headers; None: generated
    /// fixture texts (and license `MIT`).
    pub summary: Option<String>,
    pub description: Option<String>,
    pub license: Option<String>,
    pub url: Option<String>,
    /// Build time, and the latest file mtime kept; None: 1700000000.
    pub source_date: Option<u32>,
}

impl PkgSpec {
    pub fn new(name: &str, version: &str) -> PkgSpec {
        PkgSpec {
            name: name.into(),
            epoch: 0,
            version: version.into(),
            release: "1".into(),
            arch: "x86_64".into(),
            provides: vec![],
            requires: vec![],
            requires_pre: vec![],
            conflicts: vec![],
            obsoletes: vec![],
            recommends: vec![],
            suggests: vec![],
            supplements: vec![],
            enhances: vec![],
            files: vec![],
            pre: None,
            post: None,
            posttrans: None,
            compression: "zstd".into(),
            level: None,
            summary: None,
            description: None,
            license: None,
            url: None,
            source_date: None,
        }
    }
    pub fn epoch(mut self, e: u32) -> Self {
        self.epoch = e;
        self
    }
    pub fn release(mut self, r: &str) -> Self {
        self.release = r.into();
        self
    }
    pub fn arch(mut self, a: &str) -> Self {
        self.arch = a.into();
        self
    }
    pub fn provides(mut self, d: &str) -> Self {
        self.provides.push(d.into());
        self
    }
    pub fn requires(mut self, d: &str) -> Self {
        self.requires.push(d.into());
        self
    }
    pub fn requires_pre(mut self, d: &str) -> Self {
        self.requires_pre.push(d.into());
        self
    }
    pub fn conflicts(mut self, d: &str) -> Self {
        self.conflicts.push(d.into());
        self
    }
    pub fn obsoletes(mut self, d: &str) -> Self {
        self.obsoletes.push(d.into());
        self
    }
    pub fn recommends(mut self, d: &str) -> Self {
        self.recommends.push(d.into());
        self
    }
    pub fn suggests(mut self, d: &str) -> Self {
        self.suggests.push(d.into());
        self
    }
    pub fn supplements(mut self, d: &str) -> Self {
        self.supplements.push(d.into());
        self
    }
    pub fn enhances(mut self, d: &str) -> Self {
        self.enhances.push(d.into());
        self
    }
    pub fn file(mut self, f: FileSpec) -> Self {
        self.files.push(f);
        self
    }
    pub fn pre(mut self, s: &str) -> Self {
        self.pre = Some(s.into());
        self
    }
    pub fn post(mut self, s: &str) -> Self {
        self.post = Some(s.into());
        self
    }
    pub fn posttrans(mut self, s: &str) -> Self {
        self.posttrans = Some(s.into());
        self
    }
    pub fn compression(mut self, c: &str) -> Self {
        self.compression = c.into();
        self
    }

    /// `name-version-release.arch.rpm`
    pub fn filename(&self) -> String {
        format!(
            "{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }

    fn builder(&self) -> Result<rpm::PackageBuilder> {
        // Fast levels by default (zstd 3, xz 2, gzip 6): decompression, which
        // is what cosa does, costs about the same as at rpm's default levels,
        // and fixtures of a GiB build in seconds instead of an hour.
        let compression = match self.compression.as_str() {
            "gzip" => rpm::CompressionWithLevel::Gzip(self.level.unwrap_or(6)),
            "xz" => rpm::CompressionWithLevel::Xz(self.level.unwrap_or(2)),
            "zstd" => rpm::CompressionWithLevel::Zstd(self.level.unwrap_or(3) as i32),
            "none" => rpm::CompressionWithLevel::None,
            other => bail!("unknown payload compression {other:?}"),
        };
        let config = rpm::BuildConfig::v4()
            .compression(compression)
            .source_date(self.source_date.unwrap_or(1_700_000_000u32));
        let summary = match &self.summary {
            Some(s) => s.clone(),
            None => format!("{} test package", self.name),
        };
        let mut b = rpm::PackageBuilder::new(
            &self.name,
            &self.version,
            self.license.as_deref().unwrap_or("MIT"),
            &self.arch,
            &summary,
        );
        b.using_config(config);
        b.release(self.release.clone());
        if self.epoch != 0 {
            b.epoch(self.epoch);
        }
        match &self.description {
            Some(d) => b.description(d.clone()),
            None => b.description(format!("Generated fixture package {}", self.name)),
        };
        if let Some(u) = &self.url {
            b.url(u.clone());
        }
        for d in &self.provides {
            b.provides(dependency(d)?);
        }
        for d in &self.requires {
            b.requires(dependency(d)?);
        }
        for d in &self.requires_pre {
            let mut dep = dependency(d)?;
            dep.flags |= rpm::DependencyFlags::SCRIPT_PRE;
            b.requires(dep);
        }
        for d in &self.conflicts {
            b.conflicts(dependency(d)?);
        }
        for d in &self.obsoletes {
            b.obsoletes(dependency(d)?);
        }
        for d in &self.recommends {
            b.recommends(dependency(d)?);
        }
        for d in &self.suggests {
            b.suggests(dependency(d)?);
        }
        for d in &self.supplements {
            b.supplements(dependency(d)?);
        }
        for d in &self.enhances {
            b.enhances(dependency(d)?);
        }
        if let Some(s) = &self.pre {
            b.pre_install_script(rpm::Scriptlet::new(s.clone()).prog(vec!["/bin/sh"]));
        }
        if let Some(s) = &self.post {
            b.post_install_script(rpm::Scriptlet::new(s.clone()).prog(vec!["/bin/sh"]));
        }
        if let Some(s) = &self.posttrans {
            b.post_trans_script(rpm::Scriptlet::new(s.clone()).prog(vec!["/bin/sh"]));
        }
        for f in &self.files {
            add_file(&mut b, f).with_context(|| format!("adding {} to {}", f.path, self.name))?;
        }
        Ok(b)
    }

    /// Build the package into `dir`, returning the path of the .rpm.
    pub fn build(&self, dir: &Path) -> Result<PathBuf> {
        let pkg = self
            .builder()?
            .build()
            .with_context(|| format!("building package {}", self.name))?;
        let path = dir.join(self.filename());
        pkg.write_file(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Build and sign with an armored OpenPGP secret key.
    pub fn build_signed(&self, dir: &Path, secret_key_asc: &[u8]) -> Result<PathBuf> {
        let signer = rpm::signature::pgp::Signer::from_asc_bytes(secret_key_asc)
            .context("loading signing key")?;
        let pkg = self
            .builder()?
            .build_and_sign(signer)
            .with_context(|| format!("building signed package {}", self.name))?;
        let path = dir.join(self.filename());
        pkg.write_file(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

fn add_file(b: &mut rpm::PackageBuilder, f: &FileSpec) -> Result<()> {
    let mtime = |o: rpm::FileOptionsBuilder| match f.mtime {
        Some(t) => o.modified_at(rpm::Timestamp::from(t)),
        None => o,
    };
    match &f.kind {
        FileKind::File(content) => {
            let mut o = mtime(rpm::FileOptions::new(f.path.clone()))
                .permissions(f.mode)
                .user(f.user.clone())
                .group(f.group.clone());
            if let Some(c) = &f.caps {
                o = o.caps(c.clone())?;
            }
            if let Some(h) = &f.hardlink_set {
                o = o.hardlink(h.clone());
            }
            if f.config {
                o = o.config();
            }
            if f.noreplace {
                o = o.noreplace();
            }
            b.with_file_contents(content.clone(), o)?;
        }
        FileKind::Dir => {
            b.with_dir_entry(
                mtime(rpm::FileOptions::dir(f.path.clone()))
                    .permissions(f.mode)
                    .user(f.user.clone())
                    .group(f.group.clone()),
            )?;
        }
        FileKind::Symlink(target) => {
            b.with_symlink(
                mtime(rpm::FileOptions::symlink(f.path.clone(), target.clone()))
                    .user(f.user.clone())
                    .group(f.group.clone()),
            )?;
        }
        FileKind::Ghost => {
            b.with_ghost(rpm::FileOptions::ghost(f.path.clone()).permissions(f.mode))?;
        }
    }
    Ok(())
}

/// Turn `name`, `name OP evr` or `(rich)` into an rpm crate dependency.
pub fn dependency(spec: &str) -> Result<rpm::Dependency> {
    let spec = spec.trim();
    if spec.starts_with('(') {
        return Ok(rpm::Dependency::any(spec));
    }
    let parts: Vec<&str> = spec.split_whitespace().collect();
    Ok(match parts.as_slice() {
        [name] => rpm::Dependency::any(*name),
        [name, "=", v] | [name, "==", v] => rpm::Dependency::eq(*name, *v),
        [name, "<", v] => rpm::Dependency::less(*name, *v),
        [name, "<=", v] => rpm::Dependency::less_eq(*name, *v),
        [name, ">", v] => rpm::Dependency::greater(*name, *v),
        [name, ">=", v] => rpm::Dependency::greater_eq(*name, *v),
        _ => bail!("cannot parse dependency {spec:?}"),
    })
}

/// Metadata compression for [`createrepo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoCompression {
    Gz,
    Xz,
    Zstd,
}

/// Run `createrepo_c` on `dir` (which holds .rpm files), writing `dir/repodata`.
///
/// Debian's createrepo_c 0.17 cannot write zstd, so for
/// [`RepoCompression::Zstd`] it writes gzip and the metadata files are then
/// recompressed here, with their repomd.xml entries rewritten.
pub fn createrepo(dir: &Path, compression: RepoCompression) -> Result<()> {
    let c = match compression {
        RepoCompression::Gz | RepoCompression::Zstd => "gz",
        RepoCompression::Xz => "xz",
    };
    let out = std::process::Command::new("createrepo_c")
        .args([
            "--quiet",
            "--no-database",
            "--simple-md-filenames",
            "--general-compress-type",
            c,
        ])
        .arg(dir)
        .output()
        .context("running createrepo_c (install the createrepo-c package)")?;
    if !out.status.success() {
        bail!(
            "createrepo_c {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if compression != RepoCompression::Zstd {
        return Ok(());
    }
    use sha2::Digest;
    use std::io::Read;
    let sha256 = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    let repodata = dir.join("repodata");
    let repomd_path = repodata.join("repomd.xml");
    let mut repomd = std::fs::read_to_string(&repomd_path)
        .with_context(|| format!("reading {}", repomd_path.display()))?;
    for kind in ["primary", "filelists", "other"] {
        let gz = repodata.join(format!("{kind}.xml.gz"));
        let mut xml = Vec::new();
        flate2::read::MultiGzDecoder::new(
            std::fs::File::open(&gz).with_context(|| format!("opening {}", gz.display()))?,
        )
        .read_to_end(&mut xml)
        .with_context(|| format!("decompressing {}", gz.display()))?;
        let zst = zstd::encode_all(&xml[..], 3).context("zstd compression")?;
        let zst_path = repodata.join(format!("{kind}.xml.zst"));
        std::fs::write(&zst_path, &zst)
            .with_context(|| format!("writing {}", zst_path.display()))?;
        std::fs::remove_file(&gz).with_context(|| format!("removing {}", gz.display()))?;
        // Replace the whole <data type="kind"> block, keeping its timestamp.
        let open_tag = format!("<data type=\"{kind}\">");
        let start = repomd
            .find(&open_tag)
            .with_context(|| format!("no {kind} entry in {}", repomd_path.display()))?;
        let len = repomd[start..]
            .find("</data>")
            .with_context(|| format!("unterminated {kind} entry in repomd.xml"))?
            + "</data>".len();
        let block = &repomd[start..start + len];
        let timestamp = block
            .split_once("<timestamp>")
            .and_then(|(_, rest)| rest.split_once("</timestamp>"))
            .map(|(t, _)| t.to_string())
            .unwrap_or_else(|| "0".into());
        let new_block = format!(
            "{open_tag}\n    <checksum type=\"sha256\">{}</checksum>\n    \
             <open-checksum type=\"sha256\">{}</open-checksum>\n    \
             <location href=\"repodata/{kind}.xml.zst\"/>\n    \
             <timestamp>{timestamp}</timestamp>\n    <size>{}</size>\n    \
             <open-size>{}</open-size>\n  </data>",
            sha256(&zst),
            sha256(&xml),
            zst.len(),
            xml.len()
        );
        repomd.replace_range(start..start + len, &new_block);
    }
    std::fs::write(&repomd_path, repomd)
        .with_context(|| format!("writing {}", repomd_path.display()))?;
    Ok(())
}

/// Build every spec into `dir` and make it a repository.
pub fn make_repo(
    dir: &Path,
    specs: &[PkgSpec],
    compression: RepoCompression,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let paths = specs
        .iter()
        .map(|s| s.build(dir))
        .collect::<Result<Vec<_>>>()?;
    check_with_rpm(&paths, specs)?;
    createrepo(dir, compression)?;
    Ok(paths)
}

/// Read every built package back with Debian's `rpm -qp` (one process for
/// all) and check that it names the NEVRA and file count the spec asked for.
pub fn check_with_rpm(paths: &[PathBuf], specs: &[PkgSpec]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let out = std::process::Command::new("rpm")
        .args(["-qp", "--nosignature", "--nodigest", "--qf"])
        .arg("%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH} [%{FILENAMES}|]\n")
        .args(paths)
        .output()
        .context("running rpm -qp (install the rpm package)")?;
    if !out.status.success() {
        bail!(
            "rpm -qp rejected a generated package: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != specs.len() {
        bail!(
            "rpm -qp read {} packages, {} were built",
            lines.len(),
            specs.len()
        );
    }
    for (line, spec) in lines.iter().zip(specs) {
        let want = format!(
            "{}-{}:{}-{}.{}",
            spec.name, spec.epoch, spec.version, spec.release, spec.arch
        );
        let (nevra, files) = line.split_once(' ').unwrap_or((line, ""));
        if nevra != want {
            bail!("rpm -qp reads {nevra}, the spec was {want}");
        }
        let n = files
            .split('|')
            .filter(|f| !f.is_empty() && *f != "(none)")
            .count();
        if n != spec.files.len() {
            bail!(
                "rpm -qp lists {n} files in {want}, the spec has {}",
                spec.files.len()
            );
        }
    }
    Ok(())
}
