//! Progress for long work: an indicatif bar on a terminal, and a plain line
//! at most once a second (and at the end) otherwise, so CI logs stay readable.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A counter of done work units (items or bytes) shown on stderr.
pub struct Progress {
    what: String,
    total: u64,
    bar: Option<ProgressBar>,
    plain: Mutex<(Instant, u64)>,
    bytes: bool,
}

impl Progress {
    /// `what` names the step (e.g. "Downloading packages"); `bytes` formats units as sizes.
    pub fn new(what: &str, total: u64, bytes: bool) -> Progress {
        let bar = if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            let pb = ProgressBar::new(total);
            let tpl = if bytes {
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
            } else {
                "{msg} [{bar:30}] {pos}/{len} eta {eta}"
            };
            pb.set_style(
                ProgressStyle::with_template(tpl)
                    .unwrap()
                    .progress_chars("=> "),
            );
            pb.set_message(what.to_string());
            Some(pb)
        } else {
            None
        };
        Progress {
            what: what.to_string(),
            total,
            bar,
            plain: Mutex::new((Instant::now() - Duration::from_secs(2), 0)),
            bytes,
        }
    }

    /// Add `n` done units.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let mut p = self.plain.lock().unwrap();
        p.1 += n;
        if p.0.elapsed() >= Duration::from_secs(1) && p.1 < self.total {
            p.0 = Instant::now();
            eprintln!("{}: {}", self.what, self.fmt(p.1));
        }
    }

    fn fmt(&self, done: u64) -> String {
        if self.bytes {
            format!(
                "{} / {}",
                indicatif::HumanBytes(done),
                indicatif::HumanBytes(self.total)
            )
        } else {
            format!("{done}/{}", self.total)
        }
    }

    /// Finish with a closing line such as "done in 2.1s".
    pub fn finish(&self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{}: {msg}", self.what);
    }
}
