//! Debian control files (deb-control(5)): paragraphs of `Field: value`
//! lines with continuation lines, and the relation fields (Depends and
//! friends) as rpm dependencies.
//!
//! Relations: `a (>= 1.2-3) | b:any, c` is a list of groups of
//! alternatives. The arch qualifiers `:any` and `:native` are dropped (one
//! architecture per repository); any other qualifier is refused. Arch
//! restrictions `[amd64]` and build profiles `<!nocheck>` belong to source
//! packages only (dpkg-gencontrol removes them from binary packages), so a
//! binary package carrying them is refused rather than silently guessed.
//! The obsolete operators `<` and `>` mean `<=` and `>=` (dpkg's reading).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

use super::version::rpm_evr;

/// One paragraph: field names (as written) with their values; lookups are
/// case-insensitive. Continuation lines are kept, joined with `\n`.
#[derive(Debug, Clone, Default)]
pub struct Paragraph {
    fields: BTreeMap<String, (String, String)>,
}

impl Paragraph {
    /// The value of `field`, if present.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .get(&field.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    /// The value of a field that must be there.
    pub fn require(&self, field: &str) -> Result<&str> {
        self.get(field)
            .with_context(|| format!("no {field} field in the control paragraph"))
    }

    /// Field names as written, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.values().map(|(n, _)| n.as_str())
    }
}

/// Parse a control file into its paragraphs (blank lines separate them;
/// `#` comment lines are skipped).
pub fn parse_paragraphs(text: &str) -> Result<Vec<Paragraph>> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    let mut last: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        if line.trim().is_empty() {
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            last = None;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let key = last
                .as_ref()
                .with_context(|| format!("line {lineno}: continuation line without a field"))?;
            let entry = cur
                .fields
                .get_mut(key)
                .with_context(|| format!("line {lineno}: lost field {key}"))?;
            entry.1.push('\n');
            entry.1.push_str(line.trim_end());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("line {lineno}: no `Field:` in {line:?}"))?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            bail!("line {lineno}: bad field name {name:?}");
        }
        let key = name.to_ascii_lowercase();
        if cur.fields.contains_key(&key) {
            bail!("line {lineno}: field {name} given twice in one paragraph");
        }
        cur.fields
            .insert(key.clone(), (name.to_string(), value.trim().to_string()));
        last = Some(key);
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// The single paragraph of a binary package's control file.
pub fn parse_control(text: &str) -> Result<Paragraph> {
    let mut ps = parse_paragraphs(text)?;
    match ps.len() {
        1 => Ok(ps.remove(0)),
        n => bail!("a binary package's control file has {n} paragraphs, expected 1"),
    }
}

/// A version relation operator, in Debian's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    fn parse(s: &str) -> Result<Op> {
        Ok(match s {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => bail!("unknown relation operator {s:?}"),
        })
    }

    /// rpm's spelling.
    pub fn rpm(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }
}

/// One alternative of a relation: a package name with an optional version
/// constraint (the Debian version, unmapped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub version: Option<(Op, String)>,
}

impl Relation {
    /// rpm's form: `name` or `name OP [E:]V-R`.
    pub fn to_rpm(&self) -> Result<String> {
        Ok(match &self.version {
            None => self.name.clone(),
            Some((op, v)) => format!(
                "{} {} {}",
                self.name,
                op.rpm(),
                rpm_evr(v)
                    .with_context(|| format!("in the relation on {}", self.name))?
                    .dep_string()
            ),
        })
    }
}

/// Alternatives `a | b | c`; a group of one is a plain relation.
pub type Group = Vec<Relation>;

fn valid_name(n: &str) -> bool {
    n.len() >= 2
        && n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

fn parse_relation(s: &str) -> Result<Relation> {
    let s = s.trim();
    // The version constraint `( ... )`, and what is outside it.
    let (outside, version) = match s.find('(') {
        Some(i) => {
            let j = s[i..]
                .find(')')
                .map(|j| i + j)
                .with_context(|| format!("unterminated version in {s:?}"))?;
            let inner = s[i + 1..j].trim();
            let op_len = inner
                .find(|c: char| !"<=>".contains(c))
                .with_context(|| format!("no version after the operator in {s:?}"))?;
            let op = Op::parse(&inner[..op_len]).with_context(|| format!("in {s:?}"))?;
            let v = inner[op_len..].trim();
            if v.is_empty() {
                bail!("no version in {s:?}");
            }
            super::version::DebVersion::parse(v).with_context(|| format!("in {s:?}"))?;
            (
                format!("{} {}", &s[..i], &s[j + 1..]),
                Some((op, v.to_string())),
            )
        }
        None => (s.to_string(), None),
    };
    if outside.contains('[') {
        bail!("architecture restriction in {s:?}: binary packages must not carry them");
    }
    if outside.contains('<') {
        bail!("build profile in {s:?}: binary packages must not carry them");
    }
    let head = outside.trim();
    let name = match head.split_once(':') {
        Some((n, "any" | "native")) => n,
        Some((_, q)) => bail!("arch qualifier :{q} in {s:?} (only :any and :native are known)"),
        None => head,
    };
    if !valid_name(name) {
        bail!("bad package name {name:?} in {s:?}");
    }
    Ok(Relation {
        name: name.to_string(),
        version,
    })
}

/// Parse a relation field (`Depends`, `Provides`...): comma-separated
/// groups of `|`-separated alternatives. Empty entries (a trailing comma)
/// are skipped.
pub fn parse_relations(field: &str) -> Result<Vec<Group>> {
    let mut out = Vec::new();
    for g in field.split(',') {
        if g.trim().is_empty() {
            continue;
        }
        let alts = g
            .split('|')
            .map(parse_relation)
            .collect::<Result<Vec<_>>>()?;
        out.push(alts);
    }
    Ok(out)
}

/// A group as an rpm dependency: `name [OP EVR]`, or the rich dependency
/// `(a OP EVR or b or ...)` for alternatives.
pub fn group_to_rpm(g: &Group) -> Result<String> {
    let alts = g.iter().map(Relation::to_rpm).collect::<Result<Vec<_>>>()?;
    Ok(match alts.as_slice() {
        [one] => one.clone(),
        _ => format!("({})", alts.join(" or ")),
    })
}

/// A relation field as rpm dependencies; None/empty field gives none.
pub fn field_to_rpm(p: &Paragraph, field: &str) -> Result<Vec<String>> {
    let Some(v) = p.get(field) else {
        return Ok(Vec::new());
    };
    let groups = parse_relations(v).with_context(|| format!("in the {field} field"))?;
    groups
        .iter()
        .map(group_to_rpm)
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("in the {field} field"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_with_continuations() {
        let text = "Package: foo\nVersion: 1.0-1\nDepends: a (>= 1),\n b | c\nDescription: short\n long line one\n .\n long line two\n";
        let p = parse_control(text).unwrap();
        assert_eq!(p.get("package"), Some("foo"));
        assert_eq!(p.get("DEPENDS"), Some("a (>= 1),\n b | c"));
        assert_eq!(
            p.get("Description"),
            Some("short\n long line one\n .\n long line two")
        );
        assert!(parse_control("Package: a\n\nPackage: b\n").is_err());
        assert!(parse_control(" continuation\n").is_err());
        assert!(parse_control("Package: a\nPackage: b\n").is_err());
        assert_eq!(parse_paragraphs("A: 1\n\n\nB: 2\n").unwrap().len(), 2);
    }

    fn rpm(field: &str) -> Vec<String> {
        let p = parse_control(&format!("Package: x\nDepends: {field}\n")).unwrap();
        field_to_rpm(&p, "Depends").unwrap()
    }

    #[test]
    fn relations_become_rpm_dependencies() {
        assert_eq!(
            rpm("libc6 (>= 2.34), libssl3 (>= 3.0.0)"),
            ["libc6 >= 2.34-0", "libssl3 >= 3.0.0-0"]
        );
        assert_eq!(
            rpm("zlib1g (>= 1:1.1.4), foo (<< 2.0-1~), bar (>> 1), baz (= 1.2-3), qq (<= 4)"),
            [
                "zlib1g >= 1:1.1.4-0",
                "foo < 2.0-1~",
                "bar > 1-0",
                "baz = 1.2-3",
                "qq <= 4-0"
            ]
        );
        // Alternatives: rich dependencies.
        assert_eq!(
            rpm("default-mta | mail-transport-agent, usrmerge (>= 35) | usr-is-merged"),
            [
                "(default-mta or mail-transport-agent)",
                "(usrmerge >= 35-0 or usr-is-merged)"
            ]
        );
        // Arch qualifiers dropped; obsolete operators.
        assert_eq!(
            rpm("python3:any (>= 3.11~), perl:native, aa (< 1), bb (> 2)"),
            ["python3 >= 3.11~-0", "perl", "aa <= 1-0", "bb >= 2-0"]
        );
        // Odd spacing, trailing comma, versions with `-` in upstream and `:`.
        assert_eq!(
            rpm("  aa(>=1.0-rc1-3)  ,bb (>=2:1.2:3-4),"),
            ["aa >= 1.0_rc1-3", "bb >= 2:1.2_3-4"]
        );
    }

    #[test]
    fn bad_relations_are_refused() {
        for bad in [
            "aa [amd64]",
            "aa (>= 1) [!i386]",
            "aa <!nocheck>",
            "aa:amd64",
            "aa (~ 1)",
            "aa (>= )",
            "aa (>= 1",
            "A",
            "aa bb",
            "aa | ",
        ] {
            let p = parse_control(&format!("Package: x\nDepends: {bad}\n")).unwrap();
            assert!(field_to_rpm(&p, "Depends").is_err(), "{bad:?} accepted");
        }
    }
}
