//! Release engineering verbs: `cosa build --stream` versions, `cosa release`,
//! `cosa promote`, `cosa rollout`, `cosa barrier`, `cosa deadend` and
//! `cosa graph`, on the library in `crate::release`.
//!
//! Everything they publish goes to a local publish directory
//! ([`crate::release::publish`]); every file is written atomically, and the
//! update graph is checked before anything is written.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cli::{
    GlobalOpts, GraphCmd, GraphOpts, MarkOpts, PromoteOpts, ReleaseOpts, RolloutCmd, RolloutOpts,
};
use crate::config::workdir::Workdir;
use crate::release::graph;
use crate::release::index::AddOutcome;
use crate::release::metadata;
use crate::release::promote;
use crate::release::publish::PublishDir;
use crate::release::streams::{Stream, Streams};
use crate::release::updates::{self, Updates};
use crate::release::version;
use crate::store::builds::BuildsJson;
use crate::store::lock::WorkdirLock;
use crate::util::time;

/// Working directory and streams.
fn open(global: &GlobalOpts) -> Result<(Workdir, Streams)> {
    let wd = Workdir::open(&global.workdir)?;
    let streams = Streams::load(&wd.config_dir())?;
    Ok((wd, streams))
}

/// Refuse when the graph of `releases` with `updates` has problems.
fn graph_gate(stream: &str, releases: &[String], updates: &Updates) -> Result<()> {
    let (pending, problems) = graph::check_rolled_out(releases, updates);
    if !problems.is_empty() {
        bail!(
            "the update graph of stream {stream} would be broken; nothing written:\n  {}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    if !pending.is_empty() {
        eprintln!(
            "note: not rolled out yet on {stream} (no node is offered them): {}",
            pending.join(", ")
        );
    }
    Ok(())
}

/// `cosa release --stream S [--build ID]`
pub fn release(global: &GlobalOpts, opts: ReleaseOpts) -> Result<()> {
    let (wd, streams) = open(global)?;
    let stream = streams.get(&opts.stream)?;
    let _lock = WorkdirLock::acquire(&wd.root)?;
    let builds_dir = wd.builds_dir();
    let builds = BuildsJson::load(&builds_dir)?;
    let id = builds.resolve(opts.build.as_deref())?;
    let sv = version::parse(&id).with_context(|| {
        format!(
            "build {id} is not a stream build; build one with `cosa build --stream {}`",
            stream.name
        )
    })?;
    if sv.stream_code != stream.code {
        bail!(
            "build {id} has stream code {}, but stream {} has code {}",
            sv.stream_code,
            stream.name,
            stream.code
        );
    }
    let pd = PublishDir::resolve(&wd.root, opts.publish.publish_dir.as_deref(), stream);
    report_leftovers(&pd.remove_leftovers(&stream.name, Some(&id))?);
    let now = time::now_secs();
    let now_s = time::format_rfc3339(now);
    eprintln!(
        "Releasing {id} on {} (checking artifact checksums)",
        stream.name
    );
    let release = crate::release::index::release_from_build(&builds_dir, &id, stream, &now_s)?;
    let mut index = pd.index(&stream.name, &now_s)?;
    let outcome = index.add(release.index_entry(stream), &now_s)?;
    if outcome == AddOutcome::Unchanged {
        eprintln!(
            "{id} is already released on {} with the same commits; nothing to do",
            stream.name
        );
        println!("{id}");
        return Ok(());
    }
    let versions: Vec<String> = index.releases.iter().map(|r| r.version.clone()).collect();
    let updates = pd.updates(&stream.name, now)?;
    graph_gate(&stream.name, &versions, &updates)?;

    // releases.json last: it is what a rerun checks to find the release
    // done, so a run killed before it is run again in full.
    let release_path = pd.release_json(&stream.name, &id);
    create_parent(&release_path)?;
    release.write(&release_path)?;
    let sm_path = pd.stream_metadata(&stream.name);
    create_parent(&sm_path)?;
    metadata::generate(&release, &now_s).write(&sm_path)?;
    let index_path = pd.releases_json(&stream.name);
    index.write(&index_path)?;
    eprintln!(
        "{} {id} in {} (release.json, releases.json, {})",
        match outcome {
            AddOutcome::Replaced => "Updated",
            _ => "Released",
        },
        pd.root.display(),
        metadata::stream_metadata_path(&stream.name)
    );
    println!("{id}");
    Ok(())
}

fn report_leftovers(removed: &[std::path::PathBuf]) {
    for p in removed {
        eprintln!("Removed leftover of an interrupted run: {}", p.display());
    }
}

fn create_parent(path: &Path) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    Ok(())
}

/// `RFC 3339`, epoch seconds or `now`, between 2000 and 2200 (a rollout
/// outside that is a typo, e.g. milliseconds given as seconds).
fn parse_time(s: &str, now: i64) -> Result<i64> {
    const MIN: i64 = 946_684_800; // 2000-01-01T00:00:00Z
    const MAX: i64 = 7_258_118_400; // 2200-01-01T00:00:00Z
    let t = if s == "now" {
        now
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().with_context(|| format!("time {s:?}"))?
    } else {
        time::parse_rfc3339(s)
            .with_context(|| format!("time {s:?}: expected RFC 3339, epoch seconds or `now`"))?
    };
    if !(MIN..MAX).contains(&t) {
        bail!(
            "time {s:?} is {}, outside 2000..2200: not a plausible rollout time",
            time::format_rfc3339(t.clamp(-62_135_596_800, 253_402_300_799))
        );
    }
    Ok(t)
}

/// Minutes from `90`, `90m`, `48h` or `2d`.
fn parse_duration_minutes(s: &str) -> Result<u64> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'm')) => (&s[..i], 1),
        Some((i, 'h')) => (&s[..i], 60),
        Some((i, 'd')) => (&s[..i], 24 * 60),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("duration {s:?}: expected minutes or a number with m, h or d"))?;
    n.checked_mul(mult)
        .filter(|m| *m > 0)
        .with_context(|| format!("duration {s:?} must be at least one minute"))
}

/// `0.1` or `10%` to a fraction.
fn parse_fraction(s: &str) -> Result<f64> {
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .with_context(|| {
        format!("start percentage {s:?}: expected a fraction (0.1) or a percentage (10%)")
    })?;
    if !(0.0..=1.0).contains(&v) {
        bail!("start percentage {s:?} is not within 0..1 (0%..100%)");
    }
    Ok(v)
}

/// Under the working-directory lock, load a stream's released versions and
/// updates, let `change` edit them, check the graph, then write
/// updates/S.json.
fn edit_updates(
    wd: &Workdir,
    stream: &Stream,
    publish_dir: Option<&Path>,
    now: i64,
    change: impl FnOnce(&mut Updates, &[String]) -> Result<()>,
) -> Result<()> {
    let _lock = WorkdirLock::acquire(&wd.root)?;
    let pd = PublishDir::resolve(&wd.root, publish_dir, stream);
    report_leftovers(&pd.remove_leftovers(&stream.name, None)?);
    let released = pd.released_versions(&stream.name)?;
    let mut u = pd.updates(&stream.name, now)?;
    let before = u.clone();
    change(&mut u, &released)?;
    if u == before {
        eprintln!("updates/{}.json is unchanged", stream.name);
        return Ok(());
    }
    graph_gate(&stream.name, &released, &u)?;
    let path = pd.updates_json(&stream.name);
    create_parent(&path)?;
    u.save(&path)?;
    eprintln!("Wrote {}", path.display());
    Ok(())
}

/// `cosa rollout ...` and `cosa rollout clean`
pub fn rollout(global: &GlobalOpts, opts: RolloutOpts) -> Result<()> {
    let (wd, streams) = open(global)?;
    let now = time::now_secs();
    if let Some(RolloutCmd::Clean(c)) = opts.cmd {
        let stream = streams.get(&c.stream)?;
        let at =
            c.at.as_deref()
                .map(|a| parse_time(a, now))
                .transpose()?
                .unwrap_or(now);
        return edit_updates(
            &wd,
            stream,
            c.publish.publish_dir.as_deref(),
            now,
            |u, _| {
                let removed = u.rollout_clean(at);
                if !removed.is_empty() {
                    eprintln!("Removed finished rollouts of {}", removed.join(", "));
                }
                Ok(())
            },
        );
    }
    let name = opts.stream.context("--stream is required")?;
    let version = opts.version.context("--version is required")?;
    let start = parse_time(opts.start.as_deref().context("--start is required")?, now)?;
    let minutes =
        parse_duration_minutes(opts.duration.as_deref().context("--duration is required")?)?;
    let pct = parse_fraction(&opts.start_percentage)?;
    let stream = streams.get(&name)?;
    edit_updates(
        &wd,
        stream,
        opts.publish.publish_dir.as_deref(),
        now,
        |u, released| {
            u.set_rollout(
                released,
                &stream.code.to_string(),
                &version,
                start,
                minutes,
                pct,
                now,
            )?;
            eprintln!(
                "Rollout of {version} on {}: from {} at {:.0}% to 100% over {minutes} min",
                stream.name,
                time::format_rfc3339(start),
                pct * 100.0
            );
            Ok(())
        },
    )
}

fn mark_stream<'a>(streams: &'a Streams, opts: &MarkOpts) -> Result<&'a Stream> {
    match &opts.stream {
        Some(s) => streams.get(s),
        None => {
            let code = updates::stream_code(&opts.version)
                .and_then(|c| c.parse::<u64>().ok())
                .with_context(|| {
                    format!(
                        "version {:?} is not of the form X.YYYYMMDD.Z.N; pass --stream",
                        opts.version
                    )
                })?;
            streams
                .by_code(code)
                .with_context(|| format!("no stream has code {code} (version {})", opts.version))
        }
    }
}

/// `cosa barrier` and `cosa deadend`: `--version V --reason R [--stream S]`.
pub fn mark(
    global: &GlobalOpts,
    opts: MarkOpts,
    kind: crate::release::updates::Mark,
) -> Result<()> {
    let (wd, streams) = open(global)?;
    let stream = mark_stream(&streams, &opts)?;
    let now = time::now_secs();
    edit_updates(
        &wd,
        stream,
        opts.publish.publish_dir.as_deref(),
        now,
        |u, released| {
            u.set_mark(
                kind,
                released,
                &stream.code.to_string(),
                &opts.version,
                &opts.reason,
                now,
            )
        },
    )
}

/// `cosa graph --stream S ...` and `cosa graph check --stream S`
pub fn graph(global: &GlobalOpts, opts: GraphOpts) -> Result<()> {
    let (wd, streams) = open(global)?;
    let now = time::now_secs();
    if let Some(GraphCmd::Check(c)) = opts.cmd {
        let stream = streams.get(&c.stream)?;
        let pd = PublishDir::resolve(&wd.root, c.publish.publish_dir.as_deref(), stream);
        let released = pd.released_versions(&stream.name)?;
        let u = pd.updates(&stream.name, now)?;
        graph_gate(&stream.name, &released, &u)?;
        eprintln!(
            "The update graph of {} is sound ({} releases)",
            stream.name,
            released.len()
        );
        return Ok(());
    }
    let name = opts.stream.context("--stream is required")?;
    let stream = streams.get(&name)?;
    if !(0.0..=1.0).contains(&opts.wariness) {
        bail!("--wariness {} is not within 0.0..=1.0", opts.wariness);
    }
    let at = opts
        .at
        .as_deref()
        .map(|a| parse_time(a, now))
        .transpose()?
        .unwrap_or(now);
    let pd = PublishDir::resolve(&wd.root, opts.publish.publish_dir.as_deref(), stream);
    let released = pd.released_versions(&stream.name)?;
    let u = pd.updates(&stream.name, now)?;
    let g = graph::build_graph(&released, &u, opts.wariness, at);
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&g.to_json())?);
    } else if opts.dot {
        print!("{}", g.to_dot());
    } else {
        for (i, (v, m)) in g.nodes.iter().zip(&g.metadata).enumerate() {
            let mut flags = Vec::new();
            for (k, f) in [
                (graph::BARRIER, "barrier"),
                (graph::DEADEND, "deadend"),
                (graph::ROLLOUT, "rollout"),
            ] {
                if m.contains_key(k) {
                    flags.push(f);
                }
            }
            let outs: Vec<String> = g
                .edges
                .iter()
                .filter(|(a, _)| *a == i)
                .map(|(_, b)| g.name(*b))
                .collect();
            println!(
                "{v}{} -> {}",
                if flags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", flags.join(","))
                },
                if outs.is_empty() {
                    "(none)".to_string()
                } else {
                    outs.join(", ")
                }
            );
        }
    }
    Ok(())
}

/// `cosa promote`
pub fn promote(global: &GlobalOpts, opts: PromoteOpts) -> Result<()> {
    if opts.config_only {
        let dir = opts
            .config
            .clone()
            .unwrap_or_else(|| global.workdir.join("src/config"));
        let mut keep = vec!["manifest.yaml".to_string()];
        keep.extend(opts.keep.iter().filter(|k| *k != "manifest.yaml").cloned());
        match promote::promote_config(&dir, &opts.from, &opts.to, &keep)? {
            Some(c) => {
                eprintln!(
                    "Promoted {} into {} (kept {}): commit {c}",
                    opts.from,
                    opts.to,
                    keep.join(", ")
                );
                println!("{c}");
            }
            None => eprintln!(
                "{} already has the tree of {}; nothing to commit",
                opts.to, opts.from
            ),
        }
        return Ok(());
    }
    let (wd, streams) = open(global)?;
    let from = streams.get(&opts.from)?;
    let to = streams.get(&opts.to)?;
    let version = promote::promote_build(
        &wd,
        from,
        to,
        opts.build.as_deref(),
        opts.force,
        opts.publish.publish_dir.as_deref(),
        time::now_secs(),
    )?;
    println!("{version}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_times_and_fractions() {
        assert_eq!(parse_duration_minutes("90").unwrap(), 90);
        assert_eq!(parse_duration_minutes("90m").unwrap(), 90);
        assert_eq!(parse_duration_minutes("48h").unwrap(), 48 * 60);
        assert_eq!(parse_duration_minutes("2d").unwrap(), 2 * 24 * 60);
        assert!(parse_duration_minutes("0m").is_err());
        assert!(parse_duration_minutes("h").is_err());
        let now = 1_765_000_000;
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("1700000000", now).unwrap(), 1_700_000_000);
        assert_eq!(
            parse_time("2026-01-01T00:01:00Z", now).unwrap(),
            1_767_225_660
        );
        assert!(parse_time("yesterday", now).is_err());
        // Absurd values are refused, naming what they would mean.
        let e = parse_time("99999999999999", now).unwrap_err().to_string();
        assert!(e.contains("outside 2000..2200"), "{e}");
        assert!(parse_time("1970-01-01T00:01:00Z", now).is_err());
        assert_eq!(parse_fraction("10%").unwrap(), 0.1);
        assert_eq!(parse_fraction("0.25").unwrap(), 0.25);
        assert!(parse_fraction("101%").is_err());
        assert!(parse_fraction("-0.1").is_err());
    }

    #[test]
    fn trailing_unrolled_releases_are_pending_not_stranded() {
        let rel: Vec<String> = ["1.20260101.3.0", "1.20260102.3.0", "1.20260103.3.0"]
            .map(String::from)
            .to_vec();
        let mut u = Updates::new("stable", 0);
        assert_eq!(graph::pending_count(&rel, &u), 2);
        u.set_rollout(&rel, "3", &rel[1], 0, 10, 0.0, 0).unwrap();
        let (pending, problems) = graph::check_rolled_out(&rel, &u);
        assert_eq!(pending, [rel[2].clone()]);
        assert!(problems.is_empty(), "{problems:?}");
        // The full check would call the oldest stranded from the unrolled newest.
        assert!(graph::check(&rel, &u).is_err());
    }
}
