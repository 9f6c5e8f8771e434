//! The treefile keys postprocessing reads, with rpm-ostree's defaults
//! (`Treefile::get_*` in rpm-ostree's `rust/src/treefile.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

use crate::config::treefile::Treefile;

/// `opt-usrlocal`: where /opt and /usr/local live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptUsrLocal {
    /// `/opt -> var/opt`, `/usr/local -> ../var/usrlocal` (the default).
    Var,
    /// Plain directories in the commit.
    Root,
    /// `/opt -> usr/lib/opt`, `/usr/local` a directory, with state overlays.
    StateOverlay,
}

/// `check-passwd` / `check-groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    None,
    /// Against the previous commit's /usr/lib/passwd or /usr/lib/group (default).
    Previous,
    /// Against a passwd/group file.
    File(PathBuf),
    /// Against inline entries: name -> (uid, gid) for users, name -> (gid, gid) for groups.
    Data(BTreeMap<String, (u32, u32)>),
}

/// Postprocessing settings taken from the treefile.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `boot-location: modules` (or `kernel-install`): the kernel lives only
    /// in /usr/lib/modules/<kver>. Otherwise (`new`) it is also hardlinked
    /// into /usr/lib/ostree-boot with the boot checksum in its name.
    pub boot_location_modules: bool,
    /// `tmp-is-dir`: /tmp is a 1777 directory, not a link to sysroot/tmp.
    pub tmp_is_dir: bool,
    pub opt_usrlocal: OptUsrLocal,
    /// `container: true`: no kernel processing.
    pub container: bool,
    /// `machineid-compat` (default true): leave an empty /usr/etc/machine-id.
    pub machineid_compat: bool,
    /// `no-initramfs`: never run dracut.
    pub no_initramfs: bool,
    /// `initramfs-args` (default `--no-hostonly`).
    pub initramfs_args: Vec<String>,
    /// `ignore-devices: true` set explicitly: drop device nodes instead of refusing.
    pub ignore_devices: bool,
    pub check_passwd: Check,
    pub check_groups: Check,
    pub ignore_removed_users: BTreeSet<String>,
    pub ignore_removed_groups: BTreeSet<String>,
    /// `units`: enabled in multi-user.target.
    pub units: Vec<String>,
    /// `default-target`.
    pub default_target: Option<String>,
    /// `readonly-executables`: no write bits on files with an exec bit.
    pub readonly_executables: bool,
}

fn get_bool(tf: &Treefile, key: &str) -> Result<Option<bool>> {
    match tf.other.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => bail!("treefile key {key}: expected a boolean, got {v}"),
    }
}

fn get_str<'a>(tf: &'a Treefile, key: &str) -> Result<Option<&'a str>> {
    match tf.other.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => bail!("treefile key {key}: expected a string, got {v}"),
    }
}

fn get_str_list(tf: &Treefile, key: &str) -> Result<Vec<String>> {
    match tf.other.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("treefile key {key}: expected strings, got {v}"))
            })
            .collect(),
        Some(v) => bail!("treefile key {key}: expected a list, got {v}"),
    }
}

/// rpm-ostree's `edition` (only 2024 exists): changes defaults.
fn edition_2024(tf: &Treefile) -> bool {
    let n = match tf.other.get("edition") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    n.is_some_and(|n| n >= 2024)
}

/// Parse a `check-passwd` / `check-groups` value.
fn parse_check(tf: &Treefile, key: &str, groups: bool) -> Result<Check> {
    let Some(v) = tf.other.get(key) else {
        return Ok(Check::Previous);
    };
    let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
    match ty {
        "none" => Ok(Check::None),
        "previous" => Ok(Check::Previous),
        "file" => {
            let f = v
                .get("filename")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("treefile key {key}: type file needs filename"))?;
            Ok(Check::File(PathBuf::from(f)))
        }
        "data" => {
            let entries = v
                .get("entries")
                .and_then(Value::as_object)
                .ok_or_else(|| anyhow!("treefile key {key}: type data needs entries"))?;
            let mut out = BTreeMap::new();
            for (name, ids) in entries {
                let bad = || anyhow!("treefile key {key}: entry {name}: bad id {ids}");
                let id = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
                let pair = match ids {
                    Value::Number(_) => id(ids).map(|i| (i, i)),
                    Value::Array(a) if a.len() == 1 => id(&a[0]).map(|i| (i, i)),
                    Value::Array(a) if a.len() == 2 && !groups => id(&a[0]).zip(id(&a[1])),
                    _ => None,
                }
                .ok_or_else(bad)?;
                out.insert(name.clone(), pair);
            }
            Ok(Check::Data(out))
        }
        other => bail!("treefile key {key}: unknown type {other:?}"),
    }
}

impl Settings {
    pub fn from_treefile(tf: &Treefile) -> Result<Settings> {
        let container = get_bool(tf, "container")?.unwrap_or(false);
        let edition = edition_2024(tf);
        let boot_location_modules = match get_str(tf, "boot-location")? {
            Some("modules") | Some("kernel-install") => true,
            Some("new") => false,
            Some(other) => bail!("treefile key boot-location: unknown value {other:?}"),
            None => container || edition,
        };
        let tmp_is_dir = container || get_bool(tf, "tmp-is-dir")?.unwrap_or(edition);
        let opt_usrlocal = match get_str(tf, "opt-usrlocal")? {
            None | Some("var") => OptUsrLocal::Var,
            Some("root") => OptUsrLocal::Root,
            Some("state-overlay") | Some("stateoverlay") => OptUsrLocal::StateOverlay,
            Some(other) => bail!("treefile key opt-usrlocal: unknown value {other:?}"),
        };
        let (check_passwd, check_groups) = if container {
            (Check::None, Check::None)
        } else {
            (
                parse_check(tf, "check-passwd", false)?,
                parse_check(tf, "check-groups", true)?,
            )
        };
        Ok(Settings {
            boot_location_modules,
            tmp_is_dir,
            opt_usrlocal,
            container,
            machineid_compat: get_bool(tf, "machineid-compat")?.unwrap_or(true),
            no_initramfs: get_bool(tf, "no-initramfs")?.unwrap_or(false),
            initramfs_args: get_str_list(tf, "initramfs-args")?,
            ignore_devices: get_bool(tf, "ignore-devices")?.unwrap_or(false),
            check_passwd,
            check_groups,
            ignore_removed_users: get_str_list(tf, "ignore-removed-users")?
                .into_iter()
                .collect(),
            ignore_removed_groups: get_str_list(tf, "ignore-removed-groups")?
                .into_iter()
                .collect(),
            units: get_str_list(tf, "units")?,
            default_target: get_str(tf, "default-target")?.map(str::to_string),
            readonly_executables: get_bool(tf, "readonly-executables")?.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tf(other: Value) -> Treefile {
        Treefile {
            other: other
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_rpm_ostree() {
        let s = Settings::from_treefile(&tf(json!({}))).unwrap();
        assert!(!s.boot_location_modules);
        assert!(!s.tmp_is_dir);
        assert!(s.machineid_compat);
        assert_eq!(s.opt_usrlocal, OptUsrLocal::Var);
        assert_eq!(s.check_passwd, Check::Previous);
        let s = Settings::from_treefile(&tf(json!({"edition": "2024"}))).unwrap();
        assert!(s.boot_location_modules && s.tmp_is_dir);
        let s = Settings::from_treefile(&tf(json!({"container": true}))).unwrap();
        assert_eq!(s.check_groups, Check::None);
    }

    #[test]
    fn check_data() {
        let s = Settings::from_treefile(&tf(json!({
            "check-passwd": {"type": "data", "entries": {"a": 5, "b": [6], "c": [7, 8]}},
            "check-groups": {"type": "none"}
        })))
        .unwrap();
        let want: BTreeMap<String, (u32, u32)> = [("a", (5, 5)), ("b", (6, 6)), ("c", (7, 8))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(s.check_passwd, Check::Data(want));
        assert_eq!(s.check_groups, Check::None);
    }
}
