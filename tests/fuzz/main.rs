//! Tier fuzz: every parser that reads input from outside, fed mutated
//! inputs on the stable toolchain. A target fails on a panic, on an input
//! that takes more than a second, or (through the allocator below, which
//! refuses any single allocation over 1 GiB and so aborts the process) on a
//! runaway allocation.
//!
//! Each target runs for `COSA_FUZZ_SECONDS` seconds (default 6) in CI, or
//! for exactly `COSA_FUZZ_INPUTS` inputs in a long run:
//!
//! ```sh
//! COSA_FUZZ_INPUTS=1000000 cargo nextest run --test fuzz --no-capture
//! ```
//!
//! Inputs are mutations (bit flips, random and "interesting" bytes, cut,
//! duplicated and spliced ranges, dictionary tokens) of real seeds: the
//! project's own configs, generated repositories, RPMs, OSTree objects and
//! OCI archives. The generator is seeded per target, so a run is
//! reproducible. A failing input is written to `target/fuzz-crashers/`
//! (after an abort it is `target/fuzz-crashers/<target>.last-input`);
//! copied into `tests/data/fuzz-regressions/<target>/` it is replayed by
//! every run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The system allocator, refusing single allocations over 1 GiB.
struct Capped;

const MAX_ALLOC: usize = 1 << 30;

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if l.size() > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Capped = Capped;

/// One input may take this long.
const SLOW: Duration = Duration::from_secs(1);

/// Byte sequences that make parsers take other paths.
const COMMON_TOKENS: &[&[u8]] = &[
    b"\0",
    b"\xff\xff\xff\xff",
    b"\x7f\xff\xff\xff",
    b"\x80\x00\x00\x00",
    b"99999999999999999999999",
    b"-1",
    b"..",
    b"../../../",
    b"/",
    b"\n",
    b"\"",
    b"'",
    b"{",
    b"[",
    b"<",
    b"&amp;",
    b"&#0;",
    b"%",
    b"$",
    b"${",
];

struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    tokens: &'static [&'static [u8]],
}

fn mutate(rng: &mut StdRng, t: &Target) -> Vec<u8> {
    let mut v = t.seeds[rng.gen_range(0..t.seeds.len())].clone();
    for _ in 0..rng.gen_range(1..=4) {
        let len = v.len();
        match rng.gen_range(0..8) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] = rng.r#gen();
            }
            2 => {
                let i = rng.gen_range(0..=len);
                let n = rng.gen_range(1..16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.r#gen()).collect();
                v.splice(i..i, bytes);
            }
            3 if len > 1 => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..=len.min(a + 64));
                v.drain(a..b);
            }
            4 if len > 1 => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..=len.min(a + 64));
                let chunk = v[a..b].to_vec();
                let at = rng.gen_range(0..=v.len());
                v.splice(at..at, chunk);
            }
            5 => {
                let other = &t.seeds[rng.gen_range(0..t.seeds.len())];
                if !other.is_empty() {
                    let a = rng.gen_range(0..other.len());
                    let b = rng.gen_range(a..=other.len());
                    let at = rng.gen_range(0..=v.len());
                    v.truncate(at);
                    v.extend_from_slice(&other[a..b]);
                }
            }
            6 => {
                let tok = if !t.tokens.is_empty() && rng.gen_bool(0.5) {
                    t.tokens[rng.gen_range(0..t.tokens.len())]
                } else {
                    COMMON_TOKENS[rng.gen_range(0..COMMON_TOKENS.len())]
                };
                let at = rng.gen_range(0..=len);
                v.splice(at..at, tok.iter().copied());
            }
            _ if len > 0 => {
                // Cut: a truncated download.
                v.truncate(rng.gen_range(0..len));
            }
            _ => {}
        }
    }
    v
}

fn crasher_path(target: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .join("fuzz-crashers");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!(
        "{target}-{}",
        &cosa::util::digest::sha256_hex(input)[..16]
    ))
}

/// Run one input; Err(reason) on a panic or a slow input.
fn one(f: &(dyn Fn(&[u8]) + Sync), input: &[u8]) -> Result<(), String> {
    let t = Instant::now();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| f(input)));
    let took = t.elapsed();
    match r {
        Err(p) => Err(format!(
            "panic: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
        Ok(()) if took > SLOW => Err(format!("took {took:?}")),
        Ok(()) => Ok(()),
    }
}

/// Replay the saved regressions, then fuzz for the configured budget.
fn fuzz(t: Target, f: impl Fn(&[u8]) + Sync) {
    assert!(!t.seeds.is_empty(), "{}: no seeds", t.name);
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz-regressions")
        .join(t.name);
    let mut replayed = 0;
    if let Ok(rd) = std::fs::read_dir(&regressions) {
        for e in rd.flatten() {
            let input = std::fs::read(e.path()).unwrap();
            if let Err(why) = one(&f, &input) {
                panic!(
                    "{}: regression {} fails again: {why}",
                    t.name,
                    e.path().display()
                );
            }
            replayed += 1;
        }
    }
    for s in &t.seeds {
        one(&f, s).unwrap_or_else(|why| panic!("{}: a seed fails: {why}", t.name));
    }
    let inputs: Option<u64> = std::env::var("COSA_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok());
    let budget = Duration::from_secs(
        std::env::var("COSA_FUZZ_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(6),
    );
    let seed = t
        .name
        .bytes()
        .fold(0xc05a_u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut rng = StdRng::seed_from_u64(seed);
    let last = crasher_path(t.name, b"").with_file_name(format!("{}.last-input", t.name));
    // Written in place, never truncated to zero: ext4 flushes a file
    // truncated to zero and rewritten when it is closed (auto_da_alloc),
    // which made that write most of an input's cost.
    let last_file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&last)
        .unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        match inputs {
            Some(max) if n >= max => break,
            None if start.elapsed() >= budget => break,
            _ => {}
        }
        let input = mutate(&mut rng, &t);
        // Kept on disk while it runs: an abort (allocation over 1 GiB)
        // leaves it behind.
        {
            use std::os::unix::fs::FileExt;
            last_file.write_all_at(&input, 0).unwrap();
            last_file.set_len(input.len() as u64).unwrap();
        }
        if let Err(why) = one(&f, &input) {
            let p = crasher_path(t.name, &input);
            std::fs::write(&p, &input).unwrap();
            panic!(
                "{}: input {n} {why}; saved to {} (copy it into {} to keep it as a regression)",
                t.name,
                p.display(),
                regressions.display()
            );
        }
        n += 1;
    }
    eprintln!(
        "fuzz {}: {n} inputs in {:.1}s ({} seeds, {replayed} regressions), no panic, none over {SLOW:?}",
        t.name,
        start.elapsed().as_secs_f64(),
        t.seeds.len()
    );
}

fn read_seeds(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = cosa_testkit::download::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .collect();
    v.sort();
    v
}

/// Scratch space for the parsers that read files: in /dev/shm where there
/// is one (tmpfs: a rewritten file costs no flush), else the temp dir.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

/// Write `input` to `dir/name` and return the path (for parsers that read files).
fn as_file(dir: &Path, name: &str, input: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, input).unwrap();
    p
}

/// A small generated repository: its RPM files, repomd.xml, primary and
/// filelists (uncompressed).
struct Fixture {
    _dir: tempfile::TempDir,
    rpms: Vec<PathBuf>,
    repomd: Vec<u8>,
    primary: Vec<u8>,
    filelists: Vec<u8>,
}

fn fixture() -> Fixture {
    use cosa_testkit::fixture::*;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    make_repo(
        &repo,
        &[
            PkgSpec::new("app", "1.0")
                .requires("lib >= 1")
                .provides("app-api = 2")
                .pre("echo pre")
                .file(FileSpec::file("/usr/bin/app", "#!/bin/sh\n").mode(0o755))
                .file(FileSpec::dir("/usr/share/app"))
                .file(FileSpec::symlink("/usr/bin/app2", "app"))
                .file(FileSpec::file("/etc/app.conf", "x=1\n").config()),
            PkgSpec::new("lib", "1.1").file(FileSpec::file("/usr/lib/lib.so", "lib")),
        ],
        RepoCompression::Gz,
    )
    .unwrap();
    let rpms = files_with_ext(&repo, "rpm");
    let repomd = std::fs::read(repo.join("repodata/repomd.xml")).unwrap();
    let gunzip = |suffix: &str| -> Vec<u8> {
        let f = cosa_testkit::download::files_under(&repo.join("repodata"))
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(f).unwrap()),
            &mut out,
        )
        .unwrap();
        out
    };
    Fixture {
        rpms,
        repomd,
        primary: gunzip("primary.xml.gz"),
        filelists: gunzip("filelists.xml.gz"),
        _dir: dir,
    }
}

#[test]
fn treefile() {
    let mut seeds = files_with_ext(&repo_root().join("manifests"), "yaml");
    seeds.extend(files_with_ext(
        &repo_root().join("tests/data/fcos-shape"),
        "yaml",
    ));
    let d = scratch();
    fuzz(
        Target {
            name: "treefile",
            seeds: read_seeds(&seeds),
            tokens: &[
                b"include: ",
                b"conditional-include:\n  - if: ",
                b"${basearch}",
                b"packages:\n  - ",
                b": null",
                b"&a ",
                b"*a",
                b"<<: ",
            ],
        },
        |input| {
            let p = as_file(d.path(), "manifest.yaml", input);
            let _ = cosa::config::treefile::load(&p, "x86_64");
        },
    );
}

#[test]
fn image_yaml() {
    let mut seeds = vec![repo_root().join("manifests/image.yaml")];
    seeds.extend(files_with_ext(
        &repo_root().join("tests/data/fcos-shape"),
        "yaml",
    ));
    let d = scratch();
    fuzz(
        Target {
            name: "image_yaml",
            seeds: read_seeds(&seeds),
            tokens: &[
                b"include: image.yaml",
                b"extra-kargs: ",
                b"size: ",
                b"platform-compressor:\n  a: ",
            ],
        },
        |input| {
            let p = as_file(d.path(), "image.yaml", input);
            let _ = cosa::config::image::ImageConfig::load_file(&p);
        },
    );
}

#[test]
fn repo_files() {
    let mut seeds = files_with_ext(&repo_root().join("tests/data/fcos-shape"), "repo");
    seeds.push(repo_root().join("manifests/sample.repo"));
    let d = scratch();
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("basearch".to_string(), "x86_64".to_string());
    vars.insert("releasever".to_string(), "1".to_string());
    fuzz(
        Target {
            name: "repo_files",
            seeds: read_seeds(&seeds),
            tokens: &[
                b"[",
                b"]\n",
                b"baseurl=",
                b"metalink=",
                b"$releasever",
                b"${x:-y}",
                b"priority=",
                b"\n ",
            ],
        },
        |input| {
            as_file(d.path(), "x.repo", input);
            let _ = cosa::config::repofile::load_repo_dir(d.path(), &vars);
        },
    );
}

#[test]
fn repomd_and_metalink() {
    let fx = fixture();
    let metalink = format!(
        "<?xml version=\"1.0\"?><metalink version=\"3.0\" xmlns=\"http://www.metalinker.org/\"><files><file name=\"repomd.xml\"><size>1</size><verification><hash type=\"sha256\">{}</hash></verification><resources><url protocol=\"http\" type=\"http\" preference=\"100\">http://127.0.0.1:1/r/repodata/repomd.xml</url></resources></file></files></metalink>",
        "0".repeat(64)
    );
    fuzz(
        Target {
            name: "repomd_and_metalink",
            seeds: vec![
                fx.repomd.clone(),
                metalink.into_bytes(),
                b"http://a/\n# c\nhttp://b/\n".to_vec(),
            ],
            tokens: &[
                b"<data type=\"filelists\">",
                b"</repomd>",
                b"<![CDATA[",
                b"&#x110000;",
                b"<url preference=\"-5\">",
            ],
        },
        |input| {
            let s = String::from_utf8_lossy(input);
            let _ = cosa::rpm::repodata::Repomd::parse(&s);
            let _ = cosa::rpm::mirrors::Metalink::parse(&s);
            let _ = cosa::rpm::mirrors::parse_mirrorlist(&s);
        },
    );
}

#[test]
fn primary_and_filelists() {
    let fx = fixture();
    fuzz(
        Target {
            name: "primary_and_filelists",
            seeds: vec![fx.primary.clone(), fx.filelists.clone()],
            tokens: &[
                b"<rpm:entry name=\"a\" flags=\"GE\" epoch=\"99999999999\"/>",
                b"<package type=\"rpm\">",
                b"</package>",
                b"<file type=\"dir\">",
            ],
        },
        |input| {
            let _ = cosa::rpm::repodata::parse_primary(input, "r");
            let _ = cosa::rpm::repodata::parse_filelists(input);
        },
    );
}

#[test]
fn rpm_headers() {
    let fx = fixture();
    let d = scratch();
    fuzz(
        Target {
            name: "rpm_headers",
            seeds: read_seeds(&fx.rpms),
            tokens: &[
                b"\x8e\xad\xe8\x01",
                b"\xed\xab\xee\xdb",
                b"\x00\x00\x00\x3f",
            ],
        },
        |input| {
            let p = as_file(d.path(), "x.rpm", input);
            let _ = cosa::rpm::rpmdb::read_package_headers(&p);
            let _ = cosa::rpm::rpmdb::Header::parse(input);
        },
    );
}

#[test]
fn rpm_payload_install() {
    let fx = fixture();
    let d = scratch();
    let opts = cosa::compose::install::InstallOptions {
        documentation: true,
        remove_from_packages: vec![],
        scripts: cosa::compose::install::ScriptPolicy::Skip("fuzzing".into()),
        basearch: "x86_64".into(),
        previous_ids: None,
        install_langs: None,
        sysusers: cosa::compose::sysusers::Sysusers::ComposeAuto,
    };
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    fuzz(
        Target {
            name: "rpm_payload_install",
            seeds: read_seeds(&fx.rpms),
            tokens: &[b"../../outside/x", b"./../", b"070701"],
        },
        |input| {
            let p = as_file(d.path(), "x.rpm", input);
            let meta = cosa::rpm::PackageMeta {
                name: "app".into(),
                version: "1.0".into(),
                release: "1".into(),
                arch: "x86_64".into(),
                ..Default::default()
            };
            let root = d.path().join("root");
            let _ = std::fs::remove_dir_all(&root);
            let _ = cosa::compose::install::install(&root, &[(meta, p)], &opts);
            assert!(
                std::fs::read_dir(&outside).unwrap().next().is_none(),
                "a payload wrote outside the tree"
            );
        },
    );
}

#[test]
fn lockfiles() {
    let seeds = vec![
        std::fs::read(repo_root().join("tests/data/fcos-shape/manifest-lock.x86_64.json")).unwrap(),
        std::fs::read(repo_root().join("tests/data/fcos-shape/manifest-lock.overrides.yaml"))
            .unwrap(),
    ];
    let d = scratch();
    fuzz(
        Target {
            name: "lockfiles",
            seeds,
            tokens: &[b"\"evra\": ", b"evr: ", b"1:2-3.x86_64"],
        },
        |input| {
            let _ = cosa::rpm::lockfile::Lockfile::read(&as_file(d.path(), "l.json", input));
            let _ = cosa::rpm::lockfile::Lockfile::read(&as_file(d.path(), "l.yaml", input));
        },
    );
}

/// An archive repo in `dir/repo` with one small commit (a file, a symlink,
/// metadata).
fn small_commit(dir: &Path) -> (cosa::ostree::Repo, String) {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("usr/bin")).unwrap();
    std::fs::write(src.join("usr/bin/x"), "data").unwrap();
    std::os::unix::fs::symlink("x", src.join("usr/bin/y")).unwrap();
    let repo = cosa::ostree::Repo::init_archive(&dir.join("repo")).unwrap();
    let root = repo.write_dir(&src).unwrap();
    let commit = repo
        .write_commit(&cosa::ostree::Commit {
            parent: None,
            subject: "s".into(),
            body: String::new(),
            timestamp: 1,
            metadata: [("version".to_string(), cosa::ostree::Value::str("1"))].into(),
            root,
        })
        .unwrap();
    (repo, commit)
}

#[test]
fn ostree_objects() {
    let d = scratch();
    let (repo, _) = small_commit(d.path());
    let mut seeds = Vec::new();
    for (o, _) in repo.list_objects().unwrap() {
        seeds.push(repo.read_object(&o.checksum, o.kind).unwrap());
    }
    fuzz(
        Target {
            name: "ostree_objects",
            seeds,
            tokens: &[b"\xff\xff\xff\xff", b"a{sv}"],
        },
        |input| {
            use cosa::ostree::*;
            let _ = Commit::parse(input);
            let _ = DirTree::parse(input);
            let _ = DirMeta::parse(input);
            let _ = cosa::ostree::objects::parse_filez(input);
            let _ = cosa::ostree::objects::parse_metadata(input);
        },
    );
}

#[test]
fn oci_archive_import() {
    let d = scratch();
    let (repo, commit) = small_commit(d.path());
    let archive = d.path().join("x.ociarchive");
    cosa::publish::oci::export_ociarchive(&repo, &commit, "x86_64", &archive).unwrap();
    let seeds = vec![std::fs::read(&archive).unwrap()];
    let n = std::sync::atomic::AtomicU64::new(0);
    fuzz(
        Target {
            name: "oci_archive_import",
            seeds,
            tokens: &[b"index.json", b"blobs/sha256/", b"../"],
        },
        |input| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = as_file(d.path(), "in.ociarchive", input);
            let fresh = d.path().join(format!("fresh-{}", i % 2));
            let _ = std::fs::remove_dir_all(&fresh);
            let r = cosa::ostree::Repo::init_archive(&fresh).unwrap();
            let _ = cosa::publish::oci::import_artifact(&r, &p);
        },
    );
}

#[test]
fn store_files() {
    let builds = br#"{"schema-version": "1.0.0", "builds": [{"id": "41.20240520.dev.0", "arches": ["x86_64", "aarch64"]}], "timestamp": "2024-05-20T00:00:00Z"}"#.to_vec();
    let meta = serde_json::json!({
        "buildid": "41.1", "name": "os", "ostree-commit": "a".repeat(64),
        "ostree-version": "41.1", "ostree-timestamp": "2024-01-01T00:00:00Z",
        "images": {"qemu": {"path": "os-41.1-qemu.x86_64.qcow2", "sha256": "0".repeat(64), "size": 10}},
    })
    .to_string()
    .into_bytes();
    fuzz(
        Target {
            name: "store_files",
            seeds: vec![builds, meta],
            tokens: &[b"\"arches\": [\"../x\"]", b"\"path\": \"/etc/passwd\""],
        },
        |input| {
            let _ = cosa::store::BuildsJson::parse(&String::from_utf8_lossy(input));
            let _ = cosa::store::Meta::parse(input, "fuzz");
        },
    );
}

#[test]
fn release_files() {
    let streams = std::fs::read(repo_root().join("manifests/streams.yaml"))
        .unwrap_or_else(|_| b"streams:\n  stable:\n    type: production\n    code: 3\n".to_vec());
    let updates = br#"{"stream": "stable", "metadata": {"last-modified": "2024-01-01T00:00:00Z"}, "releases": [{"version": "41.20240101.3.0", "metadata": {"rollout": {"start_epoch": 1700000000, "start_percentage": 0.5}, "barrier": {"reason": "x"}}}]}"#.to_vec();
    fuzz(
        Target {
            name: "release_files",
            seeds: vec![streams, updates],
            tokens: &[b"41.20240101.03.00", b"\"start_epoch\": 99999999999999999"],
        },
        |input| {
            let s = String::from_utf8_lossy(input);
            let _ = cosa::release::streams::Streams::parse(&s, "fuzz");
            let _ = cosa::release::updates::Updates::from_json(&s);
            let _ = serde_json::from_str::<cosa::release::index::ReleaseIndex>(&s);
            let _ = serde_json::from_str::<cosa::release::index::Release>(&s);
            let _ = cosa::release::version::parse(&s);
        },
    );
}
