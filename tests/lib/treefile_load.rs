//! Loading real treefiles from disk: every key, include / arch-include /
//! conditional-include merging, variables, and the error messages users see.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cosa::config::repofile::load_repo_dir;
use cosa::config::treefile::{RepoPackages, load};
use serde_json::json;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Write each `(name, text)` under `dir`; the path of the first, the
/// top-level file.
fn write_files(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let paths: Vec<PathBuf> = files.iter().map(|(n, t)| write(dir, n, t)).collect();
    paths[0].clone()
}

fn err_text(path: &Path, arch: &str) -> String {
    format!("{:#}", load(path, arch).expect_err("load should fail"))
}

/// Write `text` as `name` in `dir`; its path and the error loading it for
/// x86_64.
fn write_err(dir: &Path, name: &str, text: &str) -> (PathBuf, String) {
    let path = write(dir, name, text);
    let e = err_text(&path, "x86_64");
    (path, e)
}

const MAIN: &str = r#"
ref: "cosa/${basearch}/${releasever}/${stream}"
releasever: 40
variables:
  stream: next
  devel: true
  level: 3
include:
  - common.yaml
  - extra.yaml
arch-include:
  x86_64: arch/x86_64.yaml
  aarch64:
    - arch/aarch64.yaml
conditional-include:
  - if: basearch == x86_64
    include: cond/x86.yaml
  - if:
      - stream == "next"
      - level >= 3
    include: [cond/next.yaml]
  - if: stream != "next"
    include: cond/never.yaml
  - if: devel
    include:
      postprocess:
        - echo inline
      metadata:
        inline: yes
repos:
  - main-repo
lockfile-repos:
  - locked
packages:
  - top-a top-b
  - "'podman >= 4.1'"
  - kernel >= 6.1
  - /usr/bin/python3
  - (foo or bar)
packages-x86_64:
  - grub2-efi-x64
packages-aarch64:
  - grub2-efi-aa64
repo-packages:
  - repo: main-repo
    packages:
      - pinned-a pinned-b
exclude-packages:
  - python
recommends: false
remove-from-packages:
  - [cpio, "/usr/share/.*"]
remove-files:
  - usr/share/info
add-files:
  - [files/motd, /etc/motd]
postprocess:
  - echo main
postprocess-script: scripts/post.sh
etc-group-members:
  - wheel
automatic-version-prefix: "${releasever}.<date:%Y%m%d>"
mutate-os-release: "${releasever}"
add-commit-metadata:
  cosa.stream: "${stream}"
  cosa.bool: false
metadata:
  name: "cosa-${stream}"
  count: 3
boot-location: modules
tmp-is-dir: true
machineid-compat: false
selinux: true
initramfs-args: [--no-hostonly]
readonly-executables: true
ostree-layers: [overlay/main]
ostree-override-layers: [overlay/dev]
container-cmd: [/usr/bin/bash]
rpmdb: sqlite
cliwrap: false
gpg-key: ABCDEF
units: [main.service]
default-target: multi-user.target
check-passwd:
  type: file
  filename: passwd
check-groups:
  type: data
  entries:
    wheel: 10
ignore-removed-users: [zed]
ignore-removed-groups: [grp]
install-langs: [en_US]
container: false
opt-usrlocal: root
sysusers: compose-auto
repovars:
  mirror: example.org
rojig:
  name: "cosa-${stream}"
  summary: s
  license: MIT
modules:
  enable: [a:1]
  install: [b:2]
edition: "2014"
platform-module: "platform:f${releasever}"
"#;

const COMMON: &str = r#"
ref: "common-ref"
releasever: 39
variables:
  stream: common-stream
  fromcommon: "c"
repos: [common-repo]
packages: [common-pkg, top-a]
repo-packages:
  - repo: common-repo
    packages: [pinned-a, common-pinned]
recommends: true
documentation: false
postprocess:
  - echo common
units: [common.service]
ignore-removed-users: [alice]
metadata:
  name: common-name
  common: 1
add-files:
  - [motd-common, /usr/share/motd-common]
selinux: false
automatic-version-suffix: "-"
"#;

fn make_config(dir: &Path) -> PathBuf {
    #[rustfmt::skip]
    let files = [
        ("manifest.yaml", MAIN),
        ("common.yaml", COMMON),
        ("extra.yaml", "postprocess:\n  - echo extra\npackages: [extra-pkg]\nunits: [extra.service]\n"),
        ("arch/x86_64.yaml", "packages: [x86-only]\nremove-files: [x86-file]\n"),
        ("arch/aarch64.yaml", "packages: [arm-only]\n"),
        ("cond/x86.yaml", "packages: [cond-x86]\n"),
        ("cond/next.json", "{\"packages\": [\"cond-next-json\"]}"),
        ("cond/next.yaml", "packages: [cond-next]\ninclude: next.json\nexclude-packages: [perl]\n"),
        ("cond/never.yaml", "packages: [never]\n"),
        ("files/motd", "hello\n"),
        ("motd-common", "common\n"),
        ("scripts/post.sh", "#!/bin/sh\ntrue\n"),
        ("passwd", "root:x:0:0::/root:/bin/bash\n"),
    ];
    write_files(dir, &files)
}

#[test]
fn every_key_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = make_config(dir);
    let tf = load(&path, "x86_64").unwrap();

    assert_eq!(tf.path, path);
    // The includer's scalar wins; its releasever and variables too.
    assert_eq!(tf.ref_.as_deref(), Some("cosa/x86_64/40/next"));
    assert_eq!(tf.releasever.as_deref(), Some("40"));
    assert_eq!(tf.variables["stream"], json!("next"));
    assert_eq!(tf.variables["fromcommon"], json!("c"));
    assert_eq!(tf.variables["basearch"], json!("x86_64"));
    assert_eq!(tf.variables["releasever"], json!(40));
    assert_eq!(tf.variables["devel"], json!(true));
    assert_eq!(tf.variables["level"], json!(3));

    // Included first, then the includer.
    assert_eq!(tf.repos, ["common-repo", "main-repo"]);
    assert_eq!(tf.lockfile_repos, ["locked"]);
    let pkgs: Vec<&str> = tf.packages.iter().map(String::as_str).collect();
    assert_eq!(
        pkgs,
        [
            "cond-next-json",
            "cond-next",
            "cond-x86",
            "x86-only",
            "extra-pkg",
            "common-pkg",
            "top-a",
            "top-b",
            "podman >= 4.1",
            "kernel >= 6.1",
            "/usr/bin/python3",
            "(foo or bar)",
            "grub2-efi-x64",
        ]
    );
    assert!(!tf.packages.iter().any(|p| p == "never" || p == "arm-only"));
    // The includer's repo-packages claim on pinned-a wins.
    assert_eq!(
        tf.repo_packages,
        [
            RepoPackages {
                repo: "common-repo".into(),
                packages: vec!["common-pinned".into()]
            },
            RepoPackages {
                repo: "main-repo".into(),
                packages: vec!["pinned-a".into(), "pinned-b".into()]
            },
        ]
    );
    assert_eq!(tf.exclude_packages, ["perl", "python"]);
    assert!(!tf.recommends);
    assert!(!tf.documentation);
    assert_eq!(
        tf.remove_from_packages,
        [("cpio".to_string(), vec!["/usr/share/.*".to_string()])]
    );
    assert_eq!(tf.remove_files, ["x86-file", "usr/share/info"]);
    assert_eq!(
        tf.add_files,
        [
            (
                dir.join("motd-common"),
                "/usr/share/motd-common".to_string()
            ),
            (dir.join("files/motd"), "/etc/motd".to_string()),
        ]
    );
    assert!(tf.add_files.iter().all(|(p, _)| p.is_absolute()));
    // rpm-ostree's documented order: later includes before earlier ones,
    // the includer last; an inline conditional block merges into its file.
    assert_eq!(
        tf.postprocess,
        ["echo extra", "echo common", "echo inline", "echo main"]
    );
    assert_eq!(tf.postprocess_script, Some(dir.join("scripts/post.sh")));
    assert_eq!(tf.etc_group_members, ["wheel"]);
    assert_eq!(
        tf.automatic_version_prefix.as_deref(),
        Some("40.<date:%Y%m%d>")
    );
    assert_eq!(tf.mutate_os_release.as_deref(), Some("40"));
    assert_eq!(
        serde_json::Value::Object(tf.add_commit_metadata.clone()),
        json!({"cosa.stream": "next", "cosa.bool": false})
    );
    assert_eq!(
        serde_json::Value::Object(tf.metadata.clone()),
        json!({"name": "cosa-next", "count": 3, "common": 1, "inline": "yes"})
    );

    let passwd = dir.join("passwd").display().to_string();
    let other = [
        ("boot-location", json!("modules")),
        ("tmp-is-dir", json!(true)),
        ("machineid-compat", json!(false)),
        ("selinux", json!(true)),
        ("initramfs-args", json!(["--no-hostonly"])),
        ("readonly-executables", json!(true)),
        ("ostree-layers", json!(["overlay/main"])),
        ("ostree-override-layers", json!(["overlay/dev"])),
        ("container-cmd", json!(["/usr/bin/bash"])),
        ("rpmdb", json!("sqlite")),
        ("cliwrap", json!(false)),
        ("gpg-key", json!("ABCDEF")),
        (
            "units",
            json!(["extra.service", "common.service", "main.service"]),
        ),
        ("default-target", json!("multi-user.target")),
        ("check-passwd", json!({"type": "file", "filename": passwd})),
        (
            "check-groups",
            json!({"type": "data", "entries": {"wheel": 10}}),
        ),
        ("ignore-removed-users", json!(["alice", "zed"])),
        ("ignore-removed-groups", json!(["grp"])),
        ("install-langs", json!(["en_US"])),
        ("container", json!(false)),
        ("opt-usrlocal", json!("root")),
        ("sysusers", json!("compose-auto")),
        ("repovars", json!({"mirror": "example.org"})),
        (
            "rojig",
            json!({"name": "cosa-next", "summary": "s", "license": "MIT"}),
        ),
        ("modules", json!({"enable": ["a:1"], "install": ["b:2"]})),
        ("edition", json!("2014")),
        ("platform-module", json!("platform:f40")),
        ("automatic-version-suffix", json!("-")),
    ];
    for (key, want) in other {
        assert_eq!(tf.other[key], want, "{key}");
    }
}

#[test]
fn other_arch_takes_its_own_includes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = make_config(tmp.path());
    let tf = load(&path, "aarch64").unwrap();
    assert_eq!(tf.ref_.as_deref(), Some("cosa/aarch64/40/next"));
    assert!(tf.packages.iter().any(|p| p == "arm-only"));
    assert!(tf.packages.iter().any(|p| p == "grub2-efi-aa64"));
    for absent in ["x86-only", "cond-x86", "grub2-efi-x64"] {
        assert!(!tf.packages.iter().any(|p| p == absent), "{absent}");
    }
    assert_eq!(tf.remove_files, ["usr/share/info"]);
}

#[test]
fn defaults_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "m.json",
        r#"{"ref": "r/${basearch}", "releasever": "rawhide", "packages": ["a b"], "gpg_key": "K"}"#,
    );
    let tf = load(&path, "s390x").unwrap();
    assert_eq!(tf.ref_.as_deref(), Some("r/s390x"));
    assert_eq!(tf.releasever.as_deref(), Some("rawhide"));
    assert_eq!(tf.packages, ["a", "b"]);
    assert!(tf.recommends);
    assert!(tf.documentation);
    assert!(tf.postprocess_script.is_none());
    // Legacy underscore spelling lands under the kebab-case key.
    assert_eq!(tf.other["gpg-key"], json!("K"));
    // An empty YAML file is an empty treefile.
    let empty = write(tmp.path(), "empty.yaml", "");
    let tf = load(&empty, "x86_64").unwrap();
    assert!(tf.packages.is_empty() && tf.ref_.is_none());
}

#[test]
fn container_and_edition_imply_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.yaml", "container: true\nselinux: true\n");
    let container = [
        ("selinux", json!(false)),
        ("tmp-is-dir", json!(true)),
        ("boot-location", json!("modules")),
        ("check-passwd", json!({"type": "none"})),
    ];
    let edition = [
        ("edition", json!("2024")),
        ("tmp-is-dir", json!(false)),
        ("boot-location", json!("modules")),
    ];
    let path_e = write(tmp.path(), "e.yaml", "edition: 2024\ntmp-is-dir: false\n");
    for (path, wants) in [(path, &container[..]), (path_e, &edition[..])] {
        let tf = load(&path, "x86_64").unwrap();
        for (key, want) in wants {
            assert_eq!(&tf.other[*key], want, "{}: {key}", path.display());
        }
    }
}

#[test]
fn include_cycle_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write_files(
        tmp.path(),
        &[
            ("a.yaml", "include: b.yaml\n"),
            ("b.yaml", "include: sub/c.yaml\n"),
            ("sub/c.yaml", "include: ../a.yaml\n"),
        ],
    );
    assert_eq!(
        err_text(&a, "x86_64"),
        "include cycle: a.yaml -> b.yaml -> sub/c.yaml -> a.yaml"
    );
    let selfinc = write(tmp.path(), "self.yaml", "include: self.yaml\n");
    assert_eq!(
        err_text(&selfinc, "x86_64"),
        "include cycle: self.yaml -> self.yaml"
    );
}

#[test]
fn double_include_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_files(
        tmp.path(),
        &[
            ("m.yaml", "include: [x.yaml, y.yaml]\n"),
            ("x.yaml", "include: z.yaml\n"),
            ("y.yaml", "include: z.yaml\n"),
            ("z.yaml", "packages: [z]\n"),
        ],
    );
    assert_eq!(
        err_text(&m, "x86_64"),
        "z.yaml is included more than once (by x.yaml and by y.yaml); rpm-ostree refuses this"
    );
}

#[test]
fn missing_include_names_includer_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write(tmp.path(), "m.yaml", "include: nope/missing.yaml\n");
    let e = err_text(&m, "x86_64");
    let want = format!(
        "{}: included file {} not found",
        m.display(),
        tmp.path().join("nope/missing.yaml").display()
    );
    assert!(e.starts_with(&want), "{e}");
}

#[test]
fn unknown_keys_are_refused_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    // (file, text, the message after "<file>")
    let cases = [
        (
            "m.yaml",
            "ref: a\n\npackages: [a]\nbogus-key: 1\n",
            ":4: unknown treefile key \"bogus-key\"",
        ),
        (
            "s.yaml",
            "tmp_is_dir: true\n",
            ":1: unknown treefile key \"tmp_is_dir\" (did you mean \"tmp-is-dir\"?)",
        ),
        (
            "m.json",
            "{\n  \"ref\": \"a\",\n  \"nope\": 1\n}\n",
            ":3: unknown treefile key \"nope\"",
        ),
    ];
    for (name, text, want) in cases {
        let (m, e) = write_err(tmp.path(), name, text);
        assert_eq!(e, format!("{}{want}", m.display()));
    }
    // In an included file, the included file is named.
    let inc = write(tmp.path(), "inc.yaml", "oops: 1\n");
    let (_, e) = write_err(tmp.path(), "top.yaml", "include: inc.yaml\n");
    assert_eq!(
        e,
        format!("{}:1: unknown treefile key \"oops\"", inc.display())
    );
    let (_, e) = write_err(tmp.path(), "d.yaml", "override-remove: [a]\n");
    assert!(e.contains("client-side derivation key"));
}

#[test]
fn yaml_and_json_syntax_errors_name_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, e) = write_err(tmp.path(), "m.yaml", "ref: a\nmetadata:\n  x: 1\n y: 2\n");
    assert!(e.starts_with(&format!("{}:4:", m.display())), "{e}");
    assert!(
        e.starts_with(&format!("{}:4:2: YAML syntax error: ", m.display())),
        "{e}"
    );
    let json = "{\"ref\": \"a\",\n \"packages\": [\"a\",]}";
    let (j, e) = write_err(tmp.path(), "m.json", json);
    assert!(e.starts_with(&format!("{}:2:", j.display())), "{e}");
}

/// Treefile texts (written as m.yaml) and a part of the error each gives.
#[rustfmt::skip]
const WRONG_TYPES: &[(&str, &str)] = &[
    ("recommends: \"yes\"\n", "key \"recommends\": expected a boolean, got a string"),
    ("packages: a\n", "key \"packages\": expected a list of strings, got a string"),
    ("packages: [a, 1]\n", "key \"packages\": expected a list of strings, but item 2 is a number"),
    ("packages-x86_64: {a: 1}\n", "key \"packages-x86_64\": expected a list of strings"),
    ("ref: [a]\n", "key \"ref\": expected a string, got a list"),
    ("releasever: 1.5\n", "key \"releasever\": expected a string or an integer"),
    ("boot-location: old\n", "key \"boot-location\": expected one of new, modules, kernel-install"),
    ("selinux-label-version: 2\n", "key \"selinux-label-version\": must be 0 or 1"),
    ("add-files: [[a]]\n", "key \"add-files[1]\": expected [source, destination], got 1 items"),
    ("remove-from-packages: [[a]]\n", "key \"remove-from-packages[1]\": expected a package name"),
    ("remove-from-packages: [[a, \"(\"]]\n", "invalid regex"),
    ("repo-packages: [{repo: r}]\n", "key \"repo-packages[1]\": missing \"packages\""),
    ("variables: {basearch: x}\n", "cannot define reserved variable \"basearch\""),
    ("variables: {x: [1]}\n", "key \"variables.x\": expected a boolean"),
    ("check-passwd: {type: weird}\n", "unknown type \"weird\""),
    ("repovars: {releasever: '1'}\n", "repo var \"releasever\" is reserved"),
    ("automatic-version-suffix: ab\n", "must be exactly one ASCII character"),
    ("basearch: aarch64\n", "cross-composes are not supported"),
    ("gpg_key: a\ngpg-key: b\n", "cannot use both the new and the legacy form of gpg-key"),
    ("conditional-include: [{if: \"a ~ b\", include: x.yaml}]\n", "invalid condition"),
    ("conditional-include: [{if: nope == 1, include: x.yaml}]\n", "undefined variable \"nope\""),
    ("conditional-include: [{include: x.yaml}]\n", "missing \"if\""),
    ("postprocess-script: missing.sh\n", "key \"postprocess-script\": script"),
    ("add-files: [[missing, /etc/x]]\n", "source file"),
    ("add-files: [[m.yaml, /var/x]]\n", "unsupported destination \"/var/x\""),
    ("ref: \"${undefined}\"\n", "undefined variable ${undefined}"),
    ("packages: [\"'open\"]\n", "missing terminating quote"),
    ("ref: a\nref: b\n", "duplicate entry with key \"ref\""),
    ("repo-packages: x\n", "key \"repo-packages\": expected a list of {repo, packages} maps, got a string"),
    ("repo-packages: [{repo: r, packages: [a], x: 1}]\n", "key \"repo-packages[1]\": unknown field \"x\""),
    ("repo-packages: [[r]]\n", "key \"repo-packages[1]\": expected a map, got a list"),
    ("conditional-include: 1\n", "key \"conditional-include\": expected a list of {if, include} maps, got a number"),
    ("conditional-include: [{if: a, include: x.yaml, z: 1}]\n", "key \"conditional-include[1]\": unknown field \"z\""),
    ("conditional-include: [{if: a}]\n", "key \"conditional-include[1]\": missing \"include\""),
    ("add-files: a\n", "key \"add-files\": expected a list of [source, destination] pairs, got a string"),
    ("remove-from-packages: {a: 1}\n", "key \"remove-from-packages\": expected a list of [package, regex...] lists, got a map"),
    ("rojig: {name: a, summary: b}\n", "key \"rojig\": missing \"license\""),
    ("rojig: {name: a, summary: b, license: c, x: 1}\n", "key \"rojig\": unknown field \"x\""),
    ("modules: {enable: [a], x: [b]}\n", "key \"modules\": unknown field \"x\""),
];

#[test]
fn wrong_types_name_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, want) in WRONG_TYPES {
        let (m, e) = write_err(tmp.path(), "m.yaml", text);
        assert!(e.contains(&m.display().to_string()), "{text:?}: {e}");
        assert!(e.contains(want), "{text:?}: got {e}");
    }
}

#[test]
fn conditional_include_sees_included_variables_only_in_order() {
    // Variables come top-down: a file's conditions see its own variables
    // and its includers', and includes processed earlier.
    let tmp = tempfile::tempdir().unwrap();
    #[rustfmt::skip]
    let files = [
        ("m.yaml", "variables: {flavor: full}\ninclude: [a.yaml, b.yaml]\n"),
        ("a.yaml", "variables: {flavor: mini, extra: true}\n"),
        ("b.yaml", "conditional-include:\n  - if: [flavor == full, extra == true]\n    include: c.yaml\n"),
        ("c.yaml", "packages: [from-c]\n"),
    ];
    let m = write_files(tmp.path(), &files);
    let tf = load(&m, "x86_64").unwrap();
    assert_eq!(tf.packages, ["from-c"]);
    assert_eq!(tf.variables["flavor"], json!("full"));
}

#[test]
fn repo_dir_beside_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    #[rustfmt::skip]
    let files = [
        ("manifest.yaml", "releasever: 40\nrepos: [local]\n"),
        ("local.repo", "[local]\nbaseurl=file:///srv/$releasever/$basearch\ngpgcheck=0\n"),
    ];
    let m = write_files(tmp.path(), &files);
    let tf = load(&m, "x86_64").unwrap();
    let vars: BTreeMap<String, String> = [
        ("basearch".to_string(), "x86_64".to_string()),
        ("releasever".to_string(), tf.releasever.clone().unwrap()),
    ]
    .into_iter()
    .collect();
    let repos = load_repo_dir(tf.path.parent().unwrap(), &vars).unwrap();
    assert_eq!(repos.len(), 1);
    assert_eq!(repos[0].id, tf.repos[0]);
    assert_eq!(repos[0].baseurls, ["file:///srv/40/x86_64"]);
}
