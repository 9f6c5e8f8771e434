//! Downloads against a real HTTP server on 127.0.0.1 (and file:// URLs):
//! parallelism, retries, truncation, digests, mirror fallthrough, the cache.

use std::path::Path;

use cosa::rpm::PackageMeta;
use cosa::rpm::download::{Checksum, Item, cache_path, fetch_packages};
use cosa_testkit::download::*;
use cosa_testkit::fixture::{FileSpec, PkgSpec, RepoCompression, make_repo};

/// A file of `len` bytes that differs per `seed`.
fn content(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ seed.wrapping_mul(7919)) as u8)
        .collect()
}

fn item_for(name: &str, urls: Vec<url::Url>, dest: &Path, data: &[u8]) -> Item {
    Item {
        name: name.into(),
        urls,
        dest: dest.to_path_buf(),
        checksum: Some(Checksum::new("sha256", &sha256_hex(data))),
        size: Some(data.len() as u64),
    }
}

/// No stray temp file and no file at `dest` after a failure.
fn assert_nothing_left(dir: &Path) {
    let left = files_under(dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn parallel_fetch_of_many_files_http_and_file() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = Server::start(src.path());
    let mut items = vec![];
    let mut want = vec![];
    for n in 0..40 {
        let data = content(n, 1000 + n * 997);
        let name = format!("f{n}.bin");
        std::fs::write(src.path().join(&name), &data).unwrap();
        let url = if n % 4 == 0 {
            file_url(src.path()).join(&name).unwrap()
        } else {
            server.url(&name)
        };
        let dest = out.path().join("sub").join(&name);
        items.push(item_for(&name, vec![url], &dest, &data));
        want.push((dest, data));
    }
    let dl = fast_downloader(8);
    dl.fetch_all("Fetching test files", items).unwrap();
    for (dest, data) in &want {
        assert_eq!(&std::fs::read(dest).unwrap(), data, "{}", dest.display());
    }
    assert_eq!(server.total_requests(), 30);
    for n in (1..40).filter(|n| n % 4 != 0) {
        assert_eq!(server.count(&format!("/f{n}.bin")), 1);
    }
    // Only the destinations: no temp files.
    assert_eq!(files_under(out.path()).len(), 40);
}

#[test]
fn retry_after_5xx_succeeds() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = Server::start(src.path());
    let data = content(1, 5000);
    std::fs::write(src.path().join("a.bin"), &data).unwrap();
    server.faults(|f| f.fail_first.insert("/a.bin".into(), 2));
    let dest = out.path().join("a.bin");
    let dl = fast_downloader(2);
    dl.fetch(&item_for("a", vec![server.url("a.bin")], &dest, &data))
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(server.count("/a.bin"), 3);
}

#[test]
fn persistent_5xx_gives_up_after_the_attempts() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = Server::start(src.path());
    let data = content(2, 100);
    std::fs::write(src.path().join("a.bin"), &data).unwrap();
    server.faults(|f| f.fail_first.insert("/a.bin".into(), 100));
    let dl = fast_downloader(1);
    let e = dl
        .fetch(&item_for(
            "thing-a",
            vec![server.url("a.bin")],
            &out.path().join("a.bin"),
            &data,
        ))
        .unwrap_err();
    let msg = format!("{e:#}");
    eprintln!("{msg}");
    assert!(msg.contains("thing-a") && msg.contains("500"), "{msg}");
    assert!(msg.contains("after 3 attempts"), "{msg}");
    assert_eq!(server.count("/a.bin"), 3);
    assert_nothing_left(out.path());
}

#[test]
fn truncated_body_is_never_kept_and_is_reported() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = Server::start(src.path());
    let data = content(3, 20_000);
    std::fs::write(src.path().join("cut.bin"), &data).unwrap();
    std::fs::write(src.path().join("cut2.bin"), &data).unwrap();
    server.faults(|f| {
        f.truncate.insert("/cut.bin".into());
        f.truncate_unannounced.insert("/cut2.bin".into());
    });
    let dl = fast_downloader(2);
    let items = vec![
        item_for(
            "cut-pkg",
            vec![server.url("cut.bin")],
            &out.path().join("cut.bin"),
            &data,
        ),
        item_for(
            "cut2-pkg",
            vec![server.url("cut2.bin")],
            &out.path().join("cut2.bin"),
            &data,
        ),
    ];
    let msg = format!("{:#}", dl.fetch_all("Fetching", items).unwrap_err());
    eprintln!("{msg}");
    // Both failures are in the one error, each with its item and URL.
    assert!(msg.contains("2 of 2 failed"), "{msg}");
    assert!(
        msg.contains("cut-pkg") && msg.contains(server.url("cut.bin").as_str()),
        "{msg}"
    );
    assert!(
        msg.contains("cut2-pkg") && msg.contains(server.url("cut2.bin").as_str()),
        "{msg}"
    );
    assert!(msg.contains("cut short"), "{msg}");
    assert!(
        msg.contains("expected 20000 bytes, got 10000"),
        "size named: {msg}"
    );
    // Truncation counts as passing trouble: retried.
    assert_eq!(server.count("/cut.bin"), 3);
    assert_eq!(server.count("/cut2.bin"), 3);
    assert_nothing_left(out.path());
}

#[test]
fn wrong_size_without_digest_is_refused() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let data = content(4, 300);
    std::fs::write(src.path().join("x"), &data).unwrap();
    let dl = fast_downloader(1);
    let item = Item {
        name: "x".into(),
        urls: vec![file_url(src.path()).join("x").unwrap()],
        dest: out.path().join("x"),
        checksum: None,
        size: Some(299),
    };
    let msg = format!("{:#}", dl.fetch(&item).unwrap_err());
    assert!(msg.contains("expected 299 bytes, got 300"), "{msg}");
    assert_nothing_left(out.path());
}

/// A repo of `n` generated packages under `dir/<sub>`, with their metadata.
fn make_pkgs(dir: &Path, repo_id: &str, n: usize) -> Vec<PackageMeta> {
    let specs: Vec<PkgSpec> = (0..n)
        .map(|i| {
            PkgSpec::new(&format!("pkg{i}"), "1.0")
                .compression("none")
                .file(FileSpec::file(
                    &format!("/usr/share/pkg{i}/data"),
                    content(i, 4096 + i),
                ))
        })
        .collect();
    let paths = make_repo(dir, &specs, RepoCompression::Gz).unwrap();
    specs
        .iter()
        .zip(&paths)
        .map(|(s, p)| meta_for(s, p, repo_id, &s.filename()))
        .collect()
}

#[test]
fn checksum_mismatch_names_the_package() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let pkgs = make_pkgs(&root.path().join("repo"), "r1", 2);
    let server = Server::start(root.path());
    let bad = format!("/repo/{}", pkgs[1].location);
    server.faults(|f| f.corrupt.insert(bad.clone()));
    let repo = loaded_repo("r1", vec![server.url("repo")]);
    let dl = fast_downloader(2);
    let e = fetch_packages(&dl, cache.path(), &[repo], &pkgs).unwrap_err();
    let msg = format!("{e:#}");
    eprintln!("{msg}");
    assert!(msg.contains("pkg1-1.0-1.x86_64"), "{msg}");
    assert!(msg.contains(server.url(&bad).as_str()), "{msg}");
    assert!(
        msg.contains(&format!("expected sha256:{}", pkgs[1].checksum)),
        "{msg}"
    );
    assert!(msg.contains("got sha256:"), "{msg}");
    assert!(!msg.contains("pkg0"), "only the bad one fails: {msg}");
    // Wrong content is not retried on the same URL.
    assert_eq!(server.count(&bad), 1);
    assert!(!cache_path(cache.path(), &pkgs[1]).exists());
    assert!(cache_path(cache.path(), &pkgs[0]).exists());
    // Only the good package is in the cache, no temp files.
    assert_eq!(files_under(&cache.path().join("pkgs")).len(), 1);
}

#[test]
fn not_found_falls_through_to_the_second_baseurl_without_retry() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let pkgs = make_pkgs(&root.path().join("good"), "r1", 1);
    let server = Server::start(root.path());
    let repo = loaded_repo("r1", vec![server.url("missing"), server.url("good")]);
    let dl = fast_downloader(1);
    let paths = fetch_packages(&dl, cache.path(), &[repo], &pkgs).unwrap();
    let loc = &pkgs[0].location;
    assert_eq!(server.count(&format!("/missing/{loc}")), 1);
    assert_eq!(server.count(&format!("/good/{loc}")), 1);
    let data = std::fs::read(&paths[0]).unwrap();
    assert_eq!(sha256_hex(&data), pkgs[0].checksum);
}

#[test]
fn every_url_failing_lists_each_url() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let pkgs = make_pkgs(&root.path().join("good"), "r1", 1);
    let server = Server::start(root.path());
    let loc = &pkgs[0].location;
    server.faults(|f| f.not_found.insert(format!("/good/{loc}")));
    let repo = loaded_repo(
        "r1",
        vec![
            server.url("missing"),
            file_url(&root.path().join("nowhere")),
            server.url("good"),
        ],
    );
    let dl = fast_downloader(1);
    let msg = format!(
        "{:#}",
        fetch_packages(&dl, cache.path(), &[repo], &pkgs).unwrap_err()
    );
    assert!(msg.contains("pkg0-1.0-1.x86_64"), "{msg}");
    assert!(msg.contains("every URL failed"), "{msg}");
    assert!(msg.contains(&format!("/missing/{loc}: HTTP 404")), "{msg}");
    assert!(msg.contains(&format!("/good/{loc}: HTTP 404")), "{msg}");
    assert!(msg.contains("nowhere"), "{msg}");
}

#[test]
fn cache_hit_does_not_refetch_and_order_is_kept() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let pkgs = make_pkgs(&root.path().join("repo"), "r1", 5);
    let server = Server::start(root.path());
    let repo = loaded_repo("r1", vec![server.url("repo")]);
    let dl = fast_downloader(3);
    // Fetch two first, then all five in another order.
    let first =
        fetch_packages(&dl, cache.path(), std::slice::from_ref(&repo), &pkgs[1..3]).unwrap();
    assert_eq!(server.total_requests(), 2);
    let order: Vec<PackageMeta> = [4, 2, 0, 1, 3].iter().map(|&i| pkgs[i].clone()).collect();
    let paths = fetch_packages(&dl, cache.path(), std::slice::from_ref(&repo), &order).unwrap();
    assert_eq!(
        server.total_requests(),
        5,
        "cached ones are not fetched again"
    );
    assert_eq!(paths[3], first[0]);
    assert_eq!(paths[1], first[1]);
    for (p, m) in paths.iter().zip(&order) {
        assert_eq!(*p, cache_path(cache.path(), m));
        assert_eq!(sha256_hex(&std::fs::read(p).unwrap()), m.checksum);
    }
    // A third run fetches nothing at all.
    fetch_packages(&dl, cache.path(), &[repo], &order).unwrap();
    assert_eq!(server.total_requests(), 5);
}

#[test]
fn same_nevra_from_two_repos_does_not_collide() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let spec_a = PkgSpec::new("same", "1.0").file(FileSpec::file("/a", "from repo a"));
    let spec_b = PkgSpec::new("same", "1.0").file(FileSpec::file("/b", "from repo b"));
    let pa = make_repo(
        &root.path().join("a"),
        std::slice::from_ref(&spec_a),
        RepoCompression::Gz,
    )
    .unwrap();
    let pb = make_repo(
        &root.path().join("b"),
        std::slice::from_ref(&spec_b),
        RepoCompression::Gz,
    )
    .unwrap();
    let ma = meta_for(&spec_a, &pa[0], "a", &spec_a.filename());
    let mb = meta_for(&spec_b, &pb[0], "b", &spec_b.filename());
    let repos = [
        loaded_repo("a", vec![file_url(&root.path().join("a"))]),
        loaded_repo("b", vec![file_url(&root.path().join("b"))]),
    ];
    let dl = fast_downloader(2);
    let paths = fetch_packages(&dl, cache.path(), &repos, &[ma.clone(), mb.clone()]).unwrap();
    assert_ne!(paths[0], paths[1]);
    assert_eq!(sha256_hex(&std::fs::read(&paths[0]).unwrap()), ma.checksum);
    assert_eq!(sha256_hex(&std::fs::read(&paths[1]).unwrap()), mb.checksum);
}

#[test]
fn unknown_repo_and_bad_checksum_type_are_errors() {
    let cache = tempfile::tempdir().unwrap();
    let dl = fast_downloader(1);
    let mut m = PackageMeta {
        name: "x".into(),
        version: "1".into(),
        release: "1".into(),
        arch: "noarch".into(),
        checksum_type: "sha256".into(),
        checksum: "00".repeat(32),
        location: "x.rpm".into(),
        repo: "nope".into(),
        ..Default::default()
    };
    let repo = loaded_repo("r", vec![file_url(cache.path())]);
    let msg = format!(
        "{:#}",
        fetch_packages(&dl, cache.path(), std::slice::from_ref(&repo), &[m.clone()]).unwrap_err()
    );
    assert!(
        msg.contains("x-1-1.noarch") && msg.contains("nope"),
        "{msg}"
    );
    m.repo = "r".into();
    m.checksum_type = "md5".into();
    let msg = format!(
        "{:#}",
        fetch_packages(&dl, cache.path(), &[repo], &[m]).unwrap_err()
    );
    assert!(msg.contains("md5") && msg.contains("x-1-1.noarch"), "{msg}");
}
