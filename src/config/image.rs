//! `image.yaml` (how disk images are made) and `platforms.yaml` (per
//! platform kernel arguments and GRUB commands), in coreos-assembler's and
//! fedora-coreos-config's formats.
//!
//! `image.yaml` may `include:` another file (relative to the including
//! file, chains allowed), merged as coreos-assembler's `flatten_image_yaml`
//! does: the including file wins for scalars, lists are the includer's items
//! followed by the included file's items it does not already have, maps
//! merge key by key. Every key coreos-assembler knows is accepted; a key cosa
//! does not act on gives a warning naming the key and the file it came
//! from, and a key nobody knows is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

/// What cosa does with an image.yaml key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Acted on.
    Acted,
    /// Known to coreos-assembler, not acted on; the text says why.
    NotActed(&'static str),
}

/// Every image.yaml key of coreos-assembler (its `image-default.yaml` over
/// the years, `cmd-osbuild`, `cosalib`) and cosa's own `osname`,
/// `efi-signing-key` and `efi-signing-cert`.
#[rustfmt::skip]
const KEYS: &[(&str, Use)] = &[
    ("include", Use::Acted),
    ("size", Use::Acted),
    ("extra-kargs", Use::Acted),
    ("osname", Use::Acted),
    ("bootfs", Use::Acted),
    ("rootfs", Use::Acted),
    ("rootfs-args", Use::Acted),
    ("compressor", Use::Acted),
    ("platform-compressor", Use::Acted),
    ("ignition-network-kcmdline", Use::Acted),
    ("ostree-remote", Use::Acted),
    ("deploy-via-container", Use::Acted),
    ("container-imgref", Use::Acted),
    ("vmware-os-type", Use::Acted),
    ("vmware-hw-version", Use::Acted),
    ("vmware-secure-boot", Use::Acted),
    ("squashfs-compression", Use::Acted),
    ("live-rootfs-fstype", Use::Acted),
    ("live-rootfs-fsoptions", Use::Acted),
    ("efi-signing-key", Use::Acted),
    ("efi-signing-cert", Use::Acted),
    ("aws-imdsv2-only", Use::NotActed("it is read by cloud uploads, which cosa does not do yet")),
    ("aws-imds-support", Use::NotActed("it is read by cloud uploads, which cosa does not do yet")),
    ("aws-volume-type", Use::NotActed("it is read by cloud uploads, which cosa does not do yet")),
    ("aws-x86-boot-mode", Use::NotActed("it is read by cloud uploads, which cosa does not do yet")),
    ("aws-boot-mode-x86-64", Use::NotActed("it is read by cloud uploads, which cosa does not do yet")),
    ("composefs", Use::NotActed("composefs is set by the tree's /usr/lib/ostree/prepare-root.conf")),
    ("ostree-format", Use::NotActed("cosa's ostree container is always ostree-native (one layer)")),
    ("ostree-container-inject-openshift-cvo-labels", Use::NotActed("OpenShift labels are not written")),
    ("bigtime", Use::NotActed("it is an XFS option and cosa's root file system is ext4")),
    ("grub-script", Use::NotActed("cosa writes grub.cfg from the BLS entries")),
    ("bootupd-epoch", Use::NotActed("cosa writes /boot/bootupd-state.json from the tree's EFI.json and BIOS.json, without an epoch")),
    ("use-bootc-install", Use::NotActed("cosa deploys with its own writer, not bootc install")),
    ("bootc-install-to-fs", Use::NotActed("cosa deploys with its own writer, not bootc install")),
];

/// `image.yaml`, flattened.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageConfig {
    /// Disk size of cloud images in GiB (default 10).
    pub size: u64,
    pub extra_kargs: Vec<String>,
    /// The OSTree stateroot; defaults to the build's name.
    pub osname: Option<String>,
    pub bootfs: String,
    /// The root file system asked for; cosa makes ext4 (see
    /// [`ImageConfig::rootfs_substituted`]).
    pub rootfs: String,
    pub rootfs_args: Option<String>,
    /// `cosa compress`'s default compressor (xz, zstd or gzip).
    pub compressor: Option<String>,
    /// Per-artifact compressor overrides, `images.<name>` -> compressor.
    pub platform_compressor: BTreeMap<String, String>,
    /// Kernel arguments for Ignition's networking on first boot, written
    /// into `/boot/ignition.firstboot`. Absent: `ip=auto rd.neednet=1`
    /// (coreos-assembler's default); empty: none.
    pub ignition_network_kcmdline: Option<Vec<String>>,
    /// The remote the deployment's origin names (`refspec=<remote>:<ref>`).
    pub ostree_remote: Option<String>,
    /// Deploy from the ostree container image: the origin names a
    /// container image reference instead of a ref.
    pub deploy_via_container: bool,
    /// The container image reference the deployment's origin follows.
    pub container_imgref: Option<String>,
    pub vmware_os_type: String,
    pub vmware_hw_version: u32,
    pub vmware_secure_boot: bool,
    /// mksquashfs compressor of the live rootfs.
    pub squashfs_compression: String,
    /// cosa's own: a key and certificate (PEM; relative paths are from the
    /// file that names them) with which cosa signs the EFI binaries it
    /// makes itself (the host-GRUB fallback), with sbsign, verified with
    /// sbverify. A tree's own boot loader is never re-signed.
    pub efi_signing: Option<EfiSigning>,
    /// Keys coreos-assembler knows that cosa does not act on: one line
    /// each, naming the key, the file and why.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// The files read, includer first.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            size: 10,
            extra_kargs: Vec::new(),
            osname: None,
            bootfs: "ext4".into(),
            rootfs: "ext4".into(),
            rootfs_args: None,
            compressor: None,
            platform_compressor: BTreeMap::new(),
            ignition_network_kcmdline: None,
            ostree_remote: None,
            deploy_via_container: false,
            container_imgref: None,
            vmware_os_type: "rhel7_64Guest".into(),
            vmware_hw_version: 13,
            vmware_secure_boot: true,
            squashfs_compression: "zstd".into(),
            efi_signing: None,
            warnings: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// image.yaml's `efi-signing-key` and `efi-signing-cert`, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EfiSigning {
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// coreos-assembler's default networking for Ignition on first boot.
pub const DEFAULT_IGNITION_NETWORK: &[&str] = &["ip=auto", "rd.neednet=1"];

/// Merge `inc` (an included file) under `acc` (what the includers said):
/// the includer wins for scalars, lists append the included items they do
/// not have, maps merge recursively.
fn merge_under(acc: &mut Mapping, inc: Mapping) {
    for (k, v) in inc {
        match (acc.get_mut(&k), v) {
            (None, v) => {
                acc.insert(k, v);
            }
            (Some(Value::Mapping(a)), Value::Mapping(b)) => merge_under(a, b),
            (Some(Value::Sequence(a)), Value::Sequence(b)) => {
                for item in b {
                    if !a.contains(&item) {
                        a.push(item);
                    }
                }
            }
            (Some(_), _) => {}
        }
    }
}

fn yaml_error(path: &Path, e: serde_yaml::Error) -> anyhow::Error {
    let at = e
        .location()
        .map(|l| format!(":{}:{}", l.line(), l.column()))
        .unwrap_or_default();
    anyhow::anyhow!("{}{at}: {e}", path.display())
}

fn read_yaml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| yaml_error(path, e))
}

/// Read `path` and its includes into one mapping; `origin` records which
/// file each top-level key came from.
fn flatten(
    path: &Path,
    files: &mut Vec<PathBuf>,
    origin: &mut BTreeMap<String, PathBuf>,
) -> Result<Mapping> {
    let mut acc = Mapping::new();
    let mut next = Some(path.to_path_buf());
    while let Some(p) = next.take() {
        let canon = p
            .canonicalize()
            .with_context(|| format!("reading {}", p.display()))?;
        if files
            .iter()
            .any(|f| f.canonicalize().ok().as_ref() == Some(&canon))
        {
            bail!(
                "{}: include cycle: {} is included again",
                files[0].display(),
                p.display()
            );
        }
        files.push(p.clone());
        let v: Value = read_yaml(&p)?;
        let mut m = match v {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            other => bail!(
                "{}: expected a mapping of keys, got {}",
                p.display(),
                type_name(&other)
            ),
        };
        if let Some(inc) = m.remove("include") {
            let Value::String(inc) = inc else {
                bail!("{}: include: expected a file name", p.display());
            };
            let dir = p.parent().unwrap_or(Path::new("."));
            next = Some(dir.join(inc));
        }
        for k in m.keys() {
            let Value::String(k) = k else {
                bail!("{}: key {k:?} is not a string", p.display());
            };
            origin.entry(k.clone()).or_insert_with(|| p.clone());
        }
        merge_under(&mut acc, m);
    }
    Ok(acc)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// What a deployment follows (its `.origin` file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `refspec=[remote:]ref`
    Refspec(String),
    /// `container-image-reference=<imgref>`
    Container(String),
}

impl Origin {
    /// The `.origin` keyfile.
    pub fn keyfile(&self) -> String {
        match self {
            Origin::Refspec(r) => format!("[origin]\nrefspec={r}\n"),
            Origin::Container(i) => format!("[origin]\ncontainer-image-reference={i}\n"),
        }
    }
}

/// Deserialize `m[key]` (when present) with an error naming file and key.
fn take<T: DeserializeOwned>(
    m: &Mapping,
    origin: &BTreeMap<String, PathBuf>,
    key: &str,
) -> Result<Option<T>> {
    let Some(v) = m.get(key) else {
        return Ok(None);
    };
    let file = origin
        .get(key)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    serde_yaml::from_value(v.clone())
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{file}: key {key}: {e}"))
}

impl ImageConfig {
    /// Load `image.yaml` from the config dir with its includes (defaults
    /// when it is missing).
    pub fn load(config_dir: &Path) -> Result<ImageConfig> {
        let p = config_dir.join("image.yaml");
        if !p.exists() {
            return Ok(ImageConfig::default());
        }
        Self::load_file(&p)
    }

    /// Load one image.yaml file and what it includes.
    pub fn load_file(path: &Path) -> Result<ImageConfig> {
        let mut files = Vec::new();
        let mut origin = BTreeMap::new();
        let m = flatten(path, &mut files, &mut origin)?;
        let mut c = ImageConfig {
            files,
            ..ImageConfig::default()
        };
        for (key, file) in &origin {
            match KEYS.iter().find(|(k, _)| k == key) {
                None => bail!(
                    "{}: unknown image.yaml key {key:?} (coreos-assembler's keys: {})",
                    file.display(),
                    KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ),
                Some((_, Use::NotActed(why))) => c.warnings.push(format!(
                    "image.yaml key {key} (from {}) is not acted on: {why}",
                    file.display()
                )),
                Some((_, Use::Acted)) => {}
            }
        }
        let get = |k: &str| -> Result<Option<String>> { take(&m, &origin, k) };
        if let Some(v) = take(&m, &origin, "size")? {
            c.size = v;
        }
        if let Some(v) = take(&m, &origin, "extra-kargs")? {
            c.extra_kargs = v;
        }
        c.osname = get("osname")?;
        if let Some(v) = get("bootfs")? {
            c.bootfs = v;
        }
        if let Some(v) = get("rootfs")? {
            c.rootfs = v;
        }
        c.rootfs_args = get("rootfs-args")?.filter(|s| !s.trim().is_empty());
        c.compressor = get("compressor")?;
        if let Some(v) = take(&m, &origin, "platform-compressor")? {
            c.platform_compressor = v;
        }
        c.ignition_network_kcmdline = take(&m, &origin, "ignition-network-kcmdline")?;
        c.ostree_remote = get("ostree-remote")?.filter(|s| !s.is_empty());
        if let Some(v) = take(&m, &origin, "deploy-via-container")? {
            c.deploy_via_container = v;
        }
        c.container_imgref = get("container-imgref")?.filter(|s| !s.is_empty());
        if let Some(v) = get("vmware-os-type")? {
            c.vmware_os_type = v;
        }
        if let Some(v) = take(&m, &origin, "vmware-hw-version")? {
            c.vmware_hw_version = v;
        }
        if let Some(v) = take(&m, &origin, "vmware-secure-boot")? {
            c.vmware_secure_boot = v;
        }
        if let Some(v) = get("squashfs-compression")? {
            c.squashfs_compression = v;
        }
        let path_of = |k: &str| -> Result<Option<PathBuf>> {
            Ok(get(k)?.map(|v| {
                let base = origin
                    .get(k)
                    .and_then(|f| f.parent())
                    .unwrap_or(Path::new("."));
                base.join(v)
            }))
        };
        c.efi_signing = match (path_of("efi-signing-key")?, path_of("efi-signing-cert")?) {
            (Some(key), Some(cert)) => Some(EfiSigning { key, cert }),
            (None, None) => None,
            _ => bail!(
                "image.yaml ({}) names only one of efi-signing-key and efi-signing-cert: \
                 sbsign needs both",
                origin
                    .get("efi-signing-key")
                    .or(origin.get("efi-signing-cert"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        };
        let from = |k: &str| {
            origin
                .get(k)
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        if let Some(t) = get("live-rootfs-fstype")?
            && t != "squashfs"
        {
            c.warnings.push(format!(
                "image.yaml key live-rootfs-fstype (from {}) is {t:?}: cosa makes the live rootfs as squashfs",
                from("live-rootfs-fstype")
            ));
        }
        if get("live-rootfs-fsoptions")?.is_some() {
            c.warnings.push(format!(
                "image.yaml key live-rootfs-fsoptions (from {}) is not acted on: they are mkfs.erofs options and cosa makes squashfs (see squashfs-compression)",
                from("live-rootfs-fsoptions")
            ));
        }
        if c.rootfs_args.is_some() {
            c.warnings.push(format!(
                "image.yaml key rootfs-args (from {}) is not acted on: they are arguments for mkfs.{}, and cosa makes the root file system as ext4 from a directory",
                from("rootfs-args"),
                c.rootfs
            ));
        }
        let at = from("size");
        if c.size == 0 {
            bail!("{at}: size must be at least 1 (GiB)");
        }
        if c.bootfs != "ext4" {
            bail!(
                "{}: bootfs {:?} is not supported; cosa makes the boot file system as ext4",
                from("bootfs"),
                c.bootfs
            );
        }
        if !matches!(c.rootfs.as_str(), "ext4" | "xfs") {
            bail!(
                "{}: rootfs {:?} is not supported (ext4, or xfs which cosa makes as ext4)",
                from("rootfs"),
                c.rootfs
            );
        }
        Ok(c)
    }

    /// Whether `rootfs: xfs` was asked for (cosa makes ext4: file systems
    /// are built from directories without mounts, and `mkfs.xfs -p` cannot
    /// make the hardlinks and xattrs of an OSTree deployment).
    pub fn rootfs_substituted(&self) -> bool {
        self.rootfs != "ext4"
    }

    /// The kernel arguments Ignition's first boot gets for networking.
    pub fn ignition_network(&self) -> Vec<String> {
        match &self.ignition_network_kcmdline {
            Some(v) => v.clone(),
            None => DEFAULT_IGNITION_NETWORK
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// The content of `/boot/ignition.firstboot`, which GRUB sources on the
    /// first boot: empty, or `set ignition_network_kcmdline='...'`.
    pub fn ignition_firstboot(&self) -> String {
        let net = self.ignition_network();
        if net.is_empty() {
            String::new()
        } else {
            format!("set ignition_network_kcmdline='{}'\n", net.join(" "))
        }
    }

    /// What the deployment's origin follows, for commit ref `ostree_ref`:
    /// `refspec=[<ostree-remote>:]<ref>`, or with `deploy-via-container`
    /// `container-image-reference=<container-imgref>` (default, as
    /// coreos-assembler: `ostree-image-signed:oci-archive:/<oci archive>`).
    pub fn origin(&self, ostree_ref: &str, oci_archive: &str) -> Origin {
        if self.deploy_via_container {
            return Origin::Container(
                self.container_imgref
                    .clone()
                    .unwrap_or_else(|| format!("ostree-image-signed:oci-archive:/{oci_archive}")),
            );
        }
        Origin::Refspec(match &self.ostree_remote {
            Some(r) => format!("{r}:{ostree_ref}"),
            None => ostree_ref.to_string(),
        })
    }

    /// The flattened configuration as JSON (coreos-assembler's image.json),
    /// and its sha256 (meta.json's `coreos-assembler.image-config-checksum`).
    pub fn to_json(&self) -> Result<(Vec<u8>, String)> {
        let v = serde_json::to_vec_pretty(self)?;
        let d = crate::util::digest::sha256_hex(&v);
        Ok((v, d))
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

    fn write(d: &Path, name: &str, text: &str) {
        std::fs::write(d.join(name), text).unwrap();
    }

    #[test]
    fn loads_upstream_shaped_files() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "image.yaml",
            "size: 8\nextra-kargs:\n  - mitigations=auto,nosmt\nrootfs: xfs\nvmware-os-type: x\n",
        );
        write(
            d.path(),
            "platforms.yaml",
            "x86_64:\n  qemu:\n    grub_commands:\n      - serial --speed=115200\n    kernel_arguments:\n      - console=ttyS0,115200n8\n",
        );
        let i = ImageConfig::load(d.path()).unwrap();
        assert_eq!(i.size, 8);
        assert_eq!(i.extra_kargs, ["mitigations=auto,nosmt"]);
        assert!(i.rootfs_substituted());
        assert_eq!(i.vmware_os_type, "x");
        let p = Platforms::load(d.path()).unwrap();
        assert_eq!(
            p.get("x86_64", "qemu").kernel_arguments,
            ["console=ttyS0,115200n8"]
        );
        assert_eq!(p.get("x86_64", "metal"), PlatformConfig::default());
    }

    #[test]
    fn include_chains_merge_as_coreos_assembler() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        write(
            d.path(),
            "image.yaml",
            "include: sub/image-base.yaml\nsize: 12\nextra-kargs: [a=1]\nplatform-compressor:\n  qemu: zstd\n",
        );
        // Relative to the including file.
        write(
            &d.path().join("sub"),
            "image-base.yaml",
            "include: ../common.yaml\nsize: 10\nextra-kargs: [b=2, a=1]\ncompressor: xz\nostree-remote: fedora\nplatform-compressor:\n  qemu: gzip\n  metal: xz\n",
        );
        write(
            d.path(),
            "common.yaml",
            "extra-kargs: [c=3]\nignition-network-kcmdline: []\nvmware-hw-version: 17\n",
        );
        let i = ImageConfig::load(d.path()).unwrap();
        assert_eq!(i.size, 12, "the includer wins");
        assert_eq!(i.extra_kargs, ["a=1", "b=2", "c=3"]);
        assert_eq!(i.compressor.as_deref(), Some("xz"));
        assert_eq!(i.platform_compressor["qemu"], "zstd");
        assert_eq!(i.platform_compressor["metal"], "xz");
        assert_eq!(i.vmware_hw_version, 17);
        assert_eq!(i.ignition_firstboot(), "");
        assert_eq!(i.files.len(), 3);
        assert_eq!(
            i.origin("fedora/x86_64/coreos/stable", "x.ociarchive")
                .keyfile(),
            "[origin]\nrefspec=fedora:fedora/x86_64/coreos/stable\n"
        );
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    }

    #[test]
    fn defaults_and_origins() {
        let i = ImageConfig::default();
        assert_eq!(
            i.ignition_firstboot(),
            "set ignition_network_kcmdline='ip=auto rd.neednet=1'\n"
        );
        let c = ImageConfig {
            deploy_via_container: true,
            ..ImageConfig::default()
        };
        assert_eq!(
            c.origin("r", "os-1-ostree.x86_64.ociarchive"),
            Origin::Container(
                "ostree-image-signed:oci-archive:/os-1-ostree.x86_64.ociarchive".into()
            )
        );
        let c = ImageConfig {
            deploy_via_container: true,
            container_imgref: Some("ostree-remote-registry:fedora:quay.io/x/y:stable".into()),
            ..ImageConfig::default()
        };
        assert_eq!(
            c.origin("r", "a").keyfile(),
            "[origin]\ncontainer-image-reference=ostree-remote-registry:fedora:quay.io/x/y:stable\n"
        );
    }

    #[test]
    fn unknown_and_unacted_keys_are_named() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "image.yaml", "include: base.yaml\n");
        write(d.path(), "base.yaml", "aws-volume-type: gp3\nsizee: 3\n");
        let e = format!("{:#}", ImageConfig::load(d.path()).unwrap_err());
        assert!(e.contains("base.yaml") && e.contains("\"sizee\""), "{e}");
        write(
            d.path(),
            "base.yaml",
            "aws-volume-type: gp3\nrootfs-args: -m bigtime=1\n",
        );
        let i = ImageConfig::load(d.path()).unwrap();
        assert_eq!(i.warnings.len(), 2, "{:?}", i.warnings);
        assert!(i.warnings[0].contains("aws-volume-type") && i.warnings[0].contains("base.yaml"));
        assert!(i.warnings[1].contains("rootfs-args"), "{:?}", i.warnings);
        write(d.path(), "base.yaml", "size: ten\n");
        let e = format!("{:#}", ImageConfig::load(d.path()).unwrap_err());
        assert!(e.contains("base.yaml: key size"), "{e}");
        write(d.path(), "base.yaml", "include: image.yaml\n");
        let e = format!("{:#}", ImageConfig::load(d.path()).unwrap_err());
        assert!(e.contains("include cycle"), "{e}");
        write(d.path(), "base.yaml", "include: missing.yaml\n");
        let e = format!("{:#}", ImageConfig::load(d.path()).unwrap_err());
        assert!(e.contains("missing.yaml"), "{e}");
    }

    #[test]
    fn bad_yaml_names_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "platforms.yaml",
            "x86_64:\n  qemu:\n    bogus: 1\n",
        );
        let e = format!("{:#}", Platforms::load(d.path()).unwrap_err());
        assert!(e.contains("platforms.yaml:3"), "{e}");
        write(d.path(), "image.yaml", "size: 0\n");
        assert!(ImageConfig::load(d.path()).is_err());
    }
}
