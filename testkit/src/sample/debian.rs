//! Debian binaries for the sample OS: architecture names, and .deb files
//! fetched once with `apt-get download` into a cache directory and unpacked
//! there with `dpkg-deb -x`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use cosa::util::cmd::CommandRunExt;

/// rpm architecture names and Debian's, in one place.
const ARCHES: &[(&str, &str)] = &[
    ("x86_64", "amd64"),
    ("aarch64", "arm64"),
    ("ppc64le", "ppc64el"),
    ("s390x", "s390x"),
];

/// Debian's name for an rpm architecture (`x86_64` -> `amd64`).
pub fn deb_arch(arch: &str) -> Result<&'static str> {
    ARCHES
        .iter()
        .find(|(r, _)| *r == arch)
        .map(|(_, d)| *d)
        .with_context(|| format!("no Debian architecture for {arch:?}"))
}

/// The rpm name of a Debian architecture (`arm64` -> `aarch64`).
pub fn rpm_arch(deb: &str) -> Result<&'static str> {
    ARCHES
        .iter()
        .find(|(_, d)| *d == deb)
        .map(|(r, _)| *r)
        .with_context(|| format!("no rpm architecture for Debian's {deb:?}"))
}

/// `$COSA_SAMPLE_CACHE`, else `$XDG_CACHE_HOME/cosa-sample`, else
/// `~/.cache/cosa-sample`; created if missing.
pub fn cache_dir() -> Result<PathBuf> {
    let dir = if let Some(d) = std::env::var_os("COSA_SAMPLE_CACHE") {
        PathBuf::from(d)
    } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(d).join("cosa-sample")
    } else {
        let home = std::env::var_os("HOME")
            .context("neither COSA_SAMPLE_CACHE nor HOME is set: no cache directory for .debs")?;
        PathBuf::from(home).join(".cache/cosa-sample")
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the .deb cache {}", dir.display()))?;
    Ok(dir)
}

/// The package name of a .deb file name (`name_version_arch.deb`).
fn deb_name(file: &str) -> Option<&str> {
    file.strip_suffix(".deb")?.split('_').next()
}

/// Cached .debs of `debarch` whose package name satisfies `want`, sorted by name.
fn cached(cache: &Path, debarch: &str, want: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(cache).with_context(|| format!("reading {}", cache.display()))? {
        let e = e.with_context(|| format!("reading {}", cache.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(&format!("_{debarch}.deb")) && deb_name(&name).is_some_and(&want) {
            found.push(e.path());
        }
    }
    found.sort();
    Ok(found)
}

fn apt_name(package: &str, debarch: &str) -> String {
    if debarch == "all" {
        package.to_string()
    } else {
        format!("{package}:{debarch}")
    }
}

/// apt options for `debarch`: none for the host's own architecture; for
/// another, a private apt state in `cache/apt-<debarch>/` with that
/// architecture as the only one (made once with `apt-get update`), so the
/// host's dpkg configuration is left alone. Architecture-independent
/// packages (`all`) come through the host's apt state.
fn apt_options(cache: &Path, debarch: &str) -> Result<Vec<String>> {
    if debarch == "all" {
        return Ok(Vec::new());
    }
    let host = Command::new("dpkg")
        .arg("--print-architecture")
        .run_capture("asking dpkg for the host architecture")?;
    if String::from_utf8_lossy(&host.stdout).trim() == debarch {
        return Ok(Vec::new());
    }
    let state = cache.join(format!("apt-{debarch}"));
    let lists = state.join("lists");
    let opts: Vec<String> = [
        format!("APT::Architecture={debarch}"),
        format!("APT::Architectures::={debarch}"),
        format!("Dir::State::Lists={}", lists.display()),
        format!("Dir::Cache={}", state.join("cache").display()),
        "Debug::NoLocking=1".to_string(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect();
    let ready = std::fs::read_dir(&lists).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
    });
    if !ready {
        for d in [lists.join("partial"), state.join("cache/archives/partial")] {
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        eprintln!(
            "Reading Debian's {debarch} package lists into {}",
            state.display()
        );
        Command::new("apt-get")
            .args(["-q", "update"])
            .args(&opts)
            .run_capture(&format!(
                "apt-get update for {debarch} (is the Debian mirror reachable?)"
            ))?;
    }
    Ok(opts)
}

/// `apt-get download PACKAGE:DEBARCH` into the cache, unless a .deb of that
/// package is already there. Returns the .deb's path.
pub fn fetch_deb(cache: &Path, package: &str, debarch: &str) -> Result<PathBuf> {
    if let Some(p) = cached(cache, debarch, |n| n == package)?.pop() {
        return Ok(p);
    }
    // Download into a private directory, then move into place: a concurrent
    // fetch of the same package never sees a partial file.
    let tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(cache)
        .with_context(|| format!("creating a download directory in {}", cache.display()))?;
    eprintln!("Downloading {package} ({debarch}) from the Debian mirror");
    Command::new("apt-get")
        .args(apt_options(cache, debarch)?)
        .args(["download", "-q"])
        .arg(apt_name(package, debarch))
        .current_dir(tmp.path())
        .run_capture(&format!(
            "downloading Debian package {package} for {debarch} (is the Debian mirror reachable, \
             and is {debarch} a configured dpkg architecture?)"
        ))?;
    let got = cached(tmp.path(), debarch, |n| n == package)?
        .pop()
        .with_context(|| format!("apt-get download {package} left no .deb"))?;
    let file = got.file_name().context("a .deb file name")?;
    let dest = cache.join(file);
    std::fs::rename(&got, &dest)
        .with_context(|| format!("moving {} to {}", got.display(), dest.display()))?;
    Ok(dest)
}

/// The binary package a metapackage depends on whose name satisfies `want`
/// (`linux-image-cloud-amd64` -> `linux-image-6.1.0-56-cloud-amd64`).
pub fn resolve_dependency(
    cache: &Path,
    meta: &str,
    debarch: &str,
    want: impl Fn(&str) -> bool,
) -> Result<String> {
    let out = Command::new("apt-cache")
        .args(apt_options(cache, debarch)?)
        .args(["depends", "--no-recommends", "--no-suggests"])
        .arg(apt_name(meta, debarch))
        .run_capture(&format!(
            "asking apt which package {meta} ({debarch}) depends on"
        ))?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        if let Some(dep) = line.trim().strip_prefix("Depends: ") {
            let dep = dep.trim().split(':').next().unwrap_or(dep);
            if want(dep) {
                return Ok(dep.to_string());
            }
        }
    }
    bail!("apt-cache depends {meta}:{debarch} names no matching package:\n{text}")
}

/// A field of a .deb's control file (`dpkg-deb -f`).
pub fn control_field(deb: &Path, field: &str) -> Result<String> {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(field)
        .run_capture(&format!("reading {field} of {}", deb.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Unpack a .deb once into `cache/<file stem>.d/` and return that directory.
pub fn extract_deb(cache: &Path, deb: &Path) -> Result<PathBuf> {
    let stem = deb
        .file_stem()
        .with_context(|| format!("no file name in {}", deb.display()))?
        .to_string_lossy()
        .into_owned();
    let dest = cache.join(format!("{stem}.d"));
    if dest.is_dir() {
        return Ok(dest);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(cache)
        .with_context(|| format!("creating an extraction directory in {}", cache.display()))?;
    Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(tmp.path())
        .run_capture(&format!("unpacking {}", deb.display()))?;
    let tmp = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        // Another process won the race: use its copy.
        let _ = std::fs::remove_dir_all(&tmp);
        if !dest.is_dir() {
            return Err(e)
                .with_context(|| format!("moving the unpacked .deb to {}", dest.display()));
        }
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_names_map_both_ways() {
        assert_eq!(deb_arch("x86_64").unwrap(), "amd64");
        assert_eq!(deb_arch("aarch64").unwrap(), "arm64");
        assert_eq!(rpm_arch("arm64").unwrap(), "aarch64");
        assert_eq!(rpm_arch("amd64").unwrap(), "x86_64");
        assert!(deb_arch("i686").is_err());
    }

    #[test]
    fn deb_names() {
        assert_eq!(
            deb_name("linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb"),
            Some("linux-image-6.1.0-56-cloud-amd64")
        );
        assert_eq!(deb_name("x.rpm"), None);
    }
}
