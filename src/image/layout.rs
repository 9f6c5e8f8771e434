//! Fedora CoreOS's disk layout per architecture (coreos-assembler's
//! `create_disk.sh`): partition numbers, names, type GUIDs and sizes, with
//! every partition aligned to 1 MiB.

use anyhow::{Result, bail, ensure};

use super::gpt::{self, GptPartition, Guid};

pub const MIB: u64 = 1024 * 1024;

pub const TYPE_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
pub const TYPE_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
pub const TYPE_LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
pub const TYPE_RESERVED: &str = "8DA63339-0007-60C0-C436-083AC8230908";
/// The PowerPC Reference Platform boot partition: Open Firmware loads the
/// ELF image written into it raw (GRUB's core image on ppc64le).
pub const TYPE_PREP: &str = "9E1A2D38-C612-4316-AA26-8B49521E5A8B";
/// GPT attribute bit 2, "legacy BIOS bootable": upstream's osbuild manifest
/// marks the PReP partition `bootable: true`, which sfdisk writes as this.
pub const ATTR_LEGACY_BOOTABLE: u64 = 1 << 2;

/// Upstream's sentinel disk GUID: Ignition's first boot randomizes it.
pub const DISK_GUID: &str = "00000000-0000-4000-a000-000000000001";
/// Upstream's fixed file system UUIDs, also changed on first boot.
pub const BOOTFS_UUID: &str = "96d15588-3596-4b3c-adca-a2ff7279ea63";
pub const ROOTFS_UUID: &str = "910678ff-f77e-4a7d-8d53-86f2ac47a823";

/// What a partition holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    BiosBoot,
    /// PowerPC PReP boot: the raw GRUB core image (ppc64le).
    Prep,
    Reserved,
    Esp,
    Boot,
    Root,
}

#[derive(Clone, Debug)]
pub struct Part {
    pub index: usize,
    pub name: &'static str,
    pub role: Role,
    pub type_guid: &'static str,
    /// Byte offset and size in the disk.
    pub offset: u64,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct Layout {
    pub arch: String,
    pub sector: u64,
    pub total: u64,
    pub parts: Vec<Part>,
}

impl Layout {
    /// The layout for `arch` with `sector`-byte sectors: either a disk of
    /// `disk_size` bytes (root takes the rest) or, with `disk_size` None, a
    /// root partition of `root_size` bytes and a disk just big enough.
    pub fn new(arch: &str, sector: u64, disk_size: Option<u64>, root_size: u64) -> Result<Layout> {
        ensure!(
            sector == 512 || sector == 4096,
            "unsupported sector size {sector}"
        );
        let fixed: &[(usize, &str, Role, &str, u64)] = match arch {
            "x86_64" => &[
                (1, "BIOS-BOOT", Role::BiosBoot, TYPE_BIOS_BOOT, MIB),
                (2, "EFI-SYSTEM", Role::Esp, TYPE_ESP, 127 * MIB),
                (3, "boot", Role::Boot, TYPE_LINUX, 384 * MIB),
            ],
            "aarch64" => &[
                (1, "reserved", Role::Reserved, TYPE_RESERVED, MIB),
                (2, "EFI-SYSTEM", Role::Esp, TYPE_ESP, 127 * MIB),
                (3, "boot", Role::Boot, TYPE_LINUX, 384 * MIB),
            ],
            "ppc64le" => &[
                (1, "PowerPC-PReP-boot", Role::Prep, TYPE_PREP, 4 * MIB),
                (2, "reserved", Role::Reserved, TYPE_RESERVED, MIB),
                (3, "boot", Role::Boot, TYPE_LINUX, 384 * MIB),
            ],
            "s390x" => &[(3, "boot", Role::Boot, TYPE_LINUX, 384 * MIB)],
            other => {
                bail!("no disk layout for architecture {other} (x86_64, aarch64, ppc64le, s390x)")
            }
        };
        let mut parts = Vec::new();
        let mut offset = MIB;
        for (index, name, role, ty, size) in fixed {
            parts.push(Part {
                index: *index,
                name,
                role: *role,
                type_guid: ty,
                offset,
                size: *size,
            });
            offset += size;
        }
        let es = gpt::entry_sectors(sector);
        let tail = (1 + es) * sector;
        let total = match disk_size {
            Some(d) => {
                ensure!(
                    d > offset + tail + 64 * MIB,
                    "a disk of {} MiB is too small for this layout",
                    d / MIB
                );
                d / sector * sector
            }
            None => offset + root_size.div_ceil(MIB) * MIB + MIB,
        };
        let last_usable = gpt::usable(sector, total / sector).1;
        let root_size = (last_usable + 1) * sector - offset;
        parts.push(Part {
            index: 4,
            name: "root",
            role: Role::Root,
            type_guid: TYPE_LINUX,
            offset,
            size: root_size,
        });
        Ok(Layout {
            arch: arch.to_string(),
            sector,
            total,
            parts,
        })
    }

    pub fn part(&self, role: Role) -> Option<&Part> {
        self.parts.iter().find(|p| p.role == role)
    }

    /// The GPT entries, with partition GUIDs derived from `seed`.
    pub fn gpt_partitions(&self, seed: &str) -> Result<Vec<GptPartition>> {
        self.parts
            .iter()
            .map(|p| {
                Ok(GptPartition {
                    index: p.index,
                    name: p.name.to_string(),
                    type_guid: Guid::parse(p.type_guid)?,
                    guid: Guid::derived(&format!("{seed}/{}", p.name)),
                    first_lba: p.offset / self.sector,
                    last_lba: (p.offset + p.size) / self.sector - 1,
                    attributes: if p.role == Role::Prep {
                        ATTR_LEGACY_BOOTABLE
                    } else {
                        0
                    },
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_matches_upstream_offsets() {
        let l = Layout::new("x86_64", 512, Some(10 * 1024 * MIB), 0).unwrap();
        let offs: Vec<_> = l
            .parts
            .iter()
            .map(|p| (p.index, p.offset / MIB, p.size / MIB))
            .collect();
        assert_eq!(offs[..3], [(1, 1, 1), (2, 2, 127), (3, 129, 384)]);
        assert_eq!(l.parts[3].offset / MIB, 513);
        assert_eq!(l.total, 10 * 1024 * MIB);
        // root ends at the last usable sector
        assert_eq!(
            (l.parts[3].offset + l.parts[3].size) / 512 - 1,
            gpt::usable(512, l.total / 512).1
        );
    }

    #[test]
    fn other_arches_and_fit_to_content() {
        let a = Layout::new("aarch64", 4096, None, 300 * MIB).unwrap();
        assert_eq!(a.parts[0].name, "reserved");
        assert!(a.parts[3].size >= 300 * MIB);
        let s = Layout::new("s390x", 512, None, 100 * MIB).unwrap();
        assert_eq!(s.parts.iter().map(|p| p.index).collect::<Vec<_>>(), [3, 4]);
        assert!(Layout::new("riscv64", 512, None, 1).is_err());
        // ppc64le: upstream's PReP (4 MiB, bootable), reserved, boot, root.
        let p = Layout::new("ppc64le", 512, Some(10 * 1024 * MIB), 0).unwrap();
        let offs: Vec<_> = p
            .parts
            .iter()
            .map(|p| (p.index, p.name, p.offset / MIB, p.size / MIB))
            .collect();
        assert_eq!(
            offs[..3],
            [
                (1, "PowerPC-PReP-boot", 1, 4),
                (2, "reserved", 5, 1),
                (3, "boot", 6, 384)
            ]
        );
        assert_eq!((offs[3].0, offs[3].2), (4, 390));
        let g = p.gpt_partitions("s").unwrap();
        assert_eq!(g[0].type_guid, Guid::parse(TYPE_PREP).unwrap());
        assert_eq!(g[0].attributes, ATTR_LEGACY_BOOTABLE);
        assert!(g[1..].iter().all(|e| e.attributes == 0));
        assert!(Layout::new("x86_64", 512, Some(100 * MIB), 0).is_err());
    }
}
