//! Splitting `packages` entries as rpm-ostree does.

use anyhow::{Result, anyhow, bail};

use super::values::Source;

/// rpm dependency comparison operators (dnf also accepts `==`).
pub(super) const DEP_OPS: &[&str] = &["<", "<=", "=", "==", ">=", ">"];

/// Split each `packages` entry as rpm-ostree does (whitespace, except inside
/// single quotes, which are removed), keeping `name op version` triples and
/// parenthesised rich dependencies whole.
pub(super) fn split_package_list(
    src: &Source,
    key: &str,
    entries: &[String],
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in entries {
        out.extend(split_package_entry(e).map_err(|err| src.err(key, err))?);
    }
    Ok(out)
}

pub(super) fn split_package_entry(entry: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = entry;
    while let Some(open) = rest.find('\'') {
        out.extend(group_tokens(entry, &rest[..open])?);
        let after = &rest[open + 1..];
        let close = after
            .find('\'')
            .ok_or_else(|| anyhow!("missing terminating quote in package entry {entry:?}"))?;
        let quoted = after[..close].trim();
        if !quoted.is_empty() {
            out.push(quoted.to_string());
        }
        rest = &after[close + 1..];
    }
    out.extend(group_tokens(entry, rest)?);
    Ok(out)
}

/// Whitespace-split `s`, re-joining `name op version` and `( ... )` groups.
pub(super) fn group_tokens(entry: &str, s: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    // Whether the last item of `out` is a plain name an operator may follow.
    let mut last_is_name = false;
    let mut tokens = s.split_whitespace();
    while let Some(tok) = tokens.next() {
        if tok.starts_with('(') {
            let mut group = tok.to_string();
            let mut depth = paren_depth(tok);
            while depth > 0 {
                let next = tokens
                    .next()
                    .ok_or_else(|| anyhow!("unbalanced parentheses in package entry {entry:?}"))?;
                depth += paren_depth(next);
                group.push(' ');
                group.push_str(next);
            }
            if depth < 0 {
                bail!("unbalanced parentheses in package entry {entry:?}");
            }
            out.push(group);
            last_is_name = false;
        } else if DEP_OPS.contains(&tok) {
            let version = tokens.next();
            match (last_is_name, version) {
                (true, Some(ver)) if !DEP_OPS.contains(&ver) => {
                    let name = out.pop().unwrap_or_default();
                    out.push(format!("{name} {tok} {ver}"));
                    last_is_name = false;
                }
                _ => bail!(
                    "operator {tok:?} in package entry {entry:?} must stand between a package name and a version"
                ),
            }
        } else {
            out.push(tok.to_string());
            last_is_name = true;
        }
    }
    Ok(out)
}

pub(super) fn paren_depth(tok: &str) -> i32 {
    tok.chars()
        .map(|c| match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_package_entry(s).unwrap()
    }

    #[test]
    fn package_entries_split_like_rpm_ostree() {
        assert_eq!(split("a b  c"), ["a", "b", "c"]);
        assert_eq!(split("'podman >= 4.1'"), ["podman >= 4.1"]);
        assert_eq!(split("x 'podman >= 4.1' y"), ["x", "podman >= 4.1", "y"]);
        assert_eq!(split("kernel-6.9.11-100.fc39"), ["kernel-6.9.11-100.fc39"]);
        assert_eq!(split("/usr/bin/python3"), ["/usr/bin/python3"]);
        assert_eq!(split("podman>=4.1"), ["podman>=4.1"]);
        // Extensions: unquoted versioned specs and rich deps stay whole.
        assert_eq!(split("podman >= 4.1"), ["podman >= 4.1"]);
        assert_eq!(split("a b = 1:2-3 c"), ["a", "b = 1:2-3", "c"]);
        assert_eq!(split("(a or (b and c)) d"), ["(a or (b and c))", "d"]);
        assert!(split_package_entry("'unterminated").is_err());
        assert!(split_package_entry(">= 1").is_err());
        assert!(split_package_entry("a >=").is_err());
        assert!(split_package_entry("(a or b").is_err());
    }
}
