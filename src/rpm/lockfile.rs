//! rpm-ostree lockfiles: `manifest-lock.<arch>.json`, then
//! `manifest-lock.overrides.yaml` and `manifest-lock.overrides.<arch>.yaml`
//! layered on top (later files win per package, as rpm-ostree's
//! `lockfile_parse_multiple`), and the `manifest-lock.generated.<arch>.json`
//! every compose writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::repodata::LoadedRepo;
use super::solver::Pin;
use super::types::{Evr, PackageMeta};
use crate::util::time;

/// One lockfile (JSON, or YAML for the overrides files).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lockfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<LockMetadata>,
    #[serde(default)]
    pub packages: BTreeMap<String, LockedPackage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_packages: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockMetadata {
    /// RFC 3339; the date part becomes the Y of stream versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpmmd_repos: Option<BTreeMap<String, RepoStamp>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoStamp {
    pub generated: String,
}

/// A locked package: `evra` (with arch) or `evr`, and optionally a digest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evra: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evr: Option<String>,
    /// `sha256:<hex>`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Free-form (overrides files carry bodhi links and the like); not written out.
    #[serde(default, skip_serializing)]
    pub metadata: Option<serde_json::Value>,
}

impl LockedPackage {
    /// The pin the solver takes for this entry.
    pub fn pin(&self, name: &str) -> Result<Pin> {
        let (evr, arch) = match (&self.evra, &self.evr) {
            (Some(evra), None) => {
                let Some((evr, arch)) = evra.rsplit_once('.') else {
                    bail!("package {name} has a malformed evra {evra:?} (want [E:]V-R.ARCH)");
                };
                (evr.to_string(), Some(arch.to_string()))
            }
            (None, Some(evr)) => (evr.clone(), None),
            _ => bail!("package {name} must have exactly one of evra or evr"),
        };
        let evr = Evr::parse(&evr);
        if evr.release.is_none() {
            bail!("package {name}: locked version {evr} has no release");
        }
        Ok(Pin {
            evr,
            arch,
            digest: self.digest.clone(),
        })
    }
}

impl Lockfile {
    /// Read a lockfile; `.yaml`/`.yml` as YAML, anything else as JSON.
    pub fn read(path: &Path) -> Result<Lockfile> {
        let data = std::fs::read_to_string(path)
            .with_context(|| format!("reading lockfile {}", path.display()))?;
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        let lf: Lockfile = if yaml {
            serde_yaml::from_str(&data)
                .with_context(|| format!("parsing lockfile {}", path.display()))?
        } else {
            serde_json::from_str(&data)
                .with_context(|| format!("parsing lockfile {}", path.display()))?
        };
        Ok(lf)
    }

    /// Layer `other` on top: its packages replace same-named ones.
    pub fn merge(&mut self, other: Lockfile) {
        self.packages.extend(other.packages);
        if let Some(src) = other.source_packages {
            self.source_packages
                .get_or_insert_with(BTreeMap::new)
                .extend(src);
        }
    }

    /// All pins, by package name.
    pub fn pins(&self) -> Result<BTreeMap<String, Pin>> {
        self.packages
            .iter()
            .map(|(n, p)| Ok((n.clone(), p.pin(n)?)))
            .collect()
    }

    /// The lockfile describing a resolved set, as rpm-ostree writes it.
    pub fn from_resolved(pkgs: &[PackageMeta], repos: &[LoadedRepo]) -> Lockfile {
        let packages = pkgs
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    LockedPackage {
                        evra: Some(p.evra()),
                        evr: None,
                        digest: Some(format!("{}:{}", p.checksum_type, p.checksum)),
                        metadata: None,
                    },
                )
            })
            .collect();
        let used: std::collections::BTreeSet<&str> = pkgs.iter().map(|p| p.repo.as_str()).collect();
        let rpmmd_repos = repos
            .iter()
            .filter(|r| used.contains(r.id.as_str()))
            .map(|r| {
                let ts = r.timestamp.unwrap_or(0) as i64;
                (
                    r.id.clone(),
                    RepoStamp {
                        generated: time::format_rfc3339(ts),
                    },
                )
            })
            .collect();
        Lockfile {
            metadata: Some(LockMetadata {
                generated: Some(time::format_rfc3339(time::now_secs())),
                rpmmd_repos: Some(rpmmd_repos),
            }),
            packages,
            source_packages: None,
        }
    }

    /// Write as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::util::write_json_atomic(path, self)
            .with_context(|| format!("writing lockfile {}", path.display()))
    }
}

/// The lockfiles of a config dir for `arch`, in layering order, that exist.
pub fn lockfile_paths(config_dir: &Path, arch: &str) -> Vec<PathBuf> {
    [
        format!("manifest-lock.{arch}.json"),
        "manifest-lock.overrides.yaml".to_string(),
        "manifest-lock.overrides.json".to_string(),
        format!("manifest-lock.overrides.{arch}.yaml"),
        format!("manifest-lock.overrides.{arch}.json"),
    ]
    .into_iter()
    .map(|n| config_dir.join(n))
    .filter(|p| p.exists())
    .collect()
}

/// Read and layer every lockfile that exists for `arch`; None when there is none.
pub fn load_layered(config_dir: &Path, arch: &str) -> Result<Option<Lockfile>> {
    let mut acc: Option<Lockfile> = None;
    for p in lockfile_paths(config_dir, arch) {
        let lf = Lockfile::read(&p)?;
        match &mut acc {
            Some(a) => a.merge(lf),
            None => acc = Some(lf),
        }
    }
    Ok(acc)
}

/// `--strict`: every resolved package must be named by the lockfile.
pub fn check_strict(lock: Option<&Lockfile>, pkgs: &[PackageMeta]) -> Result<()> {
    let Some(lock) = lock else {
        bail!(
            "--strict needs a lockfile (src/config/manifest-lock.<arch>.json): run `cosa fetch --update-lockfile` first"
        );
    };
    let unlocked: Vec<String> = pkgs
        .iter()
        .filter(|p| !lock.packages.contains_key(&p.name))
        .map(|p| p.nevra())
        .collect();
    if !unlocked.is_empty() {
        bail!(
            "--strict: {} package(s) not in the lockfile: {}; update the lockfile (`cosa fetch --update-lockfile`) or add them to manifest-lock.overrides.yaml",
            unlocked.len(),
            unlocked.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rpm_ostree_format_and_layers() {
        let base: Lockfile = serde_json::from_str(
            r#"{"metadata":{"generated":"2024-05-20T00:00:00Z","rpmmd_repos":{"fedora":{"generated":"2024-04-14T18:51:11Z"}}},
               "packages":{"foo":{"evra":"1.0-1.noarch","digest":"sha256:ab"},"baz":{"evr":"1:2.1-1"}}}"#,
        )
        .unwrap();
        let over: Lockfile = serde_yaml::from_str(
            "packages:\n  foo:\n    evr: 2.0-2\n    metadata:\n      bodhi: https://example/FEDORA-1\n      type: fast-track\n",
        )
        .unwrap();
        let mut lf = base.clone();
        lf.merge(over);
        let pins = lf.pins().unwrap();
        assert_eq!(pins["foo"].evr, Evr::parse("2.0-2"));
        assert_eq!(pins["foo"].arch, None);
        assert_eq!(pins["baz"].evr, Evr::new(1, "2.1", Some("1".into())));
        let base_pins = base.pins().unwrap();
        assert_eq!(base_pins["foo"].arch.as_deref(), Some("noarch"));
        assert_eq!(base_pins["foo"].digest.as_deref(), Some("sha256:ab"));
        // metadata is read but never written back
        let out = serde_json::to_string(&lf).unwrap();
        assert!(!out.contains("bodhi"), "{out}");
    }

    #[test]
    fn refuses_unknown_fields_and_bad_entries() {
        assert!(serde_json::from_str::<Lockfile>(r#"{"packages":{},"unknown":1}"#).is_err());
        let lf: Lockfile =
            serde_json::from_str(r#"{"packages":{"foo":{"evra":"nodot"}}}"#).unwrap();
        assert!(
            lf.pins()
                .unwrap_err()
                .to_string()
                .contains("malformed evra")
        );
        let lf: Lockfile = serde_json::from_str(r#"{"packages":{"foo":{}}}"#).unwrap();
        assert!(lf.pins().is_err());
    }
}
