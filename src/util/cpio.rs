//! newc ("070701") cpio archives, the format Linux unpacks an initramfs
//! from: a header of 13 hex fields per entry, the NUL-terminated name and
//! the data, each padded to 4 bytes, and a `TRAILER!!!` entry at the end.

use std::io::Write;

use anyhow::{Result, ensure};

/// The name of the last entry.
pub const TRAILER: &str = "TRAILER!!!";

/// One header: `ino` distinguishes entries (0 for the trailer), `nlink` is
/// 2 for directories and 1 otherwise; owner root. Returns the bytes
/// written (header, name and padding).
pub fn write_header(
    out: &mut impl Write,
    ino: u32,
    name: &str,
    mode: u32,
    size: u64,
    mtime: i64,
) -> Result<u64> {
    write_header_rdev(out, ino, name, mode, size, mtime, (0, 0))
}

/// [`write_header`] with the device numbers of a device node.
pub fn write_header_rdev(
    out: &mut impl Write,
    ino: u32,
    name: &str,
    mode: u32,
    size: u64,
    mtime: i64,
    rdev: (u32, u32),
) -> Result<u64> {
    ensure!(
        size <= u32::MAX as u64,
        "{name} is {size} bytes: too large for a newc cpio archive (4 GiB at most)"
    );
    let namesize = name.len() + 1;
    let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
    let hdr = format!(
        "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
        ino,
        mode,
        0,
        0,
        if name == TRAILER { 1 } else { nlink },
        mtime.clamp(0, u32::MAX as i64),
        size,
        0,
        0,
        rdev.0,
        rdev.1,
        namesize,
        0
    );
    out.write_all(hdr.as_bytes())?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    let pad = (4 - (110 + namesize) % 4) % 4;
    out.write_all(&[0u8; 3][..pad])?;
    Ok((110 + namesize + pad) as u64)
}

/// The zero bytes that pad `len` bytes of data to 4.
pub fn data_padding(len: u64) -> &'static [u8] {
    &[0u8; 3][..((4 - len % 4) % 4) as usize]
}

/// A whole archive in memory: entries in the order added, all owned by
/// root with one mtime, then the trailer.
pub struct Writer<W: Write> {
    out: W,
    next_ino: u32,
    mtime: i64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, mtime: i64) -> Self {
        Writer {
            out,
            next_ino: 1,
            mtime,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.entry_rdev(name, mode, data, (0, 0))
    }

    fn entry_rdev(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) -> Result<()> {
        let name = name.trim_start_matches('/');
        ensure!(!name.is_empty(), "an empty path in a cpio archive");
        let ino = self.next_ino;
        self.next_ino += 1;
        write_header_rdev(
            &mut self.out,
            ino,
            name,
            mode,
            data.len() as u64,
            self.mtime,
            rdev,
        )?;
        self.out.write_all(data)?;
        self.out.write_all(data_padding(data.len() as u64))?;
        Ok(())
    }

    pub fn dir(&mut self, name: &str, perm: u32) -> Result<()> {
        self.entry(name, 0o040000 | (perm & 0o7777), &[])
    }

    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> Result<()> {
        self.entry(name, 0o100000 | (perm & 0o7777), data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> Result<()> {
        self.entry(name, 0o120777, target.as_bytes())
    }

    /// A character device node (`/dev/console` is 5:1).
    pub fn chardev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> Result<()> {
        self.entry_rdev(name, 0o020000 | (perm & 0o7777), &[], (major, minor))
    }

    /// Write the trailer and return the inner writer.
    pub fn finish(mut self) -> Result<W> {
        write_header(&mut self.out, 0, TRAILER, 0, 0, 0)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_end_with_the_trailer() {
        let mut w = Writer::new(Vec::new(), 7);
        w.dir("usr", 0o755).unwrap();
        w.file("/usr/a", 0o644, b"hello").unwrap();
        w.symlink("bin", "usr/bin").unwrap();
        let data = w.finish().unwrap();
        assert_eq!(&data[..6], b"070701");
        assert_eq!(data.len() % 4, 0);
        let text = String::from_utf8_lossy(&data);
        assert!(text.contains("usr/a\0"));
        assert!(text.ends_with("TRAILER!!!\0\0\0\0"));
        // The file's mode: regular, 0644.
        let at = text.find("usr/a\0").unwrap() - 110;
        assert_eq!(&text[at + 14..at + 22], "000081a4");
    }
}
