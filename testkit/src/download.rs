//! Helpers for the download tests: a tiny HTTP/1.1 server on 127.0.0.1 that
//! serves a directory and can misbehave on purpose, and PackageMeta values
//! made by hand for generated packages.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::fixture::PkgSpec;
use cosa::rpm::PackageMeta;
use cosa::rpm::repodata::LoadedRepo;
use sha2::Digest;

/// Misbehaviours, keyed by request path (e.g. `/repo/a.rpm`).
#[derive(Default)]
pub struct Faults {
    /// Answer 500 to the first N requests of the path.
    pub fail_first: HashMap<String, usize>,
    /// Announce the full Content-Length, send half the body, close.
    pub truncate: HashSet<String>,
    /// Send half the body with no Content-Length (close marks the end).
    pub truncate_unannounced: HashSet<String>,
    /// Answer 404 even when the file exists.
    pub not_found: HashSet<String>,
    /// Serve the file with one byte changed (same size, wrong digest).
    pub corrupt: HashSet<String>,
}

#[derive(Default)]
struct State {
    counts: HashMap<String, usize>,
    faults: Faults,
}

/// A file server on 127.0.0.1 with a thread per connection.
pub struct Server {
    pub port: u16,
    root: PathBuf,
    state: Arc<Mutex<State>>,
}

impl Server {
    pub fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let (st, rt) = (state.clone(), root.to_path_buf());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (st, rt) = (st.clone(), rt.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &rt, &st);
                });
            }
        });
        Server {
            port,
            root: root.to_path_buf(),
            state,
        }
    }

    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        ))
        .unwrap()
    }

    /// Requests seen for `path` (with a leading `/`).
    pub fn count(&self, path: &str) -> usize {
        let s = self.state.lock().unwrap();
        s.counts.get(path).copied().unwrap_or(0)
    }

    pub fn total_requests(&self) -> usize {
        self.state.lock().unwrap().counts.values().sum()
    }

    pub fn faults<R>(&self, f: impl FnOnce(&mut Faults) -> R) -> R {
        f(&mut self.state.lock().unwrap().faults)
    }
}

fn serve(conn: TcpStream, root: &Path, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // The query string (a metalink's `?repo=...&arch=...`) does not choose
    // the file, unless a file is named with it (one metalink per repo).
    let target = line.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut out = conn;
    let (n, fail_first, truncate, unannounced, not_found, corrupt) = {
        let mut s = state.lock().unwrap();
        let c = s.counts.entry(path.clone()).or_insert(0);
        *c += 1;
        let n = *c;
        let f = &s.faults;
        (
            n,
            f.fail_first.get(&path).copied().unwrap_or(0),
            f.truncate.contains(&path),
            f.truncate_unannounced.contains(&path),
            f.not_found.contains(&path),
            f.corrupt.contains(&path),
        )
    };
    if n <= fail_first {
        return respond(&mut out, "500 Internal Server Error", b"boom", true);
    }
    let with_query = root.join(target.trim_start_matches('/'));
    let file = if target.contains('?') && with_query.is_file() {
        with_query
    } else {
        root.join(path.trim_start_matches('/'))
    };
    let body = match std::fs::read(&file) {
        Ok(b) if !not_found => b,
        _ => return respond(&mut out, "404 Not Found", b"not found", true),
    };
    if truncate {
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        out.write_all(&body[..body.len() / 2])?;
        return out.flush();
    }
    if unannounced {
        write!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
        out.write_all(&body[..body.len() / 2])?;
        return out.flush();
    }
    let mut body = body;
    if corrupt {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    respond(&mut out, "200 OK", &body, true)
}

fn respond(out: &mut TcpStream, status: &str, body: &[u8], length: bool) -> std::io::Result<()> {
    write!(out, "HTTP/1.1 {status}\r\n")?;
    if length {
        write!(out, "Content-Length: {}\r\n", body.len())?;
    }
    write!(out, "Connection: close\r\n\r\n")?;
    out.write_all(body)?;
    out.flush()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// The repodata entry of a package built from `spec` at `path`, in repo `repo`,
/// with `location` relative to the repo's base.
pub fn meta_for(spec: &PkgSpec, path: &Path, repo: &str, location: &str) -> PackageMeta {
    let data = std::fs::read(path).unwrap();
    PackageMeta {
        name: spec.name.clone(),
        epoch: spec.epoch,
        version: spec.version.clone(),
        release: spec.release.clone(),
        arch: spec.arch.clone(),
        checksum_type: "sha256".into(),
        checksum: sha256_hex(&data),
        location: location.into(),
        size_package: data.len() as u64,
        repo: repo.into(),
        ..Default::default()
    }
}

pub fn loaded_repo(id: &str, baseurls: Vec<url::Url>) -> LoadedRepo {
    LoadedRepo {
        id: id.into(),
        priority: 99,
        cost: 1000,
        baseurls,
        gpgcheck: false,
        gpgkeys: vec![],
        revision: None,
        timestamp: None,
        packages: vec![],
        metadata: None,
    }
}

pub fn file_url(p: &Path) -> url::Url {
    url::Url::from_directory_path(p).unwrap()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A downloader that retries fast (tests must stay quick).
pub fn fast_downloader(jobs: usize) -> cosa::rpm::download::Downloader {
    let mut dl = cosa::rpm::download::Downloader::new(jobs).unwrap();
    dl.backoff = std::time::Duration::from_millis(10);
    dl
}
