//! Typed reads of JSON values, with errors that name the file, the line and
//! the key.

use std::path::Path;

use anyhow::{Result, anyhow};
use regex::Regex;
use serde_json::{Map, Value};

use super::conditions::CondValue;

/// Where the keys being read come from, for error messages.
pub(super) struct Source<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
    pub(super) yaml: bool,
}

impl Source<'_> {
    /// The line of top-level key `key`, if it can be found in the text.
    pub(super) fn key_line(&self, key: &str) -> Option<usize> {
        let k = regex::escape(key);
        let pat = if self.yaml {
            format!(r#"^(?:{k}|"{k}"|'{k}')\s*:"#)
        } else {
            format!(r#""{k}"\s*:"#)
        };
        let re = Regex::new(&pat).ok()?;
        self.text
            .lines()
            .position(|l| re.is_match(l))
            .map(|i| i + 1)
    }

    /// `file:line` (line when known) for key `key`.
    pub(super) fn at(&self, key: &str) -> String {
        match self.key_line(key) {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }

    pub(super) fn err(&self, key: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{}: key \"{key}\": {msg}", self.at(key))
    }

    pub(super) fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("/"))
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

pub(super) fn want_bool(src: &Source, key: &str, v: &Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| src.err(key, format!("expected a boolean, got {}", type_name(v))))
}

pub(super) fn want_str(src: &Source, key: &str, v: &Value) -> Result<String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| src.err(key, format!("expected a string, got {}", type_name(v))))
}

pub(super) fn want_str_list(src: &Source, key: &str, v: &Value) -> Result<Vec<String>> {
    let arr = v.as_array().ok_or_else(|| {
        src.err(
            key,
            format!("expected a list of strings, got {}", type_name(v)),
        )
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str().map(str::to_string).ok_or_else(|| {
                src.err(
                    key,
                    format!(
                        "expected a list of strings, but item {} is {}",
                        i + 1,
                        type_name(item)
                    ),
                )
            })
        })
        .collect()
}

pub(super) fn want_map(src: &Source, key: &str, v: &Value) -> Result<Map<String, Value>> {
    v.as_object()
        .cloned()
        .ok_or_else(|| src.err(key, format!("expected a map, got {}", type_name(v))))
}

/// Run `each` on every item of the list under `key`, naming the item
/// `key[n]` (from 1) for messages. `description` says what the list holds,
/// for the error when `v` is not a list.
pub(super) fn list_of<T>(
    src: &Source,
    key: &str,
    v: &Value,
    description: &str,
    mut each: impl FnMut(&str, &Value) -> Result<T>,
) -> Result<Vec<T>> {
    let arr = v.as_array().ok_or_else(|| {
        src.err(
            key,
            format!("expected a list of {description}, got {}", type_name(v)),
        )
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, item)| each(&format!("{key}[{}]", i + 1), item))
        .collect()
}

/// Like [`list_of`] for a list of maps that may hold only `fields`: `each`
/// gets the item's name and its map, unknown fields already refused.
pub(super) fn list_of_maps<T>(
    src: &Source,
    key: &str,
    v: &Value,
    fields: &[&str],
    mut each: impl FnMut(&str, &Map<String, Value>) -> Result<T>,
) -> Result<Vec<T>> {
    let description = format!("{{{}}} maps", fields.join(", "));
    list_of(src, key, v, &description, |what, item| {
        let map = want_map(src, what, item)?;
        if let Some(k) = map.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(unknown_field(src, what, k));
        }
        each(what, &map)
    })
}

/// Field `field` of map `map` (named `what` in messages), which must be set.
pub(super) fn required<'m>(
    src: &Source,
    what: &str,
    map: &'m Map<String, Value>,
    field: &str,
) -> Result<&'m Value> {
    map.get(field)
        .ok_or_else(|| src.err(what, format!("missing \"{field}\"")))
}

pub(super) fn unknown_field(src: &Source, what: &str, field: &str) -> anyhow::Error {
    src.err(what, format!("unknown field \"{field}\""))
}

/// `include` values: a string or a list of strings.
pub(super) fn want_include(src: &Source, key: &str, v: &Value) -> Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(_) => want_str_list(src, key, v),
        _ => Err(src.err(
            key,
            format!("expected a path or a list of paths, got {}", type_name(v)),
        )),
    }
}

/// Variable values: booleans, non-negative integers and strings
/// (rpm-ostree's `VarValue`).
pub(super) fn want_var(src: &Source, key: &str, v: &Value) -> Result<CondValue> {
    match v {
        Value::Bool(b) => Ok(CondValue::Bool(*b)),
        Value::Number(n) => n
            .as_u64()
            .map(CondValue::Number)
            .ok_or_else(|| src.err(key, format!("{n} is not a non-negative integer"))),
        Value::String(s) => Ok(CondValue::String(s.clone())),
        _ => Err(src.err(
            key,
            format!(
                "expected a boolean, a non-negative integer or a string, got {}",
                type_name(v)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_line_lookup() {
        let src = Source {
            file: Path::new("t.yaml"),
            text: "ref: a\n# c\nbogus: 1\n",
            yaml: true,
        };
        assert_eq!(src.key_line("bogus"), Some(3));
        assert_eq!(src.at("bogus"), "t.yaml:3");
        assert_eq!(src.at("absent"), "t.yaml");
        let src = Source {
            file: Path::new("t.json"),
            text: "{\n  \"ref\": \"a\",\n  \"bogus\" : 1\n}",
            yaml: false,
        };
        assert_eq!(src.key_line("bogus"), Some(3));
    }
}
