//! `conditional-include`: variable values, `if` conditions and their
//! evaluation (rpm-ostree's `IncludeCondition`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use anyhow::{Context, Result, anyhow, bail};
use regex::Regex;
use serde_json::Value;

use super::parse::{Layer, parse_layer};
use super::values::{Source, list_of_maps, required, want_include, want_str_list};

/// A `conditional-include` entry.
#[derive(Debug, Clone)]
pub(super) struct CondInclude {
    pub(super) conditions: Vec<Condition>,
    pub(super) target: CondTarget,
}

#[derive(Debug, Clone)]
pub(super) enum CondTarget {
    Files(Vec<String>),
    Inline(Box<Layer>),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum CondValue {
    Bool(bool),
    Number(u64),
    String(String),
}

impl std::fmt::Display for CondValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CondValue::Bool(b) => write!(f, "{b}"),
            CondValue::Number(n) => write!(f, "{n}"),
            CondValue::String(s) => write!(f, "\"{s}\""),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Condition {
    Compare {
        var: String,
        op: Op,
        value: CondValue,
    },
    /// A bare variable name: true when the variable is truthy.
    Truthy(String),
}

/// The keys of one treefile (or of an inline conditional-include), before

pub(super) fn cond_to_json(v: &CondValue) -> Value {
    match v {
        CondValue::Bool(b) => Value::Bool(*b),
        CondValue::Number(n) => Value::from(*n),
        CondValue::String(s) => Value::String(s.clone()),
    }
}

pub(super) fn json_to_cond(v: &Value) -> Option<CondValue> {
    match v {
        Value::Bool(b) => Some(CondValue::Bool(*b)),
        Value::Number(n) => n.as_u64().map(CondValue::Number),
        Value::String(s) => Some(CondValue::String(s.clone())),
        _ => None,
    }
}

pub(super) static COND_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*([[:alnum:]_]+)\s*(==|!=|>=|<=|>|<)\s*(.*?)\s*$").expect("valid regex")
});
pub(super) static BARE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*([[:alnum:]_]+)\s*$").expect("valid regex"));
pub(super) static NUMBER_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]+$").expect("valid regex"));
pub(super) static WORD_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^\s'\x22]+$").expect("valid regex"));

/// Parse `var op value` (value: true, false, digits, "string", or a bare
/// word), or a bare `var`.
pub(super) fn parse_condition(s: &str) -> Result<Condition> {
    if let Some(c) = BARE_RE.captures(s) {
        return Ok(Condition::Truthy(c[1].to_string()));
    }
    let c = COND_RE
        .captures(s)
        .ok_or_else(|| anyhow!("invalid condition {s:?}: expected <var> <op> <value> with op one of ==, !=, >, >=, <, <="))?;
    let op = match &c[2] {
        "==" => Op::Eq,
        "!=" => Op::Ne,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        _ => Op::Le,
    };
    let raw = &c[3];
    let value = if raw == "true" {
        CondValue::Bool(true)
    } else if raw == "false" {
        CondValue::Bool(false)
    } else if NUMBER_RE.is_match(raw) {
        CondValue::Number(
            raw.parse()
                .map_err(|e| anyhow!("invalid number in condition {s:?}: {e}"))?,
        )
    } else if raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"'))
            || (raw.starts_with('\'') && raw.ends_with('\'')))
    {
        CondValue::String(raw[1..raw.len() - 1].to_string())
    } else if WORD_RE.is_match(raw) {
        CondValue::String(raw.to_string())
    } else {
        bail!("invalid condition {s:?}: cannot read value {raw:?}");
    };
    Ok(Condition::Compare {
        var: c[1].to_string(),
        op,
        value,
    })
}

impl Condition {
    /// rpm-ostree's `IncludeCondition::evaluate`: undefined variables and
    /// type mismatches are errors; ordering needs numbers.
    pub(super) fn evaluate(&self, vars: &BTreeMap<String, Value>) -> Result<bool> {
        let lookup = |var: &str| -> Result<CondValue> {
            let v = vars
                .get(var)
                .ok_or_else(|| anyhow!("undefined variable \"{var}\""))?;
            json_to_cond(v).ok_or_else(|| anyhow!("variable \"{var}\" has an unusable value {v}"))
        };
        match self {
            Condition::Truthy(var) => Ok(match lookup(var)? {
                CondValue::Bool(b) => b,
                CondValue::Number(n) => n != 0,
                CondValue::String(s) => !s.is_empty(),
            }),
            Condition::Compare { var, op, value } => {
                let actual = lookup(var)?;
                if std::mem::discriminant(&actual) != std::mem::discriminant(value) {
                    bail!("variable \"{var}\" ({actual}) is not the same type as {value}");
                }
                match op {
                    Op::Eq => Ok(&actual == value),
                    Op::Ne => Ok(&actual != value),
                    _ => match (&actual, value) {
                        (CondValue::Number(a), CondValue::Number(b)) => Ok(match op {
                            Op::Gt => a > b,
                            Op::Ge => a >= b,
                            Op::Lt => a < b,
                            _ => a <= b,
                        }),
                        _ => bail!("ordering comparison needs numbers, not {actual} and {value}"),
                    },
                }
            }
        }
    }
}

pub(super) fn parse_conditional_includes(
    src: &Source,
    v: &Value,
    basearch: &str,
) -> Result<Vec<CondInclude>> {
    let fields = ["if", "include"];
    list_of_maps(src, "conditional-include", v, &fields, |what, map| {
        let cond = required(src, what, map, "if")?;
        let conds: Vec<String> = match cond {
            Value::String(s) => vec![s.clone()],
            _ => want_str_list(src, &format!("{what}.if"), cond)?,
        };
        let conditions = conds
            .iter()
            .map(|c| parse_condition(c).map_err(|e| src.err(what, e)))
            .collect::<Result<Vec<_>>>()?;
        let inc = required(src, what, map, "include")?;
        let target = match inc {
            Value::Object(inline) => CondTarget::Inline(Box::new(
                parse_layer(src, inline.clone(), basearch, true)
                    .with_context(|| format!("in inline {what}"))?,
            )),
            _ => CondTarget::Files(want_include(src, &format!("{what}.include"), inc)?),
        };
        Ok(CondInclude { conditions, target })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_parse() {
        let cmp = |var: &str, op, value| Condition::Compare {
            var: var.into(),
            op,
            value,
        };
        assert_eq!(
            parse_condition("basearch == \"x86_64\"").unwrap(),
            cmp("basearch", Op::Eq, CondValue::String("x86_64".into()))
        );
        assert_eq!(
            parse_condition("basearch == x86_64").unwrap(),
            cmp("basearch", Op::Eq, CondValue::String("x86_64".into()))
        );
        assert_eq!(
            parse_condition("releasever>=35").unwrap(),
            cmp("releasever", Op::Ge, CondValue::Number(35))
        );
        assert_eq!(
            parse_condition(" dev != true ").unwrap(),
            cmp("dev", Op::Ne, CondValue::Bool(true))
        );
        assert_eq!(
            parse_condition("s < 'x y'").unwrap(),
            cmp("s", Op::Lt, CondValue::String("x y".into()))
        );
        assert_eq!(
            parse_condition("dev").unwrap(),
            Condition::Truthy("dev".into())
        );
        assert!(parse_condition("a =~ b").is_err());
        assert!(parse_condition("a ==").is_err());
        assert!(parse_condition("a == b c").is_err());
    }

    #[test]
    fn conditions_evaluate() {
        let vars: BTreeMap<String, Value> = [
            ("basearch", json!("x86_64")),
            ("releasever", json!(40)),
            ("dev", json!(true)),
            ("empty", json!("")),
            ("zero", json!(0)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let ev = |s: &str| parse_condition(s).unwrap().evaluate(&vars);
        assert!(ev("basearch == x86_64").unwrap());
        assert!(!ev("basearch != \"x86_64\"").unwrap());
        assert!(ev("releasever >= 40").unwrap());
        assert!(ev("releasever > 39").unwrap());
        assert!(!ev("releasever < 40").unwrap());
        assert!(ev("releasever <= 40").unwrap());
        assert!(ev("dev == true").unwrap());
        assert!(ev("dev").unwrap());
        assert!(!ev("empty").unwrap());
        assert!(!ev("zero").unwrap());
        assert!(ev("basearch").unwrap());
        let e = ev("nope == 1").unwrap_err().to_string();
        assert_eq!(e, "undefined variable \"nope\"");
        let e = ev("releasever == \"40\"").unwrap_err().to_string();
        assert!(e.contains("not the same type"), "{e}");
        let e = ev("basearch > \"a\"").unwrap_err().to_string();
        assert!(e.contains("needs numbers"), "{e}");
    }
}
