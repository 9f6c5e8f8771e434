//! bootupd's update metadata, written at compose time as `bootupctl backend
//! generate-update-metadata` does in Fedora CoreOS's postprocess: for each
//! boot loader component the tree carries, a JSON file in
//! `/usr/lib/bootupd/updates/` naming the packages that own its files and
//! their newest build time:
//!
//! - `EFI.json`: the owners of `/usr/lib/bootupd/updates/EFI/` (shim, GRUB).
//! - `BIOS.json`: the owners of GRUB's BIOS modules (`/usr/lib/grub/i386-pc/`,
//!   where Debian's grub-pc-bin puts them; bootupd asks rpm about
//!   `grub2-install`, which Debian's layout does not have).
//!
//! The format is bootupd's `ContentMetadata` (src/model.rs): `timestamp`
//! (RFC 3339), `version` (the owners' NEVRAs joined by commas), `versions`
//! (`[{"name", "rpm_evr"}]`). A tree that ships its own JSON keeps it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::rpm::PackageMeta;

/// bootupd's update payload directory, relative to the tree's root.
pub const UPDATES_DIR: &str = "usr/lib/bootupd/updates";

/// One package of a component (bootupd's `Module`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Module {
    pub name: String,
    /// `[epoch:]version-release`.
    pub rpm_evr: String,
}

/// bootupd's `ContentMetadata`: what an `EFI.json` / `BIOS.json` holds, and
/// the `meta` of each installed component in `bootupd-state.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentMetadata {
    /// RFC 3339, UTC.
    pub timestamp: String,
    /// Human-readable, never parsed: the owners' NEVRAs joined by commas.
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<Module>>,
}

/// The components bootupd knows and the tree paths whose owners make them.
const COMPONENTS: &[(&str, &str)] = &[
    ("EFI", "/usr/lib/bootupd/updates/EFI/"),
    ("BIOS", "/usr/lib/grub/i386-pc/"),
];

/// One installed package's identity and files (from its header).
struct Owner {
    nevra: String,
    name: String,
    evr: String,
    build_time: u64,
    files: Vec<String>,
}

fn read_owner(meta: &PackageMeta, rpm: &Path) -> Result<Owner> {
    let f = File::open(rpm).with_context(|| format!("opening {}", rpm.display()))?;
    let md = rpm::PackageMetadata::parse(&mut BufReader::new(f))
        .with_context(|| format!("reading the header of {}", rpm.display()))?;
    let files = md
        .get_file_paths()
        .with_context(|| format!("reading the file list of {}", rpm.display()))?
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let evr = if meta.epoch > 0 {
        format!("{}:{}-{}", meta.epoch, meta.version, meta.release)
    } else {
        format!("{}-{}", meta.version, meta.release)
    };
    Ok(Owner {
        nevra: format!("{}-{evr}.{}", meta.name, meta.arch),
        name: meta.name.clone(),
        evr,
        build_time: md.get_build_time().unwrap_or(0),
        files,
    })
}

/// The metadata of the packages owning files under `prefix`, or None.
fn component_metadata(owners: &[Owner], prefix: &str) -> Option<ContentMetadata> {
    let mut found: BTreeMap<&str, &Owner> = BTreeMap::new();
    for o in owners {
        if o.files.iter().any(|f| f.starts_with(prefix)) {
            found.insert(&o.nevra, o);
        }
    }
    if found.is_empty() {
        return None;
    }
    let newest = found.values().map(|o| o.build_time).max().unwrap_or(0);
    let mut versions: Vec<Module> = found
        .values()
        .map(|o| Module {
            name: o.name.clone(),
            rpm_evr: o.evr.clone(),
        })
        .collect();
    versions.sort();
    Some(ContentMetadata {
        timestamp: crate::util::time::format_rfc3339(newest as i64),
        version: found.keys().copied().collect::<Vec<_>>().join(","),
        versions: Some(versions),
    })
}

/// Write `EFI.json` / `BIOS.json` into `tree` for the components it has;
/// returns the files written (relative to the tree).
pub fn generate_update_metadata(
    tree: &Path,
    pkgs: &[(PackageMeta, PathBuf)],
) -> Result<Vec<String>> {
    let present: Vec<(&str, &str)> = COMPONENTS
        .iter()
        .copied()
        .filter(|(_, p)| tree.join(p.trim_start_matches('/')).is_dir())
        .collect();
    // A tree without bootupd's directory has no boot loader of its own.
    if present.is_empty() || !tree.join(UPDATES_DIR).is_dir() {
        return Ok(Vec::new());
    }
    let owners: Vec<Owner> = pkgs
        .iter()
        .map(|(m, p)| read_owner(m, p))
        .collect::<Result<_>>()?;
    let mut written = Vec::new();
    for (name, prefix) in present {
        let rel = format!("{UPDATES_DIR}/{name}.json");
        let dest = tree.join(&rel);
        if dest.exists() {
            continue;
        }
        let Some(meta) = component_metadata(&owners, prefix) else {
            continue;
        };
        let mut json = serde_json::to_vec(&meta)?;
        json.push(b'\n');
        crate::compose::postprocess::write_mode(&dest, &json, 0o644)
            .with_context(|| format!("writing bootupd's {rel}"))?;
        written.push(rel);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(name: &str, evr: &str, t: u64, files: &[&str]) -> Owner {
        Owner {
            nevra: format!("{name}-{evr}.x86_64"),
            name: name.into(),
            evr: evr.into(),
            build_time: t,
            files: files.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn metadata_names_the_owners_with_the_newest_build_time() {
        let owners = [
            owner(
                "shim-signed",
                "16.1-2.sample",
                1_700_000_000,
                &["/usr/lib/bootupd/updates/EFI/BOOT/BOOTX64.EFI"],
            ),
            owner(
                "grub-efi-amd64-signed",
                "1:2.06-13",
                1_700_000_100,
                &["/usr/lib/bootupd/updates/EFI/debian/grubx64.efi"],
            ),
            owner("busybox", "1.35-1", 1_800_000_000, &["/usr/bin/busybox"]),
        ];
        let m = component_metadata(&owners, "/usr/lib/bootupd/updates/EFI/").unwrap();
        assert_eq!(m.timestamp, "2023-11-14T22:15:00Z");
        assert_eq!(
            m.version,
            "grub-efi-amd64-signed-1:2.06-13.x86_64,shim-signed-16.1-2.sample.x86_64"
        );
        let v = m.versions.clone().unwrap();
        assert_eq!(v[0].name, "grub-efi-amd64-signed");
        assert_eq!(v[0].rpm_evr, "1:2.06-13");
        // bootupd's field names: timestamp, version, versions[].rpm_evr.
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["versions"][1]["rpm_evr"], "16.1-2.sample");
        assert!(component_metadata(&owners, "/usr/lib/grub/i386-pc/").is_none());
    }
}
