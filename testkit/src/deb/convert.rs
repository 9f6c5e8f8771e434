//! One .deb -> one .rpm, and a closure of them -> an rpm repository.
//!
//! Fields:
//!
//! | Debian                | rpm                                          |
//! |-----------------------|----------------------------------------------|
//! | Package               | Name                                         |
//! | Version               | Epoch / Version / Release (see [`version`])  |
//! | Architecture          | Arch (`all` -> `noarch`, `amd64` -> `x86_64`)|
//! | Description           | Summary (first line), Description (the rest) |
//! | Homepage              | URL                                          |
//! | Depends               | Requires                                     |
//! | Pre-Depends           | Requires(pre)                                |
//! | Recommends / Suggests / Enhances | Recommends / Suggests / Enhances  |
//! | Conflicts, Breaks     | Conflicts                                    |
//! | Provides              | Provides (`(= v)` kept, mapped; unversioned: `= own EVR`) |
//! | Replaces              | ignored                                      |
//! | conffiles             | `%config(noreplace)`                         |
//!
//! Replaces is ignored: it only lets dpkg hand files over between
//! packages, which rpm has no declaration for (Obsoletes would remove the
//! replaced package, a different meaning). Breaks becomes Conflicts, the
//! nearest rpm has (both forbid the two packages installed together).
//! Maintainer scripts are not converted (they call dpkg, debconf,
//! update-alternatives...); [`Converted::maintainer_scripts`] says which
//! packages had them. License is not in a Debian control file: the
//! License header points at the package's copyright file.
//!
//! Unversioned Provides: Debian never lets one satisfy (or conflict with)
//! a versioned relation; rpm lets an unversioned provide match every
//! version. Kept unversioned, perl-base's `Breaks: perl-modules (<<
//! 5.36.0~)` would conflict with perl-modules-5.36's `Provides:
//! perl-modules` and the closure of `rpm` would not resolve. So an
//! unversioned Provides gets the providing package's own EVR (`Provides:
//! perl-modules = 5.36.0-7+deb12u4`), which keeps the common transition
//! pattern (`Breaks: old (<< V)` with a newer package providing `old`)
//! conflict-free. The remaining gap: a versioned Depends on a virtual
//! package may now be satisfied by such a provider where dpkg would want a
//! real package or a versioned provide (dnf may pick another provider than
//! apt did; never a missing dependency).
//!
//! [`version`]: super::version

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::control::{Paragraph, field_to_rpm, parse_relations};
use super::payload::{ControlInfo, read_control, read_payload};
use super::version::rpm_evr;
use crate::fixture::{PkgSpec, RepoCompression, createrepo};
use crate::sample::debian::rpm_arch;

/// What became of one .deb.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Converted {
    /// The Debian (and rpm) package name.
    pub name: String,
    /// The Debian version, as written.
    pub deb_version: String,
    /// The .rpm's file name (`name-version-release.arch.rpm`).
    pub rpm_file: String,
    /// Maintainer scripts the .deb had and the .rpm lacks (`postinst`...).
    pub maintainer_scripts: Vec<String>,
    /// `Essential: yes`.
    pub essential: bool,
}

/// rpm's architecture for a Debian one (`all` -> `noarch`).
pub fn rpm_arch_of(debarch: &str) -> Result<&'static str> {
    if debarch == "all" {
        Ok("noarch")
    } else {
        rpm_arch(debarch)
    }
}

/// Summary and description from Debian's Description field: the first
/// line is the synopsis; in the extended part, the leading space goes and
/// ` .` lines are empty lines.
fn description(p: &Paragraph, name: &str) -> (String, String) {
    let d = p.get("Description").unwrap_or("");
    let mut lines = d.lines();
    let summary = lines.next().unwrap_or("").trim().to_string();
    let summary = if summary.is_empty() {
        format!("Debian package {name}")
    } else {
        summary
    };
    let long: Vec<&str> = lines
        .map(|l| {
            let l = l.strip_prefix(' ').unwrap_or(l);
            if l.trim() == "." { "" } else { l }
        })
        .collect();
    let long = if long.is_empty() {
        summary.clone()
    } else {
        long.join("\n")
    };
    (summary, long)
}

/// The package spec of a .deb (payload included).
pub fn deb_spec(deb: &Path, info: &ControlInfo) -> Result<PkgSpec> {
    let p = &info.control;
    let name = p.require("Package")?.to_string();
    let ctx = || format!("package {name} ({})", deb.display());
    let version = p.require("Version").with_context(ctx)?;
    let evr = rpm_evr(version).with_context(ctx)?;
    let arch = rpm_arch_of(p.require("Architecture").with_context(ctx)?).with_context(ctx)?;
    let (summary, long) = description(p, &name);
    let mut spec = PkgSpec::new(&name, &evr.version)
        .epoch(evr.epoch)
        .release(&evr.release)
        .arch(arch);
    spec.summary = Some(summary);
    spec.description = Some(long);
    spec.license = Some(format!("see /usr/share/doc/{name}/copyright"));
    spec.url = p.get("Homepage").map(str::to_string);
    let deps = |field: &str| field_to_rpm(p, field).with_context(ctx);
    spec.requires = deps("Depends")?;
    spec.requires_pre = deps("Pre-Depends")?;
    spec.recommends = deps("Recommends")?;
    spec.suggests = deps("Suggests")?;
    spec.enhances = deps("Enhances")?;
    spec.conflicts = deps("Conflicts")?;
    spec.conflicts.extend(deps("Breaks")?);
    // Provides: no alternatives, only `=` versions (deb-control(5)).
    if let Some(v) = p.get("Provides") {
        for g in parse_relations(v)
            .context("in the Provides field")
            .with_context(ctx)?
        {
            match g.as_slice() {
                [r] if r.version.is_none() => {
                    spec.provides
                        .push(format!("{} = {}", r.name, evr.dep_string()))
                }
                [r] if r
                    .version
                    .as_ref()
                    .is_some_and(|(op, _)| *op == super::control::Op::Eq) =>
                {
                    spec.provides.push(r.to_rpm().with_context(ctx)?)
                }
                _ => bail!(
                    "{}: Provides entry {g:?} is not `name` or `name (= v)`",
                    ctx()
                ),
            }
        }
    }
    spec.files = read_payload(deb, &name, &info.conffiles).with_context(ctx)?;
    // Build time: the newest mtime, so no file's mtime is clamped.
    spec.source_date = spec.files.iter().filter_map(|f| f.mtime).max();
    Ok(spec)
}

fn converted(info: &ControlInfo, spec: &PkgSpec) -> Result<Converted> {
    Ok(Converted {
        name: spec.name.clone(),
        deb_version: info.control.require("Version")?.to_string(),
        rpm_file: spec.filename(),
        maintainer_scripts: info.scripts.clone(),
        essential: info
            .control
            .get("Essential")
            .is_some_and(|e| e.eq_ignore_ascii_case("yes")),
    })
}

/// Convert `deb` into an .rpm in `out_dir` (no cache).
pub fn convert_deb(deb: &Path, out_dir: &Path) -> Result<Converted> {
    let info = read_control(deb)?;
    let spec = deb_spec(deb, &info)?;
    spec.build(out_dir)
        .with_context(|| format!("building the rpm of {}", deb.display()))?;
    converted(&info, &spec)
}

/// The source of the converter: a change to any of it is a new cache key.
const CONVERTER_SOURCES: &[&str] = &[
    include_str!("mod.rs"),
    include_str!("control.rs"),
    include_str!("version.rs"),
    include_str!("payload.rs"),
    include_str!("convert.rs"),
    include_str!("../fixture.rs"),
    include_str!("../../../Cargo.lock"),
];

fn cache_key(deb: &Path) -> Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for s in CONVERTER_SOURCES {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    let bytes = std::fs::read(deb).with_context(|| format!("reading {}", deb.display()))?;
    h.update(&bytes);
    Ok(hex::encode(h.finalize())[..40].to_string())
}

/// Place `src` at `dest` (a hard link, else a copy).
fn place(src: &Path, dest: &Path) -> Result<()> {
    let _ = std::fs::remove_file(dest);
    if std::fs::hard_link(src, dest).is_err() {
        std::fs::copy(src, dest)
            .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    }
    Ok(())
}

/// Convert `deb` into `out_dir` through the cache `cache/deb2rpm/`, keyed
/// by the .deb's sha256 and the converter's source. Returns the record and
/// whether it came from the cache.
pub fn convert_cached(cache: &Path, deb: &Path, out_dir: &Path) -> Result<(Converted, bool)> {
    let dir = cache.join("deb2rpm");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = cache_key(deb)?;
    let rpm = dir.join(format!("{key}.rpm"));
    let meta = dir.join(format!("{key}.json"));
    if let (Ok(m), true) = (std::fs::read(&meta), rpm.is_file()) {
        let c: Converted =
            serde_json::from_slice(&m).with_context(|| format!("reading {}", meta.display()))?;
        place(&rpm, &out_dir.join(&c.rpm_file))?;
        return Ok((c, true));
    }
    let tmp = tempfile::Builder::new()
        .prefix(".convert-")
        .tempdir_in(&dir)
        .with_context(|| format!("creating a conversion directory in {}", dir.display()))?;
    let c = convert_deb(deb, tmp.path())?;
    let built = tmp.path().join(&c.rpm_file);
    std::fs::rename(&built, &rpm)
        .with_context(|| format!("moving {} to {}", built.display(), rpm.display()))?;
    let tmp_meta = tmp.path().join("meta.json");
    std::fs::write(&tmp_meta, serde_json::to_vec_pretty(&c)?)
        .with_context(|| format!("writing {}", tmp_meta.display()))?;
    std::fs::rename(&tmp_meta, &meta)
        .with_context(|| format!("moving {} to {}", tmp_meta.display(), meta.display()))?;
    place(&rpm, &out_dir.join(&c.rpm_file))?;
    Ok((c, false))
}

/// Convert many .debs into `out_dir` through the cache, two at a time,
/// printing `Converting N/M name` for each one not in the cache. The
/// result is in the order of `debs`.
pub fn convert_all(cache: &Path, debs: &[PathBuf], out_dir: &Path) -> Result<Vec<Converted>> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Converted>>>> =
        Mutex::new((0..debs.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let fresh = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(deb) = debs.get(i) else { break };
                    let name = deb
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let name = name.split('_').next().unwrap_or(&name).to_string();
                    let r = convert_cached(cache, deb, out_dir).map(|(c, hit)| {
                        if !hit {
                            let n = fresh.fetch_add(1, Ordering::SeqCst) + 1;
                            eprintln!(
                                "Converting {}/{} {name} (#{n} not cached)",
                                i + 1,
                                debs.len()
                            );
                        }
                        c
                    });
                    if let Ok(mut res) = results.lock() {
                        res[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a conversion thread panicked"))?;
    let out = results
        .into_iter()
        .zip(debs)
        .map(|(r, deb)| r.with_context(|| format!("{} was not converted", deb.display()))?)
        .collect::<Result<Vec<_>>>()?;
    eprintln!(
        "Converted {} .debs into {} ({} from the cache)",
        debs.len(),
        out_dir.display(),
        debs.len() - fresh.load(Ordering::SeqCst)
    );
    Ok(out)
}

/// Name of the record [`make_repo`] writes next to the packages: a JSON
/// list of [`Converted`] (which packages had maintainer scripts, which
/// are Essential).
pub const RECORD: &str = "deb-packages.json";

/// Convert `debs` into `dir` (created if missing; .rpm files already there
/// stay), write [`RECORD`] and the repodata (`createrepo_c`).
pub fn make_repo(cache: &Path, debs: &[PathBuf], dir: &Path) -> Result<Vec<Converted>> {
    let conv = convert_all(cache, debs, dir)?;
    let mut names = std::collections::BTreeMap::new();
    for c in &conv {
        if let Some(other) = names.insert(c.name.as_str(), &c.deb_version) {
            bail!(
                "two .debs of package {} ({other} and {}) in one repository",
                c.name,
                c.deb_version
            );
        }
    }
    let record = dir.join(RECORD);
    std::fs::write(&record, serde_json::to_vec_pretty(&conv)?)
        .with_context(|| format!("writing {}", record.display()))?;
    createrepo(dir, RepoCompression::Gz)?;
    Ok(conv)
}
