//! kola test discovery in the config repo, in upstream's format
//! (coreos-assembler `docs/kola/external-tests.md`, `mantle/kola/harness.go`):
//!
//! - `tests/kola/` is walked recursively. In each directory every regular
//!   file executable by others (`o+x`, as upstream checks) is a test;
//!   `config.ign` (or Butane `config.bu`) beside it is its Ignition
//!   config, `kola.json` its metadata, and `data/` (a directory or a
//!   symlink to one) is copied into the machine and named by
//!   `KOLA_EXT_DATA`. Any other directory is walked for more tests.
//! - Names: `ext.config.<directories joined by dots>.<executable>`; a
//!   directory whose only executable is `test.sh` names the test alone.
//! - Metadata inline in the executable wins over `kola.json`: a
//!   `# kola: {json}` line, or a `## kola:` line followed by `## ` lines
//!   holding YAML (JSON is YAML too). Unknown keys are refused, as upstream
//!   refuses them.
//!
//! Selection by glob patterns and `--tag` follows upstream's
//! `filterTests`; the denylist is `kola-denylist.yaml` with upstream's keys.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

/// The prefix of the config repo's external tests (upstream's `-E
/// src/config` with prefix `ext.config`).
pub const PREFIX: &str = "ext.config";
/// The test of a directory that names the test alone.
pub const DEFAULT_TEST: &str = "test.sh";
/// The directory copied into the machine for the test.
pub const DATA_DIR: &str = "data";
/// Every external test carries this tag.
pub const EXTERNAL_TAG: &str = "external";
/// The distribution our tests run on, for the `distros` key: the sample
/// OS is Fedora CoreOS-like.
pub const DISTRO: &str = "fcos";
/// Upstream reads at most this many bytes of an executable for its
/// metadata.
const META_SCAN_BYTES: usize = 8192;

/// A test's metadata: `kola.json` or the inline `kola:` block. The keys
/// are upstream's; `architectures`, `platforms`, `distros` and `tags` are
/// whitespace-separated lists, `!` first meaning "all but these".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TestMeta {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub architectures: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platforms: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub distros: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tags: String,
    /// The test runs only when this tag is asked for with `--tag`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub required_tag: String,
    /// Extra disks (`5G`, `1G:mpath`...), as `cosa qemuexec --add-disk`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_disks: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub primary_disk: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inject_container: bool,
    /// MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_memory: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub numa_nodes: bool,
    /// GiB.
    #[serde(rename = "minDisk", skip_serializing_if = "Option::is_none")]
    pub min_disk: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_nics: Option<u32>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub append_kernel_args: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub append_firstboot_kernel_args: String,
    /// Run alone in its own machine (upstream's default: true).
    pub exclusive: bool,
    /// Minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_min: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_config_warnings: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_instance_creds: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instance_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(rename = "bindMountHostRO", skip_serializing_if = "Vec::is_empty")]
    pub bind_mount_host_ro: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub creation_date: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub boot_from: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required_host_ports: Vec<u16>,
}

impl Default for TestMeta {
    /// Upstream's defaults: exclusive, everything else empty.
    fn default() -> TestMeta {
        TestMeta {
            architectures: String::new(),
            platforms: String::new(),
            distros: String::new(),
            tags: String::new(),
            required_tag: String::new(),
            additional_disks: Vec::new(),
            primary_disk: String::new(),
            inject_container: false,
            min_memory: None,
            numa_nodes: false,
            min_disk: None,
            additional_nics: None,
            append_kernel_args: String::new(),
            append_firstboot_kernel_args: String::new(),
            exclusive: true,
            timeout_min: None,
            conflicts: Vec::new(),
            allow_config_warnings: false,
            no_instance_creds: false,
            instance_type: String::new(),
            description: String::new(),
            bind_mount_host_ro: Vec::new(),
            creation_date: String::new(),
            boot_from: String::new(),
            required_host_ports: Vec::new(),
        }
    }
}

impl TestMeta {
    /// The test's tags: `external` and the `tags` list.
    pub fn tag_list(&self) -> Vec<String> {
        std::iter::once(EXTERNAL_TAG.to_string())
            .chain(self.tags.split_whitespace().map(String::from))
            .collect()
    }

    /// Why the test does not run on `arch`/`platform` (None: it does).
    pub fn excluded_on(&self, arch: &str, platform: &str) -> Option<String> {
        for (key, list, value) in [
            ("architectures", &self.architectures, arch),
            ("platforms", &self.platforms, platform),
            ("distros", &self.distros, DISTRO),
        ] {
            if !list_allows(list, value) {
                return Some(format!("{key} {list:?} excludes {value}"));
            }
        }
        None
    }
}

/// One `additionalDisks` entry, `SIZE[:OPT,...]` as upstream's kola
/// `ParseDisk` reads it (coreos-assembler `mantle/platform/qemu.go`): an
/// empty disk of SIZE beside the boot disk. SIZE is a whole number with
/// `K`, `M`, `G` or `T` (powers of 1024; upstream takes `G` only). The
/// options taken are upstream's `4k` (4096-byte sectors), `512e`
/// (4096-byte physical, 512-byte logical sectors), `serial=NAME` and
/// `channel=virtio`; `mpath`, `wwn=`, other channels and unknown options
/// are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// Bytes.
    pub size: u64,
    /// `serial=`: the guest sees `/dev/disk/by-id/virtio-<serial>` (None:
    /// upstream's `disk<N>`, N counting the extra disks from 1).
    pub serial: Option<String>,
    /// Physical and logical sector sizes in bytes (None: QEMU's 512).
    pub sectors: Option<(u32, u32)>,
}

/// The longest serial a virtio-blk disk carries (bytes; longer ones are
/// cut off by the device, so `/dev/disk/by-id` would not say it).
pub const DISK_SERIAL_MAX: usize = 20;

impl DiskSpec {
    /// Read one `additionalDisks` entry; the error names the entry and
    /// what is wrong with it (the caller adds the test).
    pub fn parse(spec: &str) -> Result<DiskSpec> {
        let (size, opts) = match spec.split_once(':') {
            Some((size, opts)) => (size, Some(opts)),
            None => (spec, None),
        };
        let size = parse_size(size).with_context(|| format!("additionalDisks entry {spec:?}"))?;
        let mut d = DiskSpec {
            size,
            serial: None,
            sectors: None,
        };
        for opt in opts.into_iter().flat_map(|o| o.split(',')) {
            d.apply_option(opt)
                .with_context(|| format!("additionalDisks entry {spec:?}"))?;
        }
        Ok(d)
    }

    fn apply_option(&mut self, opt: &str) -> Result<()> {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (key, value) {
            ("4k", None) => self.sectors = Some((4096, 4096)),
            ("512e", None) => self.sectors = Some((4096, 512)),
            ("serial", Some(s)) => {
                ensure!(
                    !s.is_empty()
                        && s.len() <= DISK_SERIAL_MAX
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "serial {s:?} must be 1 to {DISK_SERIAL_MAX} letters, digits, - or _"
                );
                self.serial = Some(s.to_string());
            }
            ("channel", Some("virtio")) => {}
            ("channel", Some(other)) => bail!(
                "option channel={other} is not supported by cosa kola (only virtio disks are \
                 attached)"
            ),
            ("mpath", None) => bail!(
                "option mpath (a multipath disk) is not supported by cosa kola; denylist the \
                 test or drop the option"
            ),
            ("wwn", Some(_)) => bail!(
                "option {opt} is not supported by cosa kola (a WWN needs a SCSI disk; only \
                 virtio disks are attached)"
            ),
            ("", None) => bail!("an empty option"),
            _ => bail!("unknown option {opt:?} (known: 4k, 512e, serial=NAME, channel=virtio)"),
        }
        Ok(())
    }
}

/// A disk size: a whole number with `K`, `M`, `G` or `T` (powers of 1024).
fn parse_size(s: &str) -> Result<u64> {
    let shift = match s.as_bytes().last() {
        Some(b'K') => 10,
        Some(b'M') => 20,
        Some(b'G') => 30,
        Some(b'T') => 40,
        _ => bail!("size {s:?} needs a unit: K, M, G or T (as 5G or 512M)"),
    };
    let n: u64 = s[..s.len() - 1]
        .parse()
        .map_err(|_| anyhow::anyhow!("size {s:?} is not a whole number with a unit (as 5G)"))?;
    ensure!(n > 0, "size {s:?} is zero");
    n.checked_mul(1 << shift)
        .with_context(|| format!("size {s:?} is too large"))
}

/// Whether a whitespace-separated list allows `value`: an empty list
/// allows everything, `!a b` everything but a and b.
fn list_allows(list: &str, value: &str) -> bool {
    let list = list.trim();
    if list.is_empty() {
        return true;
    }
    match list.strip_prefix('!') {
        Some(rest) => !rest.split_whitespace().any(|v| v == value),
        None => list.split_whitespace().any(|v| v == value),
    }
}

/// A test's Ignition config file.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub enum ConfigFile {
    Ignition(PathBuf),
    Butane(PathBuf),
}

impl ConfigFile {
    pub fn path(&self) -> &Path {
        match self {
            ConfigFile::Ignition(p) | ConfigFile::Butane(p) => p,
        }
    }
}

/// One external test.
#[derive(Clone, Debug, Serialize)]
pub struct ExtTest {
    pub name: String,
    /// The executable.
    pub exe: PathBuf,
    /// `data/` beside it (a symlink resolved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigFile>,
    pub tags: Vec<String>,
    pub meta: TestMeta,
}

/// The external tests of the config repo at `config_dir`
/// (`tests/kola/`; none when it has no such directory), sorted by name.
pub fn discover(config_dir: &Path) -> Result<Vec<ExtTest>> {
    discover_in(&config_dir.join("tests/kola"), PREFIX)
}

/// The tests under `dir`, named `prefix.<...>`.
pub fn discover_in(dir: &Path, prefix: &str) -> Result<Vec<ExtTest>> {
    let mut tests = Vec::new();
    if dir.exists() {
        walk(dir, prefix, &mut tests)?;
    }
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = tests.windows(2).find(|w| w[0].name == w[1].name) {
        bail!(
            "two tests are named {}: {} and {}",
            w[0].name,
            w[0].exe.display(),
            w[1].exe.display()
        );
    }
    Ok(tests)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<ExtTest>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    let (mut exes, mut data, mut config, mut dir_meta) = (Vec::new(), None, None, None);
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        // Symlinks are followed, as upstream follows them.
        let md = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        if md.is_file() && md.permissions().mode() & 0o001 != 0 {
            exes.push(path);
        } else if md.is_file() && name == "config.ign" {
            config = Some(ConfigFile::Ignition(path));
        } else if md.is_file() && name == "config.bu" {
            config = Some(ConfigFile::Butane(path));
        } else if md.is_file() && name == "config.fcc" {
            bail!(
                "{}: Fedora CoreOS Config files are not read anymore; rename it to config.bu",
                path.display()
            );
        } else if md.is_file() && name == "kola.json" {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut de = serde_json::Deserializer::from_str(&text);
            let meta: TestMeta = serde::Deserialize::deserialize(&mut de)
                .with_context(|| format!("parsing {}", path.display()))?;
            dir_meta = Some(meta);
        } else if md.is_dir() && name == DATA_DIR {
            data = Some(
                path.canonicalize()
                    .with_context(|| format!("resolving {}", path.display()))?,
            );
        } else if md.is_dir() {
            walk(&path, &format!("{prefix}.{name}"), out)?;
        } else if md.is_file() && starts_with_shebang(&path) {
            tracing::warn!(
                "{} starts with #! but is not executable (chmod a+x) and is no test",
                path.display()
            );
        }
    }
    let single = exes.len() == 1;
    for exe in exes {
        let base = exe.file_name().unwrap_or_default().to_string_lossy();
        let name = if single && base == DEFAULT_TEST {
            prefix.to_string()
        } else {
            format!("{prefix}.{base}")
        };
        let meta = match inline_meta(&exe)? {
            Some(m) => m,
            None => dir_meta.clone().unwrap_or_default(),
        };
        out.push(ExtTest {
            name,
            tags: meta.tag_list(),
            exe,
            data: data.clone(),
            config: config.clone(),
            meta,
        });
    }
    Ok(())
}

fn starts_with_shebang(path: &Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
        && &b == b"#!"
}

/// The metadata written in the executable `exe` (its first 8 KiB): a
/// `# kola: {json}` line, or `## kola:` and the `## ` lines after it as
/// YAML. None when it has none. Errors name the file and line.
pub fn inline_meta(exe: &Path) -> Result<Option<TestMeta>> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(exe)
        .and_then(|f| f.take(META_SCAN_BYTES as u64).read_to_end(&mut head))
        .with_context(|| format!("reading {}", exe.display()))?;
    let text = String::from_utf8_lossy(&head);
    let mut yaml: Option<(usize, String)> = None;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let lineno = i + 1;
        let bare = line.trim_end_matches(['\n', '\r']);
        if let Some(json) = bare.strip_prefix("# kola:") {
            ensure!(
                yaml.is_none(),
                "{}:{lineno}: both `## kola:` (YAML) and `# kola:` (JSON) metadata",
                exe.display()
            );
            let meta: TestMeta = serde_json::from_str(json.trim()).map_err(|e| {
                anyhow::anyhow!(
                    "{}:{lineno}: bad `# kola:` metadata (one line of JSON): {e}",
                    exe.display()
                )
            })?;
            return Ok(Some(meta));
        }
        if let Some(rest) = bare.strip_prefix("## kola:") {
            ensure!(
                yaml.is_none(),
                "{}:{lineno}: a second `## kola:` block",
                exe.display()
            );
            yaml = Some((lineno, format!("{rest}\n")));
            continue;
        }
        if let Some((_, buf)) = yaml.as_mut() {
            match bare.strip_prefix("## ") {
                Some(l) => {
                    buf.push_str(l);
                    buf.push('\n');
                }
                None if bare == "##" => buf.push('\n'),
                None => break,
            }
        }
    }
    let Some((start, buf)) = yaml else {
        return Ok(None);
    };
    if buf.trim().is_empty() {
        return Ok(Some(TestMeta::default()));
    }
    serde_yaml::from_str::<TestMeta>(&buf)
        .map(Some)
        .map_err(|e| {
            // The YAML's line 1 is the `## kola:` line itself.
            let at = e
                .location()
                .map(|l| format!("{}", start + l.line() - 1))
                .unwrap_or_else(|| format!("{start}"));
            anyhow::anyhow!("{}:{at}: bad `## kola:` metadata: {e}", exe.display())
        })
}

/// Whether `name` matches one of the glob `patterns` (`*`, `?`, `[...]`;
/// `*` matches dots too, as in upstream's `filepath.Match` on test names).
pub fn matches_any(name: &str, patterns: &[String]) -> Result<bool> {
    for p in patterns {
        let g = globset::Glob::new(p)
            .with_context(|| format!("bad test pattern {p:?}"))?
            .compile_matcher();
        if g.is_match(name) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What `cosa kola run` was asked for.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Glob patterns of test names (none: every test).
    pub patterns: Vec<String>,
    /// `--tag`: tests with one of these tags; `!tag` leaves tests with it out.
    pub tags: Vec<String>,
    pub arch: String,
    pub platform: String,
}

/// What selection did with one test.
#[derive(Clone, Debug, PartialEq)]
pub enum Choice {
    Run,
    /// Not run; why (arch, platform, required tag...).
    Excluded(String),
    /// Not asked for by pattern or tag.
    NotSelected,
}

/// Upstream's `filterTests` for one test: name patterns, tags (positive
/// ones widen a typed pattern, `!tag` excludes), `requiredTag`, then
/// architecture, platform and distribution.
pub fn choose(name: &str, tags: &[String], meta: &TestMeta, sel: &Selection) -> Result<Choice> {
    let (neg, pos): (Vec<&str>, Vec<&str>) = sel
        .tags
        .iter()
        .map(String::as_str)
        .partition(|t| t.starts_with('!'));
    if neg.iter().any(|t| tags.iter().any(|x| x == &t[1..])) {
        return Ok(Choice::NotSelected);
    }
    let typed = !sel.patterns.is_empty() && !sel.patterns.iter().any(|p| p == "*");
    let name_match = !typed || matches_any(name, &sel.patterns)?;
    let tag_match = pos
        .iter()
        .any(|t| tags.iter().any(|x| x == t) || *t == meta.required_tag);
    if typed {
        if !name_match && !tag_match {
            return Ok(Choice::NotSelected);
        }
    } else if !pos.is_empty() && !tag_match {
        return Ok(Choice::NotSelected);
    }
    if !meta.required_tag.is_empty() && !pos.contains(&meta.required_tag.as_str()) {
        return Ok(Choice::Excluded(format!(
            "needs --tag {}",
            meta.required_tag
        )));
    }
    Ok(match meta.excluded_on(&sel.arch, &sel.platform) {
        Some(why) => Choice::Excluded(why),
        None => Choice::Run,
    })
}

/// One `kola-denylist.yaml` entry (upstream's keys).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DenyEntry {
    /// A glob of test names.
    pub pattern: String,
    /// Where the failure is tracked (an issue URL).
    pub tracker: String,
    /// Only on these streams (empty: all).
    pub streams: Vec<String>,
    /// Only on these OS versions (older denylists; empty: all).
    pub osversion: Vec<String>,
    /// Only on these architectures (empty: all).
    pub arches: Vec<String>,
    /// Only on these platforms (empty: all).
    pub platforms: Vec<String>,
    /// Denied until this date (YYYY-MM-DD), run after it.
    pub snooze: Option<String>,
    /// Run it, but a failure only warns.
    pub warn: bool,
}

/// Where the build stands, for the denylist's scoping keys.
#[derive(Clone, Debug, Default)]
pub struct DenyScope {
    pub arch: String,
    pub platform: String,
    /// None: unknown; entries scoped to streams do not apply.
    pub stream: Option<String>,
    pub osversion: Option<String>,
    /// Today as YYYY-MM-DD (ISO dates compare as text).
    pub today: String,
}

/// The denylist as it applies to one run.
#[derive(Clone, Debug, Default)]
pub struct Denylist {
    /// Entries that skip their tests.
    pub deny: Vec<DenyEntry>,
    /// Entries whose tests run and only warn on failure.
    pub warn: Vec<DenyEntry>,
}

impl Denylist {
    /// Read `path` (a YAML list of entries) and keep what applies in
    /// `scope`. A missing file is an empty denylist.
    pub fn load(path: &Path, scope: &DenyScope) -> Result<Denylist> {
        if !path.exists() {
            return Ok(Denylist::default());
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let entries: Vec<DenyEntry> = if text.trim().is_empty() {
            Vec::new()
        } else {
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        };
        Denylist::from_entries(entries, scope).with_context(|| format!("in {}", path.display()))
    }

    pub fn from_entries(entries: Vec<DenyEntry>, scope: &DenyScope) -> Result<Denylist> {
        let mut d = Denylist::default();
        let scoped = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
        };
        for e in entries {
            ensure!(!e.pattern.is_empty(), "a denylist entry has no pattern");
            globset::Glob::new(&e.pattern)
                .with_context(|| format!("bad denylist pattern {:?}", e.pattern))?;
            if !scoped(&e.arches, Some(&scope.arch))
                || !scoped(&e.platforms, Some(&scope.platform))
                || !scoped(&e.streams, scope.stream.as_deref())
                || !scoped(&e.osversion, scope.osversion.as_deref())
            {
                continue;
            }
            if let Some(s) = &e.snooze {
                ensure!(
                    s.len() == 10
                        && s.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 {
                            b == b'-'
                        } else {
                            b.is_ascii_digit()
                        }),
                    "snooze date {s:?} of {} is not YYYY-MM-DD",
                    e.pattern
                );
                // Denied before the date; from that day on it runs again.
                if scope.today.as_str() < s.as_str() {
                    d.deny.push(e);
                } else if e.warn {
                    d.warn.push(e);
                }
                continue;
            }
            if e.warn {
                d.warn.push(e);
            } else {
                d.deny.push(e);
            }
        }
        Ok(d)
    }

    /// The entry that denies `name`, if any.
    pub fn denied(&self, name: &str) -> Option<&DenyEntry> {
        self.deny
            .iter()
            .find(|e| matches_any(name, std::slice::from_ref(&e.pattern)).unwrap_or(false))
    }

    /// The entry under which a failure of `name` only warns, if any.
    pub fn warns(&self, name: &str) -> Option<&DenyEntry> {
        self.warn
            .iter()
            .find(|e| matches_any(name, std::slice::from_ref(&e.pattern)).unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_specs_in_upstream_syntax() {
        let d = DiskSpec::parse("5G").unwrap();
        assert_eq!((d.size, d.serial, d.sectors), (5 << 30, None, None));
        assert_eq!(DiskSpec::parse("512M").unwrap().size, 512 << 20);
        assert_eq!(DiskSpec::parse("1T").unwrap().size, 1 << 40);
        let d = DiskSpec::parse("10G:4k,serial=data_1,channel=virtio").unwrap();
        assert_eq!(d.size, 10 << 30);
        assert_eq!(d.serial.as_deref(), Some("data_1"));
        assert_eq!(d.sectors, Some((4096, 4096)));
        assert_eq!(
            DiskSpec::parse("1G:512e").unwrap().sectors,
            Some((4096, 512))
        );
    }

    #[test]
    fn bad_disk_specs_name_the_entry_and_the_problem() {
        let err = |s: &str| format!("{:#}", DiskSpec::parse(s).unwrap_err());
        for (spec, want) in [
            ("5", "needs a unit"),
            ("", "needs a unit"),
            ("G", "not a whole number"),
            ("1.5G", "not a whole number"),
            ("-1G", "not a whole number"),
            ("0G", "is zero"),
            ("99999999999T", "too large"),
            ("5G:mpath", "mpath (a multipath disk) is not supported"),
            ("5G:channel=nvme", "channel=nvme is not supported"),
            ("5G:wwn=1", "wwn=1 is not supported"),
            ("5G:fast", "unknown option \"fast\""),
            ("5G:4k=1", "unknown option \"4k=1\""),
            ("5G:", "an empty option"),
            ("5G:serial=a,b", "unknown option \"b\""),
            ("5G:serial=has space", "must be 1 to 20"),
            ("5G:serial=", "must be 1 to 20"),
            ("5G:serial=abcdefghijklmnopqrstu", "must be 1 to 20"),
        ] {
            let e = err(spec);
            assert!(
                e.contains(&format!("additionalDisks entry {spec:?}")) && e.contains(want),
                "{spec}: {e}"
            );
        }
    }
}
