//! Names that come from outside and end up in paths: build ids and arch
//! names (builds.json, meta.json, a remote store), artifact file names
//! (meta.json `images.*.path`), commit checksums. Each kind is checked by
//! one function here, where the name enters (parsing builds.json and
//! meta.json, `cosa meta --set`), so nothing downstream joins an unchecked
//! name onto a path.

use anyhow::{Result, bail};

use super::builds::{BUILDS_JSON, LATEST};

/// Checks shared by every name that becomes one path component.
fn component(what: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name.contains('/')
        || name.len() > 255
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        bail!(
            "invalid {what} {name:?}: it must be one path component (no '/'), not start \
             with '.', have no whitespace or control characters, and be at most 255 bytes"
        );
    }
    Ok(())
}

/// A build id: the name of a directory under builds/.
pub fn build_id(id: &str) -> Result<()> {
    component("build id", id)?;
    if id == LATEST || id == BUILDS_JSON {
        bail!("invalid build id {id:?}: it names a file of the build store");
    }
    Ok(())
}

/// An architecture name (`x86_64`, `aarch64`, `s390x`, `ppc64le`, ...):
/// lowercase letters, digits and `_`.
pub fn arch(a: &str) -> Result<()> {
    if a.is_empty()
        || a.len() > 32
        || !a
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        bail!("invalid architecture name {a:?}: expected lowercase letters, digits and '_'");
    }
    Ok(())
}

/// An artifact's file name in a build directory (meta.json `images.*.path`).
pub fn artifact_file(name: &str) -> Result<()> {
    component("artifact file name", name)
}

/// An OSTree commit checksum: 64 lowercase hex digits.
pub fn commit_checksum(c: &str) -> Result<()> {
    if c.len() != 64
        || !c
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        bail!("invalid OSTree commit checksum {c:?}: expected 64 lowercase hex digits");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_outside() {
        for ok in ["41.20240520.dev.0", "1.2-1", "x"] {
            build_id(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            ".hidden",
            "latest",
            "builds.json",
            "a b",
            "a\nb",
        ] {
            assert!(build_id(bad).is_err(), "{bad:?}");
        }
        for ok in ["x86_64", "aarch64", "s390x", "ppc64le", "riscv64"] {
            arch(ok).unwrap();
        }
        for bad in ["", "../../../x", "X86", "x86-64", "a/b", &"a".repeat(33)] {
            assert!(arch(bad).is_err(), "{bad:?}");
        }
        artifact_file("os-1-qemu.x86_64.qcow2").unwrap();
        for bad in ["../../etc/passwd", "/abs", "a/b", ".x", ""] {
            assert!(artifact_file(bad).is_err(), "{bad:?}");
        }
        commit_checksum(&"a".repeat(64)).unwrap();
        assert!(commit_checksum(&"A".repeat(64)).is_err());
        assert!(commit_checksum("abc").is_err());
    }
}
