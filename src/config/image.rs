//! `image.yaml` (how disk images are made) and `platforms.yaml` (per
//! platform kernel arguments and GRUB commands), in coreos-assembler's and
//! fedora-coreos-config's formats.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// `image.yaml`. Unknown keys are kept (upstream has many this stage does not
/// use yet) so that a real config loads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageConfig {
    /// Disk size of cloud images in GiB (default 10).
    #[serde(default = "default_size")]
    pub size: u64,
    #[serde(default)]
    pub extra_kargs: Vec<String>,
    /// The OSTree stateroot; defaults to the build's name.
    #[serde(default)]
    pub osname: Option<String>,
    #[serde(default = "default_ext4")]
    pub bootfs: String,
    #[serde(default = "default_ext4")]
    pub rootfs: String,
    /// `cosa compress`'s default compressor (xz, zstd or gzip).
    #[serde(default)]
    pub compressor: Option<String>,
    /// Per-artifact compressor overrides, `images.<name>` -> compressor
    /// (upstream's `platform-compressor`).
    #[serde(default)]
    pub platform_compressor: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

fn default_size() -> u64 {
    10
}
fn default_ext4() -> String {
    "ext4".to_string()
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            size: default_size(),
            extra_kargs: Vec::new(),
            osname: None,
            bootfs: default_ext4(),
            rootfs: default_ext4(),
            compressor: None,
            platform_compressor: BTreeMap::new(),
            other: BTreeMap::new(),
        }
    }
}

/// One platform's entry in `platforms.yaml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    #[serde(default)]
    pub grub_commands: Vec<String>,
    #[serde(default)]
    pub kernel_arguments: Vec<String>,
}

/// `platforms.yaml`: arch -> platform -> settings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Platforms(pub BTreeMap<String, BTreeMap<String, PlatformConfig>>);

impl Platforms {
    /// The settings of `platform` on `arch` (none is fine: no console kargs).
    pub fn get(&self, arch: &str, platform: &str) -> PlatformConfig {
        self.0
            .get(arch)
            .and_then(|p| p.get(platform))
            .cloned()
            .unwrap_or_default()
    }
}

fn read_yaml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        anyhow::anyhow!("{}{at}: {e}", path.display())
    })
}

impl ImageConfig {
    /// Load `image.yaml` from the config dir (defaults when it is missing).
    pub fn load(config_dir: &Path) -> Result<ImageConfig> {
        let p = config_dir.join("image.yaml");
        if !p.exists() {
            return Ok(ImageConfig::default());
        }
        let c: ImageConfig = read_yaml(&p)?;
        if c.size == 0 {
            bail!("{}: size must be at least 1 (GiB)", p.display());
        }
        if c.bootfs != "ext4" {
            bail!(
                "{}: bootfs {:?} is not supported; cosa makes the boot file system as ext4",
                p.display(),
                c.bootfs
            );
        }
        if !matches!(c.rootfs.as_str(), "ext4" | "xfs") {
            bail!(
                "{}: rootfs {:?} is not supported (use ext4)",
                p.display(),
                c.rootfs
            );
        }
        Ok(c)
    }

    /// Whether `rootfs: xfs` was asked for (cosa makes ext4: file systems
    /// are built from directories without mounts, which mkfs.xfs cannot do
    /// reliably).
    pub fn rootfs_substituted(&self) -> bool {
        self.rootfs != "ext4"
    }
}

impl Platforms {
    /// Load `platforms.yaml` from the config dir (empty when missing).
    pub fn load(config_dir: &Path) -> Result<Platforms> {
        let p = config_dir.join("platforms.yaml");
        if !p.exists() {
            return Ok(Platforms::default());
        }
        read_yaml(&p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_upstream_shaped_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("image.yaml"),
            "size: 8\nextra-kargs:\n  - mitigations=auto,nosmt\nrootfs: xfs\nvmware-os-type: x\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("platforms.yaml"),
            "x86_64:\n  qemu:\n    grub_commands:\n      - serial --speed=115200\n    kernel_arguments:\n      - console=ttyS0,115200n8\n",
        )
        .unwrap();
        let i = ImageConfig::load(d.path()).unwrap();
        assert_eq!(i.size, 8);
        assert_eq!(i.extra_kargs, ["mitigations=auto,nosmt"]);
        assert!(i.rootfs_substituted());
        assert!(i.other.contains_key("vmware-os-type"));
        let p = Platforms::load(d.path()).unwrap();
        assert_eq!(
            p.get("x86_64", "qemu").kernel_arguments,
            ["console=ttyS0,115200n8"]
        );
        assert_eq!(p.get("x86_64", "metal"), PlatformConfig::default());
    }

    #[test]
    fn bad_yaml_names_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("platforms.yaml"),
            "x86_64:\n  qemu:\n    bogus: 1\n",
        )
        .unwrap();
        let e = format!("{:#}", Platforms::load(d.path()).unwrap_err());
        assert!(e.contains("platforms.yaml:3"), "{e}");
        std::fs::write(d.path().join("image.yaml"), "size: 0\n").unwrap();
        assert!(ImageConfig::load(d.path()).is_err());
    }
}
