//! What an ELF program needs to run, read from its headers (never by
//! running it or the target's `ldd`, so any architecture's tree can be
//! read on any host): the program interpreter (`PT_INTERP`) and the shared
//! libraries of its dynamic section (`DT_NEEDED`, `DT_RUNPATH`,
//! `DT_RPATH`). 32- and 64-bit, little- and big-endian.

use anyhow::{Context, Result, bail, ensure};

/// The dynamic-linking facts of one ELF file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dynamic {
    /// `PT_INTERP`: the dynamic loader's path (`/lib64/ld-linux-x86-64.so.2`).
    pub interpreter: Option<String>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, else `DT_RPATH`, split at `:`.
    pub runpath: Vec<String>,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

struct Reader<'a> {
    data: &'a [u8],
    big: bool,
    wide: bool,
}

impl Reader<'_> {
    fn bytes(&self, off: u64, len: u64) -> Result<&[u8]> {
        let end = off.checked_add(len).context("offset overflow")?;
        ensure!(
            end <= self.data.len() as u64,
            "truncated: {len} bytes at {off} past the end ({} bytes)",
            self.data.len()
        );
        Ok(&self.data[off as usize..end as usize])
    }
    fn u16(&self, off: u64) -> Result<u16> {
        let b: [u8; 2] = self.bytes(off, 2)?.try_into()?;
        Ok(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    fn u32(&self, off: u64) -> Result<u32> {
        let b: [u8; 4] = self.bytes(off, 4)?.try_into()?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn u64(&self, off: u64) -> Result<u64> {
        let b: [u8; 8] = self.bytes(off, 8)?.try_into()?;
        Ok(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
    /// A word: 8 bytes in ELF64, 4 in ELF32.
    fn word(&self, off: u64) -> Result<u64> {
        if self.wide {
            self.u64(off)
        } else {
            self.u32(off).map(u64::from)
        }
    }
    fn cstr(&self, off: u64) -> Result<String> {
        ensure!(off < self.data.len() as u64, "string at {off} past the end");
        let rest = &self.data[off as usize..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .context("unterminated string")?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Whether `data` starts like an ELF file.
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// Read the dynamic-linking facts of the ELF file `data`. A static program
/// (no `PT_DYNAMIC`) has none; a file that is not ELF is an error.
pub fn dynamic(data: &[u8]) -> Result<Dynamic> {
    ensure!(is_elf(data), "not an ELF file");
    ensure!(data.len() >= 52, "truncated ELF header");
    let wide = match data[4] {
        1 => false,
        2 => true,
        c => bail!("unknown ELF class {c}"),
    };
    let big = match data[5] {
        1 => false,
        2 => true,
        e => bail!("unknown ELF data encoding {e}"),
    };
    let r = Reader { data, big, wide };
    let (phoff, phentsize, phnum) = if wide {
        (r.u64(32)?, r.u16(54)?, r.u16(56)?)
    } else {
        (u64::from(r.u32(28)?), r.u16(42)?, r.u16(44)?)
    };
    let mut segments = Vec::new();
    for i in 0..u64::from(phnum) {
        let at = phoff + i * u64::from(phentsize);
        let kind = r.u32(at)?;
        let seg = if wide {
            Segment {
                kind,
                offset: r.u64(at + 8)?,
                vaddr: r.u64(at + 16)?,
                filesz: r.u64(at + 32)?,
            }
        } else {
            Segment {
                kind,
                offset: u64::from(r.u32(at + 4)?),
                vaddr: u64::from(r.u32(at + 8)?),
                filesz: u64::from(r.u32(at + 16)?),
            }
        };
        segments.push(seg);
    }
    let mut out = Dynamic::default();
    if let Some(s) = segments.iter().find(|s| s.kind == PT_INTERP) {
        let b = r.bytes(s.offset, s.filesz)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        out.interpreter = Some(String::from_utf8_lossy(&b[..end]).into_owned());
    }
    let Some(dynseg) = segments.iter().find(|s| s.kind == PT_DYNAMIC) else {
        return Ok(out);
    };
    // The dynamic section: (tag, value) words up to DT_NULL.
    let entsize = if wide { 16 } else { 8 };
    let word = if wide { 8 } else { 4 };
    let mut entries = Vec::new();
    let mut at = dynseg.offset;
    while at + entsize <= dynseg.offset + dynseg.filesz {
        let tag = r.word(at)?;
        if tag == DT_NULL {
            break;
        }
        entries.push((tag, r.word(at + word)?));
        at += entsize;
    }
    let strtab_vaddr = entries
        .iter()
        .find(|(t, _)| *t == DT_STRTAB)
        .map(|(_, v)| *v)
        .context("a dynamic section without DT_STRTAB")?;
    // DT_STRTAB is an address: the PT_LOAD segment holding it says where
    // it is in the file.
    let strtab = segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| strtab_vaddr >= s.vaddr && strtab_vaddr < s.vaddr + s.filesz)
        .map(|s| strtab_vaddr - s.vaddr + s.offset)
        .context("DT_STRTAB is in no loaded segment")?;
    let mut rpath = Vec::new();
    for (tag, val) in entries {
        match tag {
            DT_NEEDED => out.needed.push(r.cstr(strtab + val)?),
            DT_RUNPATH => out.runpath = split_path(&r.cstr(strtab + val)?),
            DT_RPATH => rpath = split_path(&r.cstr(strtab + val)?),
            _ => {}
        }
    }
    if out.runpath.is_empty() {
        out.runpath = rpath;
    }
    Ok(out)
}

fn split_path(s: &str) -> Vec<String> {
    s.split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_host_program_as_readelf_does() {
        // /bin/sh on any Debian host is dynamic and needs libc.
        let data = std::fs::read("/bin/sh").unwrap();
        let d = dynamic(&data).unwrap();
        assert!(d.interpreter.as_deref().unwrap().contains("ld-"));
        assert!(d.needed.iter().any(|n| n.starts_with("libc.so")), "{d:?}");
        let out = std::process::Command::new("readelf")
            .args(["-d", "/bin/sh"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let want: Vec<String> = text
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_string))
            .collect();
        assert_eq!(d.needed, want);
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(dynamic(b"not elf").is_err());
        let data = std::fs::read("/bin/sh").unwrap();
        assert!(dynamic(&data[..60]).is_err());
    }
}
