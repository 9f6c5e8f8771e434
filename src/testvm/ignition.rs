//! The Ignition config a test machine boots with: the test's own config
//! (spec 3.x JSON, `config.ign`; or Butane, `config.bu`, translated by the
//! `butane` program) with the harness's SSH key added to user `core`, as
//! upstream kola adds its key.
//!
//! Only the fields the harness touches are read (`ignition.version`,
//! `passwd.users[].name`, `sshAuthorizedKeys`); everything else is kept as
//! it is.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Map, Value, json};

use crate::util::cmd::CommandRunExt;

/// The spec version of a config the harness makes from nothing: 3.0.0,
/// which every spec-3 Ignition accepts.
pub const DEFAULT_VERSION: &str = "3.0.0";

/// The user the harness logs in as.
pub const USER: &str = "core";

/// Read a test's config file: `*.ign` as it is, `*.bu` through `butane
/// --strict` (which must be on PATH). Returns the Ignition JSON text.
pub fn read_config(path: &Path) -> Result<String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".bu") {
        return butane(path);
    }
    ensure!(
        !name.ends_with(".fcc"),
        "{}: Fedora CoreOS Config (.fcc) files are not read; rename it to config.bu (Butane)",
        path.display()
    );
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Whether `butane` can be run.
pub fn butane_available() -> bool {
    Command::new("butane")
        .arg("--version")
        .run_capture("butane --version")
        .is_ok()
}

/// Translate the Butane config `path` to Ignition JSON with `butane
/// --strict` (files it names are looked up beside it).
pub fn butane(path: &Path) -> Result<String> {
    if !butane_available() {
        bail!(
            "{} is a Butane config, and `butane` is not on PATH: install Butane \
             (https://coreos.github.io/butane/) or translate it to config.ign beside it",
            path.display()
        );
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    Command::new("butane")
        .arg("--strict")
        .arg("--files-dir")
        .arg(dir)
        .arg(path)
        .run_stdout(&format!("translating {} with butane", path.display()))
}

/// Check that `text` (from `source`, for messages) is an Ignition spec
/// 3.x config and parse it.
pub fn parse(text: &str, source: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(text)
        .with_context(|| format!("{source} is not valid JSON (an Ignition config is JSON)"))?;
    let version = v
        .get("ignition")
        .and_then(|i| i.get("version"))
        .with_context(|| format!("{source}: no ignition.version (an Ignition config needs one)"))?;
    let version = version
        .as_str()
        .with_context(|| format!("{source}: ignition.version {version} is not a string"))?;
    let major = version.split('.').next().unwrap_or("");
    match major {
        "3" if version.split('.').count() == 3 => Ok(v),
        "2" | "1" => bail!(
            "{source}: Ignition spec {version} is not supported: the harness speaks spec 3.x \
             (translate it with ign-converter, or write Butane)"
        ),
        _ => bail!("{source}: ignition.version {version:?} is not a 3.x.y spec version"),
    }
}

/// The config to boot with: `config` (None: an empty spec 3.0.0 config)
/// with `ssh_key` in user `core`'s `sshAuthorizedKeys`, added to a `core`
/// user already there, or a new one. `source` names the config in errors.
pub fn with_ssh_key(config: Option<&str>, source: &str, ssh_key: &str) -> Result<Value> {
    let mut v = match config {
        Some(text) => parse(text, source)?,
        None => json!({ "ignition": { "version": DEFAULT_VERSION } }),
    };
    let root = v
        .as_object_mut()
        .context("an Ignition config is a JSON object")?;
    let passwd = root
        .entry("passwd")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .with_context(|| format!("{source}: passwd is not an object"))?;
    let users = passwd
        .entry("users")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .with_context(|| format!("{source}: passwd.users is not a list"))?;
    let core = match users
        .iter()
        .position(|u| u.get("name").and_then(Value::as_str) == Some(USER))
    {
        Some(i) => &mut users[i],
        None => {
            users.push(json!({ "name": USER }));
            users.last_mut().expect("just pushed")
        }
    };
    let keys = core
        .as_object_mut()
        .with_context(|| format!("{source}: user {USER} is not an object"))?
        .entry("sshAuthorizedKeys")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .with_context(|| format!("{source}: sshAuthorizedKeys of user {USER} is not a list"))?;
    if !keys.iter().any(|k| k.as_str() == Some(ssh_key)) {
        keys.push(Value::String(ssh_key.to_string()));
    }
    Ok(v)
}

/// Write `config` to `path` (the file QEMU hands to the guest).
pub fn write(config: &Value, path: &Path) -> Result<()> {
    let text = serde_json::to_vec_pretty(config).context("serializing the Ignition config")?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3Nza cosa-kola";

    fn core_keys(v: &Value) -> Vec<&str> {
        let users = v["passwd"]["users"].as_array().unwrap();
        let core: Vec<_> = users.iter().filter(|u| u["name"] == USER).collect();
        assert_eq!(core.len(), 1, "{v}");
        core[0]["sshAuthorizedKeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect()
    }

    #[test]
    fn kola_ignition_without_a_config_makes_user_core() {
        let v = with_ssh_key(None, "none", KEY).unwrap();
        assert_eq!(v["ignition"]["version"], DEFAULT_VERSION);
        assert_eq!(core_keys(&v), [KEY]);
    }

    #[test]
    fn kola_ignition_merges_into_an_existing_core_user_and_keeps_the_rest() {
        let text = r#"{
          "ignition": {"version": "3.4.0"},
          "passwd": {"users": [
            {"name": "alice", "groups": ["wheel"]},
            {"name": "core", "sshAuthorizedKeys": ["ssh-rsa AAAA mine"], "groups": ["sudo"]}
          ]},
          "systemd": {"units": [{"name": "x.service", "enabled": true}]}
        }"#;
        let v = with_ssh_key(Some(text), "config.ign", KEY).unwrap();
        assert_eq!(core_keys(&v), ["ssh-rsa AAAA mine", KEY]);
        assert_eq!(v["ignition"]["version"], "3.4.0");
        assert_eq!(v["passwd"]["users"][0]["name"], "alice");
        assert_eq!(v["passwd"]["users"][1]["groups"][0], "sudo");
        assert_eq!(v["systemd"]["units"][0]["name"], "x.service");
        // The key is not added twice.
        let again = with_ssh_key(Some(&v.to_string()), "again", KEY).unwrap();
        assert_eq!(core_keys(&again), ["ssh-rsa AAAA mine", KEY]);
        // A config with users but no core gets one.
        let v = with_ssh_key(
            Some(r#"{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"bob"}]}}"#),
            "c",
            KEY,
        )
        .unwrap();
        assert_eq!(core_keys(&v), [KEY]);
        assert_eq!(v["passwd"]["users"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn kola_ignition_refuses_other_spec_versions() {
        let e = with_ssh_key(
            Some(r#"{"ignition":{"version":"2.3.0"}}"#),
            "t/config.ign",
            KEY,
        )
        .unwrap_err();
        let m = format!("{e:#}");
        assert!(
            m.contains("t/config.ign") && m.contains("spec 2.3.0 is not supported"),
            "{m}"
        );
        let e = with_ssh_key(Some(r#"{"storage":{}}"#), "t/config.ign", KEY).unwrap_err();
        assert!(format!("{e:#}").contains("no ignition.version"), "{e:#}");
        let e = with_ssh_key(Some(r#"{"ignition":{"version":"4.0"}}"#), "x", KEY).unwrap_err();
        assert!(format!("{e:#}").contains("not a 3.x.y"), "{e:#}");
        let e = with_ssh_key(Some(r#"{"ignition":{"version":3}}"#), "x", KEY).unwrap_err();
        assert!(format!("{e:#}").contains("is not a string"), "{e:#}");
    }

    #[test]
    fn kola_ignition_syntax_errors_name_the_file_and_line() {
        let text = "{\n  \"ignition\": {\"version\": \"3.0.0\"},\n  \"passwd\": {,}\n}";
        let e = with_ssh_key(Some(text), "tests/kola/x/config.ign", KEY).unwrap_err();
        let m = format!("{e:#}");
        assert!(
            m.contains("tests/kola/x/config.ign is not valid JSON") && m.contains("line 3"),
            "{m}"
        );
        let e = with_ssh_key(
            Some(r#"{"ignition":{"version":"3.0.0"},"passwd":[]}"#),
            "p",
            KEY,
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("passwd is not an object"),
            "{e:#}"
        );
    }

    #[test]
    fn kola_ignition_butane_is_refused_clearly_when_missing() {
        let t = tempfile::tempdir().unwrap();
        let bu = t.path().join("config.bu");
        std::fs::write(&bu, "variant: fcos\nversion: 1.4.0\n").unwrap();
        if butane_available() {
            // With butane on PATH the config is translated instead.
            let v = parse(&read_config(&bu).unwrap(), "translated").unwrap();
            assert!(v["ignition"]["version"].as_str().unwrap().starts_with("3."));
            return;
        }
        let e = read_config(&bu).unwrap_err();
        let m = format!("{e:#}");
        assert!(
            m.contains("`butane` is not on PATH") && m.contains("config.bu"),
            "{m}"
        );
        let fcc = t.path().join("config.fcc");
        std::fs::write(&fcc, "").unwrap();
        assert!(format!("{:#}", read_config(&fcc).unwrap_err()).contains("rename it to config.bu"));
    }
}
