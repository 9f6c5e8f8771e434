//! A read-only HTTP server of one directory on 127.0.0.1, for a test
//! machine to pull from: `ostree.upgrade` serves the working directory's
//! archive repository (`tmp/repo`) and the machine reaches it at
//! [`HOST_FROM_GUEST`] (QEMU's user network maps its gateway to the host's
//! loopback). GET and HEAD of regular files only; no directory listings,
//! no path outside the directory, one request per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

/// The host as a machine on QEMU's user network sees it.
pub const HOST_FROM_GUEST: &str = "10.0.2.2";

/// A running server; stops when dropped.
pub struct DirServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl DirServer {
    /// Serve `root` on a free port of 127.0.0.1.
    pub fn start(root: &Path) -> Result<DirServer> {
        let root = root
            .canonicalize()
            .with_context(|| format!("opening {} to serve it", root.display()))?;
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding a port of 127.0.0.1 to serve on")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (s, n) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, n) = (root.clone(), n.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, &root, &n);
                });
            }
        });
        Ok(DirServer {
            port,
            stop,
            served,
            thread: Some(thread),
        })
    }

    /// The URL a QEMU guest on the user network uses.
    pub fn guest_url(&self) -> String {
        format!("http://{HOST_FROM_GUEST}:{}/", self.port)
    }

    /// Files served so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for DirServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The file `target` (a request path) names under `root`, if it is a
/// regular file inside it.
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let full = root.join(rel).canonicalize().ok()?;
    (full.starts_with(root) && full.is_file()).then_some(full)
}

/// Answer one request, counting the files sent in `served`.
fn handle(conn: TcpStream, root: &Path, served: &AtomicUsize) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // The headers: read and ignored.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut out = conn;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return respond(&mut out, "405 Method Not Allowed", 0);
    }
    let Some(file) = resolve(root, target) else {
        return respond(&mut out, "404 Not Found", 0);
    };
    let mut f = std::fs::File::open(&file)?;
    let len = f.metadata()?.len();
    respond(&mut out, "200 OK", len)?;
    if method == "GET" {
        std::io::copy(&mut (&mut f).take(len), &mut out)?;
        served.fetch_add(1, Ordering::SeqCst);
    }
    out.flush()
}

fn respond(out: &mut TcpStream, status: &str, len: u64) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(port: u16, path: &str) -> String {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn serves_files_under_its_root_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("repo");
        std::fs::create_dir_all(root.join("refs/heads")).unwrap();
        std::fs::write(root.join("config"), "[core]\n").unwrap();
        std::fs::write(t.path().join("secret"), "no").unwrap();
        std::os::unix::fs::symlink("../secret", root.join("link")).unwrap();
        let s = DirServer::start(&root).unwrap();
        let ok = get(s.port, "/config");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\n[core]\n"), "{ok}");
        for bad in [
            "/../secret",
            "/link",
            "/refs/heads",
            "/nothing",
            "/%2e%2e/secret",
        ] {
            let r = get(s.port, bad);
            assert!(r.starts_with("HTTP/1.1 404"), "{bad}: {r}");
        }
        assert_eq!(s.served(), 1);
        assert_eq!(s.guest_url(), format!("http://10.0.2.2:{}/", s.port));
        let port = s.port;
        drop(s);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
