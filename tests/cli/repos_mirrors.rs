//! `cosa fetch` against repos reached the way Fedora's repo files reach
//! them: `metalink=` and `mirrorlist=` served on 127.0.0.1 listing a dead
//! mirror (a closed port), a mirror that answers 404, stale mirrors and good
//! ones; and `repo_gpgcheck=1` with repomd.xml signatures made by GnuPG.

use crate::common;
use crate::download_gpg;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use cosa_testkit::download::{Server, sha256_hex};
use cosa_testkit::fixture::{PkgSpec, RepoCompression, make_repo};
use download_gpg::{Key, gpg, keys};

/// A 127.0.0.1 port nothing listens on (bound, then closed).
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn specs(version: &str) -> Vec<PkgSpec> {
    vec![
        PkgSpec::new("app", version).requires("libapp"),
        PkgSpec::new("libapp", "1.0"),
    ]
}

/// A repo of `specs` in `dir`; returns its repomd.xml.
fn repo(dir: &Path, specs: &[PkgSpec]) -> Vec<u8> {
    make_repo(dir, specs, RepoCompression::Gz).unwrap();
    std::fs::read(dir.join("repodata/repomd.xml")).unwrap()
}

/// A metalink as MirrorManager writes it: repomd.xml's hashes (`main`), the
/// alternates' hashes, and `(url, preference)` of each mirror's repomd.xml.
fn metalink(
    main: &[(&str, String)],
    alternates: &[Vec<(&str, String)>],
    urls: &[(String, u32)],
) -> String {
    let hashes = |hs: &[(&str, String)]| -> String {
        hs.iter()
            .map(|(t, h)| format!("      <hash type=\"{t}\">{h}</hash>\n"))
            .collect()
    };
    let mut alts = String::new();
    for a in alternates {
        alts.push_str(&format!(
            "    <mm0:alternate><mm0:timestamp>1</mm0:timestamp><size>1</size>\n     <verification>\n{}     </verification></mm0:alternate>\n",
            hashes(a)
        ));
    }
    let mut res = String::new();
    for (u, pref) in urls {
        let proto = u.split(':').next().unwrap();
        res.push_str(&format!(
            "      <url protocol=\"{proto}\" type=\"{proto}\" location=\"US\" preference=\"{pref}\">{u}</url>\n"
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic" generator="mirrormanager" xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files>
  <file name="repomd.xml">
   <mm0:timestamp>1700000000</mm0:timestamp>
   <size>3000</size>
   <verification>
{}   </verification>
   <mm0:alternates>
{alts}   </mm0:alternates>
   <resources maxconnections="1">
{res}   </resources>
  </file>
 </files>
</metalink>
"#,
        hashes(main)
    )
}

/// A config with `manifest.yaml` asking for app and `fedora.repo` holding
/// `repo_text`; returns the workdir.
fn workdir(root: &Path, repo_text: &str) -> PathBuf {
    let cfg = root.join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("manifest.yaml"),
        "releasever: 40\nrepos: [fedora]\npackages: [app]\n",
    )
    .unwrap();
    std::fs::write(cfg.join("fedora.repo"), repo_text).unwrap();
    init_transient(root, &cfg)
}

fn fetch(wd: &Path, ok: bool) -> Output {
    run(cosa(wd).arg("fetch"), ok)
}

/// `cosa fetch --dry-run --json`: the resolved set as (nevra, repo).
fn resolved(wd: &Path) -> Vec<String> {
    let out = run(cosa(wd).args(["fetch", "--dry-run", "--json"]), true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nevra"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Mirrors tried in preference order: a dead one (closed port), one that
/// answers 404, then a good one; a fourth, less preferred, is never asked.
/// Metadata and packages come from the good one, and the two failures are
/// reported.
#[test]
fn metalink_falls_back_in_preference_order_and_reports_failed_mirrors() {
    let t = tempfile::tempdir().unwrap();
    let repomd = repo(&t.path().join("mirror/fedora/40/x86_64"), &specs("2.0"));
    let good = Server::start(&t.path().join("mirror"));
    let spare = Server::start(&t.path().join("mirror"));
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let missing = Server::start(&empty);
    let dead = format!(
        "http://127.0.0.1:{}/fedora/40/x86_64/repodata/repomd.xml",
        dead_port()
    );
    let path = "fedora/40/x86_64/repodata/repomd.xml";
    let ml = metalink(
        &[
            ("md5", "0".repeat(32)),
            ("sha1", "1".repeat(40)),
            ("sha256", sha256_hex(&repomd)),
        ],
        &[],
        &[
            (spare.url(path).to_string(), 10),
            (good.url(path).to_string(), 50),
            (missing.url(path).to_string(), 90),
            (dead.clone(), 100),
        ],
    );
    let lists = t.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(lists.join("metalink"), ml).unwrap();
    let mm = Server::start(&lists);
    let wd = workdir(
        t.path(),
        &format!(
            "[fedora]\nname=Fedora $releasever - $basearch\nmetalink={}?repo=fedora-$releasever&arch=$basearch\ngpgcheck=0\n",
            mm.url("metalink")
        ),
    );
    let out = fetch(&wd, true);
    let err = stderr(&out);
    eprintln!("{err}");
    // Reported, in the order tried.
    let d = err
        .find(&dead.replace("repodata/repomd.xml", ""))
        .expect("dead mirror reported");
    let m = err
        .find(&missing.url("fedora/40/x86_64/").to_string())
        .expect("404 mirror reported");
    assert!(d < m, "{err}");
    assert!(err.contains("using mirror") && err.contains("404"), "{err}");
    assert_eq!(missing.count("/fedora/40/x86_64/repodata/repomd.xml"), 1);
    assert_eq!(good.count("/fedora/40/x86_64/repodata/repomd.xml"), 1);
    assert_eq!(
        spare.total_requests(),
        0,
        "a less preferred mirror was asked"
    );
    // Packages came from the good mirror too.
    assert_eq!(good.count("/fedora/40/x86_64/app-2.0-1.x86_64.rpm"), 1);
    assert_eq!(good.count("/fedora/40/x86_64/libapp-1.0-1.x86_64.rpm"), 1);
    assert!(mm.count("/metalink") >= 1);

    // A second run re-reads the metalink and repomd.xml, nothing else.
    let before = good.total_requests();
    let out = fetch(&wd, true);
    assert_eq!(good.total_requests(), before + 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("2 cached"), "{}", stderr(&out));
}

/// Every mirror serves a repomd.xml the metalink does not vouch for: the
/// error names the repo, each mirror tried, and what the hashes were. An
/// older repomd.xml named by an alternate is accepted.
#[test]
fn metalink_hash_mismatch_is_refused_and_alternates_accepted() {
    let t = tempfile::tempdir().unwrap();
    let repomd_a = repo(&t.path().join("m/a"), &specs("2.0"));
    let repomd_b = repo(&t.path().join("m/b"), &specs("1.0"));
    let server = Server::start(&t.path().join("m"));
    let published = "f".repeat(64);
    let urls = [
        (server.url("a/repodata/repomd.xml").to_string(), 100),
        (server.url("b/repodata/repomd.xml").to_string(), 90),
    ];
    let lists = t.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(
        lists.join("bad.xml"),
        metalink(&[("sha256", published.clone())], &[], &urls),
    )
    .unwrap();
    // A file:// metalink works too.
    let wd = workdir(
        t.path(),
        &format!(
            "[fedora]\nmetalink=file://{}\n",
            lists.join("bad.xml").display()
        ),
    );
    let out = fetch(&wd, false);
    let err = stderr(&out);
    eprintln!("{err}");
    assert!(err.contains("loading metadata of repo fedora"), "{err}");
    assert!(err.contains("fedora.repo"), "{err}");
    assert!(err.contains("2 tried"), "{err}");
    for (u, _) in &urls {
        assert!(err.contains(u.as_str()), "{u} not named: {err}");
    }
    assert!(
        err.contains("matches none of the metalink's hashes"),
        "{err}"
    );
    assert!(
        err.contains(&format!("sha256:{}", sha256_hex(&repomd_a))),
        "{err}"
    );
    assert!(err.contains(&format!("sha256:{published}")), "{err}");
    assert!(err.contains("skip_if_unavailable"), "{err}");
    // Nothing was cached from a mirror that failed the check.
    assert!(!wd.join("cache/repodata/fedora/repomd.xml").exists());

    // Mirror b lags behind: its repomd.xml is an alternate. The first mirror
    // still fails the check; b is used.
    std::fs::write(
        lists.join("bad.xml"),
        metalink(
            &[("sha256", published)],
            &[vec![
                ("sha1", "0".repeat(40)),
                (
                    "sha512",
                    cosa::util::digest::reader(&repomd_b[..], "sha512")
                        .unwrap()
                        .0,
                ),
            ]],
            &urls,
        ),
    )
    .unwrap();
    assert_eq!(resolved(&wd), ["app-1.0-1.x86_64", "libapp-1.0-1.x86_64"]);
}

/// A mirrorlist (plain list of base URLs) with a dead mirror first, and a
/// mirrorlist URL that answers with a metalink.
#[test]
fn mirrorlist_falls_back_and_may_be_a_metalink() {
    let t = tempfile::tempdir().unwrap();
    let repomd = repo(&t.path().join("m/os"), &specs("3.0"));
    let server = Server::start(&t.path().join("m"));
    let dead = format!("http://127.0.0.1:{}/os/", dead_port());
    let lists = t.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(
        lists.join("mirrorlist"),
        format!(
            "# mirrors for fedora 40\n\n{dead}\n   {}\nrsync://skipped.invalid/os/\n",
            server.url("os")
        ),
    )
    .unwrap();
    std::fs::write(
        lists.join("ml"),
        metalink(
            &[("sha256", sha256_hex(&repomd))],
            &[],
            &[
                (format!("{dead}repodata/repomd.xml"), 100),
                (server.url("os/repodata/repomd.xml").to_string(), 99),
            ],
        ),
    )
    .unwrap();
    let lists_server = Server::start(&lists);
    let wd = workdir(
        t.path(),
        &format!("[fedora]\nmirrorlist={}\n", lists_server.url("mirrorlist")),
    );
    let out = fetch(&wd, true);
    let err = stderr(&out);
    assert!(err.contains(&dead) && err.contains("using mirror"), "{err}");
    assert_eq!(server.count("/os/app-3.0-1.x86_64.rpm"), 1);

    // The same URL now serves a metalink: read as one, hashes checked.
    std::fs::copy(lists.join("ml"), lists.join("mirrorlist")).unwrap();
    assert_eq!(resolved(&wd), ["app-3.0-1.x86_64", "libapp-1.0-1.x86_64"]);
    std::fs::write(
        lists.join("mirrorlist"),
        metalink(
            &[("sha256", "0".repeat(64))],
            &[],
            &[(server.url("os/repodata/repomd.xml").to_string(), 99)],
        ),
    )
    .unwrap();
    let err = stderr(&fetch(&wd, false));
    assert!(
        err.contains("matches none of the metalink's hashes"),
        "{err}"
    );

    // A mirrorlist that cannot be fetched, with no baseurl to fall back on.
    std::fs::remove_file(lists.join("mirrorlist")).unwrap();
    let err = stderr(&fetch(&wd, false));
    assert!(
        err.contains("reading its mirrorlist") && err.contains("404"),
        "{err}"
    );
}

/// `gpg --armor --detach-sign` of `file` with `key`.
fn sign(key: &Key, file: &Path) -> Vec<u8> {
    let home = tempfile::tempdir().unwrap();
    let secret = home.path().join("secret.asc");
    std::fs::write(&secret, &key.secret).unwrap();
    gpg(home.path(), &["--import", secret.to_str().unwrap()]);
    let sig = gpg(
        home.path(),
        &[
            "--armor",
            "--detach-sign",
            "--output",
            "-",
            file.to_str().unwrap(),
        ],
    );
    let _ = std::process::Command::new("gpgconf")
        .env("GNUPGHOME", home.path())
        .args(["--kill", "gpg-agent"])
        .status();
    sig
}

/// gpg's own verdict on `sig` over `file` with only `public` known.
fn gpg_verifies(public: &[u8], sig: &Path, file: &Path) -> bool {
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("key.asc");
    std::fs::write(&key, public).unwrap();
    gpg(home.path(), &["--import", key.to_str().unwrap()]);
    let ok = std::process::Command::new("gpg")
        .env("GNUPGHOME", home.path())
        .args(["--batch", "--verify"])
        .arg(sig)
        .arg(file)
        .output()
        .unwrap()
        .status
        .success();
    let _ = std::process::Command::new("gpgconf")
        .env("GNUPGHOME", home.path())
        .args(["--kill", "gpg-agent"])
        .status();
    ok
}

#[test]
fn repo_gpgcheck_good_bad_and_missing_signatures() {
    let (good, other) = keys();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("m/os");
    repo(&dir, &specs("4.0"));
    let repomd = dir.join("repodata/repomd.xml");
    let asc = dir.join("repodata/repomd.xml.asc");
    std::fs::write(t.path().join("m/RPM-GPG-KEY-good"), &good.public).unwrap();
    let server = Server::start(&t.path().join("m"));
    let wd = workdir(
        t.path(),
        &format!(
            "[fedora]\nbaseurl={}\nrepo_gpgcheck=1\ngpgcheck=0\ngpgkey={}\n",
            server.url("os/"),
            server.url("RPM-GPG-KEY-good")
        ),
    );

    // Good: gpg agrees, and so does cosa.
    std::fs::write(&asc, sign(good, &repomd)).unwrap();
    assert!(gpg_verifies(&good.public, &asc, &repomd));
    assert_eq!(resolved(&wd), ["app-4.0-1.x86_64", "libapp-1.0-1.x86_64"]);
    assert_eq!(server.count("/os/repodata/repomd.xml.asc"), 1);

    // Signed by a key the repo does not list.
    std::fs::write(&asc, sign(other, &repomd)).unwrap();
    assert!(!gpg_verifies(&good.public, &asc, &repomd));
    let err = stderr(&fetch(&wd, false));
    eprintln!("{err}");
    assert!(
        err.contains("repo_gpgcheck") && err.contains("not a good signature"),
        "{err}"
    );
    assert!(
        err.contains("RPM-GPG-KEY-good") && err.contains("fedora"),
        "{err}"
    );

    // Signed by the right key, but repomd.xml changed since.
    std::fs::write(&asc, sign(good, &repomd)).unwrap();
    let mut text = std::fs::read(&repomd).unwrap();
    text.extend_from_slice(b"\n<!-- changed -->\n");
    std::fs::write(&repomd, &text).unwrap();
    assert!(!gpg_verifies(&good.public, &asc, &repomd));
    let err = stderr(&fetch(&wd, false));
    assert!(err.contains("not a good signature"), "{err}");

    // No signature at all.
    std::fs::remove_file(&asc).unwrap();
    let err = stderr(&fetch(&wd, false));
    assert!(
        err.contains("no signature for repomd.xml") && err.contains("404"),
        "{err}"
    );

    // repo_gpgcheck without a key says what to do.
    let cfg = t.path().join("config/fedora.repo");
    std::fs::write(
        &cfg,
        format!("[fedora]\nbaseurl={}\nrepo_gpgcheck=1\n", server.url("os/")),
    )
    .unwrap();
    let err = stderr(&fetch(&wd, false));
    assert!(err.contains("repo_gpgcheck enabled but no gpgkey"), "{err}");
}
