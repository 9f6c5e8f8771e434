//! The build store verbs: `cosa list`, `cosa meta`, `cosa diff`, `cosa prune`.

use anyhow::{Context, Result, bail};

use crate::cli::{DiffOpts, GlobalOpts, ListOpts, MetaOpts, PruneOpts};
use crate::compose::rpmdb;
use crate::config::workdir::Workdir;
use crate::store::builds::BuildsJson;
use crate::store::diff;
use crate::store::lock::WorkdirLock;
use crate::store::meta;
use crate::util;

fn load(global: &GlobalOpts) -> Result<(Workdir, BuildsJson)> {
    let wd = Workdir::open(&global.workdir)?;
    let path = wd.builds_dir().join("builds.json");
    if !path.exists() {
        bail!(
            "no builds yet in {}: run `cosa build`",
            wd.builds_dir().display()
        );
    }
    let b = BuildsJson::load(&wd.builds_dir())?;
    Ok((wd, b))
}

pub fn list(global: &GlobalOpts, opts: ListOpts) -> Result<()> {
    let (wd, builds) = load(global)?;
    let mut rows = Vec::new();
    for b in &builds.builds {
        for a in &b.arches {
            let m = meta::read_value(&meta::meta_path(&wd.builds_dir(), &b.id, a)).ok();
            let get = |k: &str| {
                m.as_ref()
                    .and_then(|v| v.get(k))
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            rows.push(serde_json::json!({
                "id": b.id,
                "arch": a,
                "ostree-commit": get("ostree-commit"),
                "timestamp": get("coreos-assembler.build-timestamp"),
                "tags": builds.tags_of(&b.id),
            }));
        }
    }
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in &rows {
        let tags = r["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let commit = r["ostree-commit"].as_str().unwrap_or("");
        println!(
            "{}  {}  {}  {}{}",
            r["id"].as_str().unwrap_or(""),
            r["arch"].as_str().unwrap_or(""),
            &commit[..commit.len().min(12)],
            r["timestamp"].as_str().unwrap_or(""),
            if tags.is_empty() {
                String::new()
            } else {
                format!("  tags: {tags}")
            }
        );
    }
    Ok(())
}

pub fn meta(global: &GlobalOpts, opts: MetaOpts) -> Result<()> {
    let (wd, builds) = load(global)?;
    let arch = util::target_arch(opts.target.arch.as_deref())?;
    let id = builds.resolve(opts.target.build.as_deref())?;
    let path = meta::meta_path(&wd.builds_dir(), &id, &arch);
    if !opts.set.is_empty() {
        let _lock = WorkdirLock::acquire(&wd.root)?;
        let sets: Vec<&str> = opts.set.iter().map(String::as_str).collect();
        meta::set_in_file(&path, &sets)?;
        eprintln!("Updated {}", path.display());
        return Ok(());
    }
    let v = meta::read_value(&path)?;
    match &opts.get {
        Some(k) => {
            let x = meta::get_key(&v, k)?;
            match x {
                serde_json::Value::String(s) => println!("{s}"),
                other => println!("{}", serde_json::to_string_pretty(other)?),
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&v)?),
    }
    Ok(())
}

pub fn diff(global: &GlobalOpts, opts: DiffOpts) -> Result<()> {
    let (wd, builds) = load(global)?;
    let arch = util::target_arch(opts.arch.as_deref())?;
    let to = builds.resolve(opts.to.as_deref())?;
    let from = match &opts.from {
        Some(f) => builds.resolve(Some(f))?,
        None => {
            let pos = builds
                .builds
                .iter()
                .position(|b| b.id == to)
                .context("build not found")?;
            builds
                .builds
                .iter()
                .skip(pos + 1)
                .find(|b| b.arches.contains(&arch))
                .map(|b| b.id.clone())
                .with_context(|| {
                    format!("build {to} has no older build to compare with; pass --from")
                })?
        }
    };
    let pkgs = |id: &str| -> Result<Vec<diff::Pkg>> {
        let mp = meta::meta_path(&wd.builds_dir(), id, &arch);
        let p = mp.with_file_name("commitmeta.json");
        let cm: serde_json::Value = match std::fs::read(&p) {
            Ok(data) => {
                serde_json::from_slice(&data).with_context(|| format!("parsing {}", p.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Value::Null,
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        };
        if !opts.rpmdb && diff::has_pkglist(&cm) {
            return diff::packages_from_commitmeta(&cm);
        }
        let commit = meta::Meta::read(&mp)?.ostree_commit;
        let repo = crate::ostree::Repo::open(&wd.repo_dir())?;
        let rel = format!("{}/{}", rpmdb::RPMDB_DIR, crate::rpm::rpmdb::DB_FILE);
        let db = repo.read_commit_file(&commit, &rel)?.with_context(|| {
            format!(
                "build {id}: commit {commit} is not in {} or has no /{rel}",
                wd.repo_dir().display()
            )
        })?;
        diff::packages_from_rpmdb(&db, &format!("/{rel} of build {id} (commit {commit})"))
    };
    let d = diff::diff(&pkgs(&from)?, &pkgs(&to)?);
    if opts.json {
        let v = serde_json::json!({
            "from": from,
            "to": to,
            "arch": arch,
            "changes": d.changes,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    eprintln!("Packages from {from} to {to}:");
    if d.is_empty() {
        println!("no package changes");
    } else {
        print!("{}", d.to_table());
    }
    Ok(())
}

pub fn prune(global: &GlobalOpts, opts: PruneOpts) -> Result<()> {
    let (wd, builds) = load(global)?;
    let lock = WorkdirLock::acquire(&wd.root)?;
    let repo = crate::ostree::Repo::open_or_init(&wd.repo_dir())?;
    super::build::prune_builds(&wd.builds_dir(), &builds, &repo, opts.keep, &lock)
}
