//! File capabilities: turn rpm's `FILECAPS` text (libcap's `cap_to_text`
//! form, e.g. `cap_net_raw=ep` or `cap_net_admin,cap_net_raw+ep`) into the
//! binary `security.capability` xattr (`struct vfs_cap_data`, revision 2),
//! as rpm does with `cap_from_text` + `cap_set_fd`.

use anyhow::{Result, bail};

/// Capability names in bit order (linux/capability.h).
const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The xattr name the kernel reads file capabilities from.
pub const XATTR: &str = "security.capability";

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x1;

/// Parsed capability sets as 64-bit masks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

fn cap_bit(name: &str) -> Result<u64> {
    let n = name.trim().to_ascii_lowercase();
    let n = n.strip_prefix("cap_").unwrap_or(&n);
    if let Ok(num) = n.parse::<u32>() {
        if num < 64 {
            return Ok(1 << num);
        }
    }
    match NAMES.iter().position(|c| *c == n) {
        Some(i) => Ok(1 << i),
        None => bail!("unknown capability {name:?}"),
    }
}

/// Parse the text form: whitespace-separated clauses `caplist op flags [op flags]...`
/// where op is `=`, `+` or `-` and flags are letters of `eip`.
pub fn parse(text: &str) -> Result<CapSets> {
    let all: u64 = (1u64 << NAMES.len()) - 1;
    let mut sets = CapSets::default();
    for clause in text.split_whitespace() {
        let Some(op_at) = clause.find(['=', '+', '-']) else {
            bail!("capability clause {clause:?} has no operator (=, + or -)");
        };
        let (list, mut ops) = clause.split_at(op_at);
        let mut mask = 0u64;
        if list.is_empty() || list.eq_ignore_ascii_case("all") {
            mask = all;
        } else {
            for name in list.split(',') {
                mask |= cap_bit(name)?;
            }
        }
        while let Some(op) = ops.chars().next() {
            let rest = &ops[1..];
            let end = rest.find(['=', '+', '-']).unwrap_or(rest.len());
            let flags = &rest[..end];
            ops = &rest[end..];
            if op == '=' {
                sets.effective &= !mask;
                sets.permitted &= !mask;
                sets.inheritable &= !mask;
            }
            for f in flags.chars() {
                let set = match f {
                    'e' => &mut sets.effective,
                    'p' => &mut sets.permitted,
                    'i' => &mut sets.inheritable,
                    _ => bail!("unknown capability flag {f:?} in {text:?}"),
                };
                if op == '-' {
                    *set &= !mask;
                } else {
                    *set |= mask;
                }
            }
        }
    }
    Ok(sets)
}

/// Encode as `struct vfs_cap_data` revision 2 (20 bytes, little-endian).
pub fn encode(sets: &CapSets) -> Vec<u8> {
    let magic = VFS_CAP_REVISION_2
        | if sets.effective != 0 {
            VFS_CAP_FLAGS_EFFECTIVE
        } else {
            0
        };
    let mut out = Vec::with_capacity(20);
    out.extend_from_slice(&magic.to_le_bytes());
    for half in [0u32, 32] {
        out.extend_from_slice(&((sets.permitted >> half) as u32).to_le_bytes());
        out.extend_from_slice(&((sets.inheritable >> half) as u32).to_le_bytes());
    }
    out
}

/// Text form to xattr value.
pub fn to_xattr(text: &str) -> Result<Vec<u8>> {
    Ok(encode(&parse(text)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let s = parse("cap_net_raw=ep").unwrap();
        assert_eq!(s.permitted, 1 << 13);
        assert_eq!(s.effective, 1 << 13);
        assert_eq!(s.inheritable, 0);
        let s = parse("cap_net_admin,cap_net_raw+ep").unwrap();
        assert_eq!(s.permitted, (1 << 12) | (1 << 13));
        let s = parse("cap_setuid=eip cap_setuid-e").unwrap();
        assert_eq!(s.effective, 0);
        assert_eq!(s.inheritable, 1 << 7);
        let s = parse("CAP_BPF=p").unwrap();
        assert_eq!(s.permitted, 1 << 39);
        assert!(parse("cap_bogus=ep").is_err());
        assert!(parse("cap_net_raw").is_err());
        assert!(parse("cap_net_raw=x").is_err());
    }

    #[test]
    fn encodes_vfs_cap_data_v2() {
        let v = to_xattr("cap_net_raw=ep").unwrap();
        assert_eq!(
            v,
            [
                0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        let v = to_xattr("cap_bpf=p").unwrap();
        assert_eq!(&v[..4], &[0, 0, 0, 0x02]);
        assert_eq!(&v[12..16], &(1u32 << 7).to_le_bytes());
    }
}
