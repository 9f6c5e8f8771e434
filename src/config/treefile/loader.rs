//! Reading treefiles and following `include`, `arch-include` and
//! `conditional-include`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

use super::conditions::{CondTarget, cond_to_json};
use super::merge::merge_layer;
use super::parse::{Layer, parse_layer};
use super::values::{Source, type_name};

/// rpm-ostree's `INCLUDE_MAXDEPTH`.
const INCLUDE_MAXDEPTH: usize = 50;

/// Load the file `top` (an absolute path) and everything it includes, for
/// `basearch`: the merged layer and the accumulated variables.
#[allow(clippy::type_complexity)]
pub(super) fn load_layers(
    top: &Path,
    basearch: &str,
) -> Result<(Layer, BTreeMap<String, Value>, Vec<PathBuf>)> {
    let mut loader = Loader {
        basearch,
        topdir: top.parent().map(Path::to_path_buf).unwrap_or_default(),
        stack: Vec::new(),
        seen: BTreeMap::new(),
        variables: BTreeMap::new(),
        files: Vec::new(),
    };
    let layer = loader.load_recursive(top, None)?;
    Ok((layer, loader.variables, loader.files))
}

/// Largest treefile cosa reads (a FIFO or /dev/zero is refused, not read forever).
const MAX_TREEFILE_BYTES: u64 = 16 << 20;

/// Read a treefile: a regular file (after symlinks) of sane size.
pub(super) fn read_treefile(path: &Path) -> Result<String> {
    let md = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !md.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    if md.len() > MAX_TREEFILE_BYTES {
        bail!(
            "{}: {} bytes is more than a treefile may have ({MAX_TREEFILE_BYTES})",
            path.display(),
            md.len()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Parse a YAML or JSON file into a top-level map, naming line and column
/// on syntax errors.
pub(super) fn read_map(path: &Path, text: &str) -> Result<(Map<String, Value>, bool)> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let (value, yaml) = match ext {
        "json" => {
            let v: Value = serde_json::from_str(text).map_err(|e| {
                anyhow!(
                    "{}:{}:{}: JSON syntax error: {e}",
                    path.display(),
                    e.line(),
                    e.column()
                )
            })?;
            (v, false)
        }
        "yaml" | "yml" => {
            let mut y: serde_yaml::Value =
                serde_yaml::from_str(text).map_err(|e| yaml_error(path, &e))?;
            y.apply_merge().map_err(|e| yaml_error(path, &e))?;
            let v = serde_json::to_value(&y)
                .map_err(|e| anyhow!("{}: unsupported YAML content: {e}", path.display()))?;
            (v, true)
        }
        _ => bail!(
            "{}: unknown treefile format (expected .yaml, .yml or .json)",
            path.display()
        ),
    };
    match value {
        Value::Object(map) => Ok((map, yaml)),
        // An empty YAML document is an empty treefile.
        Value::Null => Ok((Map::new(), yaml)),
        other => bail!(
            "{}: a treefile must be a map of keys, not {}",
            path.display(),
            type_name(&other)
        ),
    }
}

pub(super) fn yaml_error(path: &Path, e: &serde_yaml::Error) -> anyhow::Error {
    match e.location() {
        Some(loc) => anyhow!(
            "{}:{}:{}: YAML syntax error: {e}",
            path.display(),
            loc.line(),
            loc.column()
        ),
        None => anyhow!("{}: YAML error: {e}", path.display()),
    }
}

struct Loader<'a> {
    basearch: &'a str,
    topdir: PathBuf,
    /// Files being loaded, outermost first (for cycle messages).
    stack: Vec<PathBuf>,
    /// Every file loaded so far (canonical path) -> the file that included it.
    seen: BTreeMap<PathBuf, Option<PathBuf>>,
    /// rpm-ostree's accumulated `variables`: the includer overrides.
    variables: BTreeMap<String, Value>,
    /// Every file read, in load order (canonical paths).
    files: Vec<PathBuf>,
}

impl Loader<'_> {
    fn show(&self, p: &Path) -> String {
        p.strip_prefix(&self.topdir)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    fn load_recursive(&mut self, path: &Path, includer: Option<&Path>) -> Result<Layer> {
        let canon = std::fs::canonicalize(path).with_context(|| match includer {
            Some(inc) => format!(
                "{}: included file {} not found",
                inc.display(),
                path.display()
            ),
            None => format!("reading treefile {}", path.display()),
        })?;
        if let Some(pos) = self.stack.iter().position(|p| *p == canon) {
            let cycle: Vec<String> = self.stack[pos..]
                .iter()
                .chain(std::iter::once(&canon))
                .map(|p| self.show(p))
                .collect();
            bail!("include cycle: {}", cycle.join(" -> "));
        }
        if let Some(first) = self.seen.get(&canon) {
            bail!(
                "{} is included more than once (by {} and by {}); rpm-ostree refuses this",
                self.show(&canon),
                first.as_deref().map(|p| self.show(p)).unwrap_or_default(),
                includer.map(|p| self.show(p)).unwrap_or_default()
            );
        }
        if self.stack.len() > INCLUDE_MAXDEPTH {
            bail!(
                "{}: reached the maximum include depth {INCLUDE_MAXDEPTH}",
                path.display()
            );
        }
        self.seen
            .insert(canon.clone(), includer.map(Path::to_path_buf));
        self.files.push(canon.clone());
        self.stack.push(canon);
        let result = self.load_file(path);
        self.stack.pop();
        result
    }

    fn load_file(&mut self, path: &Path) -> Result<Layer> {
        let text = read_treefile(path).context("reading a treefile")?;
        let (map, yaml) = read_map(path, &text)?;
        let src = Source {
            file: path,
            text: &text,
            yaml,
        };
        let mut layer = parse_layer(&src, map, self.basearch, false)?;

        // Fold this file's variables under the includer's.
        let mut vars = layer.variables.take().unwrap_or_default();
        vars.insert("basearch".into(), Value::String(self.basearch.to_string()));
        if let Some(rv) = &layer.releasever {
            vars.insert("releasever".into(), cond_to_json(rv));
        }
        vars.append(&mut self.variables);
        self.variables = vars;

        let mut includes = std::mem::take(&mut layer.include);
        if let Some(arch) = layer.arch_include.remove(self.basearch) {
            includes.extend(arch);
        }
        for (i, ci) in std::mem::take(&mut layer.conditional_include)
            .into_iter()
            .enumerate()
        {
            let mut matches = true;
            // Evaluate every condition so that type errors always show.
            for c in &ci.conditions {
                let ok = c.evaluate(&self.variables).map_err(|e| {
                    anyhow!(
                        "{}: conditional-include[{}]: {e}",
                        src.at("conditional-include"),
                        i + 1
                    )
                })?;
                matches &= ok;
            }
            if matches {
                match ci.target {
                    CondTarget::Files(files) => includes.extend(files),
                    CondTarget::Inline(mut inline) => merge_layer(&mut layer, &mut inline),
                }
            }
        }
        for inc in includes {
            let inc_path = src.dir().join(&inc);
            let mut included = self.load_recursive(&inc_path, Some(path))?;
            merge_layer(&mut layer, &mut included);
        }
        Ok(layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_syntax_error_names_line_and_column() {
        let e = read_map(Path::new("/m/t.yaml"), "ref: a\npackages: [a, b\n").unwrap_err();
        let e = e.to_string();
        assert!(e.starts_with("/m/t.yaml:"), "{e}");
        assert!(e.contains("line 3") || e.contains("line 2"), "{e}");
        assert!(e.contains("column"), "{e}");
        let e = read_map(Path::new("/m/t.json"), "{\"ref\": \n}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/m/t.json:2:1: JSON syntax error"), "{e}");
        let e = read_map(Path::new("/m/t.toml"), "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown treefile format"), "{e}");
        let e = read_map(Path::new("/m/t.yaml"), "- a\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be a map"), "{e}");
    }

    #[test]
    fn yaml_merge_keys_apply() {
        let (map, yaml) = read_map(
            Path::new("t.yaml"),
            "base: &b\n  x: 1\nmetadata:\n  <<: *b\n  y: 2\n",
        )
        .unwrap();
        assert!(yaml);
        assert_eq!(map["metadata"], json!({"x": 1, "y": 2}));
    }
}
