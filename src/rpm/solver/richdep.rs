//! RPM rich (boolean) dependencies: `(A and B)`, `(A or B)`, `(A if B)`,
//! `(A if B else C)`, `(A unless B)`, `(A unless B else C)`, `(A with B)`,
//! `(A without B)`, nested.

use anyhow::{Result, bail};

use crate::rpm::types::{Cmp, Dep, Evr};

/// A parsed dependency expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rich {
    Simple(Dep),
    And(Vec<Rich>),
    Or(Vec<Rich>),
    If(Box<Rich>, Box<Rich>, Option<Box<Rich>>),
    Unless(Box<Rich>, Box<Rich>, Option<Box<Rich>>),
    With(Box<Rich>, Box<Rich>),
    Without(Box<Rich>, Box<Rich>),
}

impl Rich {
    /// A simple dependency as is, a rich one parsed from its text.
    pub fn from_dep(dep: &Dep) -> Result<Rich> {
        if dep.is_rich() {
            parse(&dep.name)
        } else {
            Ok(Rich::Simple(dep.clone()))
        }
    }

    /// Evaluate against a set of installed packages: `sat(dep)` says whether
    /// some installed package satisfies a simple dependency, `sat_both(a, b)`
    /// whether one package satisfies `a` and (`negate_b`: not) `b`.
    pub fn eval(
        &self,
        sat: &dyn Fn(&Dep) -> bool,
        with: &dyn Fn(&Rich, &Rich, bool) -> bool,
    ) -> bool {
        match self {
            Rich::Simple(d) => sat(d),
            Rich::And(v) => v.iter().all(|r| r.eval(sat, with)),
            Rich::Or(v) => v.iter().any(|r| r.eval(sat, with)),
            Rich::If(a, b, c) => {
                if b.eval(sat, with) {
                    a.eval(sat, with)
                } else {
                    c.as_ref().is_none_or(|c| c.eval(sat, with))
                }
            }
            Rich::Unless(a, b, c) => {
                if !b.eval(sat, with) {
                    a.eval(sat, with)
                } else {
                    c.as_ref().is_none_or(|c| c.eval(sat, with))
                }
            }
            Rich::With(a, b) => with(a, b, false),
            Rich::Without(a, b) => with(a, b, true),
        }
    }
}

impl std::fmt::Display for Rich {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |f: &mut std::fmt::Formatter<'_>, v: &[&Rich], ops: &[&str]| {
            write!(f, "(")?;
            for (i, r) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, " {} ", ops[(i - 1).min(ops.len() - 1)])?;
                }
                write!(f, "{r}")?;
            }
            write!(f, ")")
        };
        match self {
            Rich::Simple(d) => write!(f, "{d}"),
            Rich::And(v) => join(f, &v.iter().collect::<Vec<_>>(), &["and"]),
            Rich::Or(v) => join(f, &v.iter().collect::<Vec<_>>(), &["or"]),
            Rich::If(a, b, None) => join(f, &[a, b], &["if"]),
            Rich::If(a, b, Some(c)) => join(f, &[a, b, c], &["if", "else"]),
            Rich::Unless(a, b, None) => join(f, &[a, b], &["unless"]),
            Rich::Unless(a, b, Some(c)) => join(f, &[a, b, c], &["unless", "else"]),
            Rich::With(a, b) => join(f, &[a, b], &["with"]),
            Rich::Without(a, b) => join(f, &[a, b], &["without"]),
        }
    }
}

/// Split into `(`, `)` and words. A parenthesis that follows a word
/// without a space belongs to it, balanced, as rpm reads names such as
/// `libfoo.so.1()(64bit)` inside rich dependencies.
fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        if !cur.is_empty() && c == '(' {
            depth += 1;
            cur.push(c);
        } else if depth > 0 && c == ')' {
            depth -= 1;
            cur.push(c);
        } else if c == '(' || c == ')' || c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Parse a rich dependency's text, e.g. `(foo >= 1 if (bar or baz))`.
pub fn parse(s: &str) -> Result<Rich> {
    let toks = tokenize(s);
    let mut pos = 0;
    let r = parse_term(&toks, &mut pos)
        .map_err(|e| anyhow::anyhow!("parsing rich dependency {s:?}: {e}"))?;
    if pos != toks.len() {
        bail!("parsing rich dependency {s:?}: trailing text");
    }
    Ok(r)
}

const KEYWORDS: &[&str] = &["and", "or", "if", "else", "unless", "with", "without"];

fn parse_term(t: &[String], pos: &mut usize) -> Result<Rich> {
    let Some(tok) = t.get(*pos) else {
        bail!("unexpected end");
    };
    if tok == "(" {
        *pos += 1;
        let r = parse_expr(t, pos)?;
        if t.get(*pos).map(String::as_str) != Some(")") {
            bail!("missing `)`");
        }
        *pos += 1;
        return Ok(r);
    }
    if tok == ")" || KEYWORDS.contains(&tok.as_str()) {
        bail!("unexpected {tok:?}");
    }
    *pos += 1;
    let name = tok.clone();
    if let Some(cmp) = t.get(*pos).and_then(|op| Cmp::from_op(op)) {
        let Some(evr) = t.get(*pos + 1) else {
            bail!("missing version after {name}");
        };
        *pos += 2;
        return Ok(Rich::Simple(Dep::versioned(name, cmp, Evr::parse(evr))));
    }
    Ok(Rich::Simple(Dep::any(name)))
}

fn parse_expr(t: &[String], pos: &mut usize) -> Result<Rich> {
    let first = parse_term(t, pos)?;
    let Some(op) = t
        .get(*pos)
        .filter(|o| KEYWORDS.contains(&o.as_str()))
        .cloned()
    else {
        return Ok(first);
    };
    *pos += 1;
    let second = parse_term(t, pos)?;
    let b = Box::new;
    match op.as_str() {
        "and" | "or" => {
            let mut v = vec![first, second];
            while t.get(*pos) == Some(&op) {
                *pos += 1;
                v.push(parse_term(t, pos)?);
            }
            Ok(if op == "and" {
                Rich::And(v)
            } else {
                Rich::Or(v)
            })
        }
        "if" | "unless" => {
            let els = if t.get(*pos).map(String::as_str) == Some("else") {
                *pos += 1;
                Some(b(parse_term(t, pos)?))
            } else {
                None
            };
            Ok(if op == "if" {
                Rich::If(b(first), b(second), els)
            } else {
                Rich::Unless(b(first), b(second), els)
            })
        }
        "with" => Ok(Rich::With(b(first), b(second))),
        "without" => Ok(Rich::Without(b(first), b(second))),
        other => bail!("unexpected {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_parentheses() {
        let r = parse("((libfoo.so.1()(64bit) or p0 > 10) or cap-c)").unwrap();
        assert_eq!(
            r.to_string(),
            "((libfoo.so.1()(64bit) or p0 > 10) or cap-c)"
        );
        let Rich::Or(v) = r else { panic!("{r:?}") };
        let Rich::Or(inner) = &v[0] else {
            panic!("{v:?}")
        };
        assert_eq!(
            inner[0],
            Rich::Simple(Dep::parse("libfoo.so.1()(64bit)").unwrap())
        );
    }

    #[test]
    fn parse_and_display() {
        for s in [
            "(a and b >= 1.0-1 and c)",
            "(a or (b if c else d))",
            "(a unless b else c)",
            "(a with b)",
            "(a without b < 2)",
            "((a or b) if c)",
        ] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            parse("(foo >= 2 if bar)").unwrap(),
            Rich::If(
                Box::new(Rich::Simple(Dep::versioned(
                    "foo",
                    Cmp::GE,
                    Evr::parse("2")
                ))),
                Box::new(Rich::Simple(Dep::any("bar"))),
                None
            )
        );
        assert!(parse("(a and)").is_err());
        assert!(parse("(a b c d)").is_err());
        assert!(parse("(a or b").is_err());
    }
}
