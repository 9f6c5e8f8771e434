//! A seeded generator of random RPM repositories and requests, mixing every
//! feature the solver claims: versioned provides and requires with every
//! operator, epochs, tildes and carets, file dependencies (in primary.xml
//! and only in filelists), rich dependencies (and, or, if/else, with,
//! without, unless, nested), conflicts, obsoletes (of names, of provides,
//! of the package's own older versions, of a requested name), weak
//! dependencies (Recommends, Supplements, Suggests, Enhances), several
//! versions per name, noarch, x86_64 and i686 builds, an installonly kernel,
//! excludes, repo priorities and two repos carrying the same names.
//!
//! A case is plain data (serializable), so a failing one can be written out,
//! shrunk and turned into a regression test.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::fixture::{FileSpec, PkgSpec};

/// One package of a generated repository.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenPkg {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub provides: Vec<String>,
    pub requires: Vec<String>,
    pub conflicts: Vec<String>,
    pub obsoletes: Vec<String>,
    pub recommends: Vec<String>,
    pub suggests: Vec<String>,
    pub supplements: Vec<String>,
    pub enhances: Vec<String>,
    pub files: Vec<String>,
}

impl GenPkg {
    pub fn spec(&self) -> PkgSpec {
        let mut p = PkgSpec::new(&self.name, &self.version)
            .release(&self.release)
            .arch(&self.arch)
            .epoch(self.epoch)
            .compression("none");
        p.provides = self.provides.clone();
        p.requires = self.requires.clone();
        p.conflicts = self.conflicts.clone();
        p.obsoletes = self.obsoletes.clone();
        p.recommends = self.recommends.clone();
        p.suggests = self.suggests.clone();
        p.supplements = self.supplements.clone();
        p.enhances = self.enhances.clone();
        p.files = self
            .files
            .iter()
            .map(|f| FileSpec::file(f, self.name.as_bytes()))
            .collect();
        p
    }

    /// Every dependency list, for shrinking.
    pub fn dep_lists_mut(&mut self) -> [&mut Vec<String>; 8] {
        [
            &mut self.provides,
            &mut self.requires,
            &mut self.conflicts,
            &mut self.obsoletes,
            &mut self.recommends,
            &mut self.suggests,
            &mut self.supplements,
            &mut self.enhances,
        ]
    }
}

/// One repository of a case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenRepo {
    pub id: String,
    pub priority: u32,
    pub pkgs: Vec<GenPkg>,
}

/// A repository set and a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Case {
    pub seed: u64,
    pub repos: Vec<GenRepo>,
    pub specs: Vec<String>,
    pub weak: bool,
    pub exclude: Vec<String>,
}

const VERSIONS: &[&str] = &[
    "1.0", "1.0~rc1", "1.0^git2", "1.0.1", "1.2", "2.0", "2.0~beta", "2.0^p1", "2.10", "10",
];
const RELEASES: &[&str] = &["1", "2", "1.fc40", "10"];
const OPS: &[&str] = &["<", "<=", "=", ">=", ">"];
const CAPS: &[&str] = &[
    "cap-a",
    "cap-b",
    "cap-c",
    "libfoo.so.1()(64bit)",
    "webserver",
];

struct Gen {
    rng: StdRng,
    names: Vec<String>,
}

impl Gen {
    fn pick<'s>(&mut self, v: &'s [&'s str]) -> &'s str {
        v.choose(&mut self.rng).expect("non-empty")
    }

    fn name(&mut self) -> String {
        self.names.choose(&mut self.rng).expect("names").clone()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn evr(&mut self) -> String {
        let v = self.pick(VERSIONS).to_string();
        match self.rng.gen_range(0..10) {
            0 => format!("1:{v}"),
            1..=3 => format!("{v}-{}", self.pick(RELEASES)),
            _ => v,
        }
    }

    /// A simple dependency: a name, a capability or a file, maybe versioned.
    fn simple(&mut self) -> String {
        let base = match self.rng.gen_range(0..10) {
            0..=4 => self.name(),
            5..=7 => self.pick(CAPS).to_string(),
            8 => format!("/usr/bin/{}", self.name()),
            _ => format!("/opt/{}/data", self.name()),
        };
        if !base.starts_with('/') && self.chance(0.3) {
            let op = self.pick(OPS);
            let evr = self.evr();
            format!("{base} {op} {evr}")
        } else {
            base
        }
    }

    /// A rich dependency, nested up to `depth`.
    fn rich(&mut self, depth: u32) -> String {
        let leaf = |g: &mut Gen| {
            if depth > 0 && g.chance(0.25) {
                g.rich(depth - 1)
            } else {
                g.simple()
            }
        };
        let a = leaf(self);
        let b = leaf(self);
        match self.rng.gen_range(0..8) {
            0 => format!("({a} and {b})"),
            1 => format!("({a} or {b})"),
            2 => format!("({a} if {b})"),
            3 => {
                let c = leaf(self);
                format!("({a} if {b} else {c})")
            }
            4 => format!("({a} unless {b})"),
            5 => {
                let c = leaf(self);
                format!("({a} unless {b} else {c})")
            }
            // `with`/`without` need both sides to name the same package kind.
            6 => {
                let n = self.name();
                format!("({n} with {n} >= {})", self.pick(VERSIONS))
            }
            _ => {
                let n = self.name();
                format!("({n} without {n} < {})", self.pick(VERSIONS))
            }
        }
    }

    fn dep(&mut self, rich_p: f64) -> String {
        if self.chance(rich_p) {
            self.rich(2)
        } else {
            self.simple()
        }
    }

    fn deps(&mut self, max: usize, p_each: f64, rich_p: f64) -> Vec<String> {
        (0..max)
            .filter_map(|_| self.chance(p_each).then(|| self.dep(rich_p)))
            .collect()
    }

    fn package(&mut self, name: &str, version: &str, arch: &str) -> GenPkg {
        let mut p = GenPkg {
            name: name.to_string(),
            epoch: if self.chance(0.1) { 1 } else { 0 },
            version: version.to_string(),
            release: self.pick(RELEASES).to_string(),
            arch: arch.to_string(),
            provides: vec![],
            requires: self.deps(3, 0.3, 0.2),
            conflicts: vec![],
            obsoletes: vec![],
            recommends: vec![],
            suggests: vec![],
            supplements: vec![],
            enhances: vec![],
            files: vec![],
        };
        if self.chance(0.4) {
            let cap = self.pick(CAPS);
            p.provides.push(if self.chance(0.5) {
                format!("{cap} = {}", self.pick(VERSIONS))
            } else {
                cap.to_string()
            });
        }
        if self.chance(0.1) {
            p.conflicts.push(self.simple());
        }
        match self.rng.gen_range(0..20) {
            // Obsoletes another name (maybe one that is requested).
            0 | 1 => {
                let other = self.name();
                p.obsoletes
                    .push(format!("{other} < {}", self.pick(VERSIONS)));
                if self.chance(0.5) {
                    p.provides
                        .push(format!("{other} = {}", self.pick(VERSIONS)));
                }
            }
            // Obsoletes a capability (provides are not obsoleted in RPM).
            2 => p.obsoletes.push(self.pick(CAPS).to_string()),
            // Self-obsoletes across versions.
            3 => p.obsoletes.push(format!("{name} < {version}")),
            4 => p.obsoletes.push(self.name()),
            _ => {}
        }
        p.recommends = self.deps(2, 0.2, 0.3);
        p.suggests = self.deps(1, 0.1, 0.2);
        p.enhances = self.deps(1, 0.1, 0.2);
        if self.chance(0.15) {
            p.supplements.push(if self.chance(0.5) {
                self.name()
            } else {
                self.rich(1)
            });
        }
        if self.chance(0.6) {
            p.files.push(format!("/usr/bin/{name}"));
        }
        if self.chance(0.5) {
            p.files.push(format!("/opt/{name}/data"));
        }
        p
    }
}

/// The case of `seed`.
pub fn generate(seed: u64) -> Case {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        names: Vec::new(),
    };
    let n = g.rng.gen_range(4..=10);
    g.names = (0..n).map(|i| format!("p{i}")).collect();
    let nrepos = if g.chance(0.35) { 2 } else { 1 };
    let mut repos: Vec<GenRepo> = (0..nrepos)
        .map(|i| GenRepo {
            id: ["base", "updates"][i].to_string(),
            priority: if g.chance(0.5) {
                99
            } else {
                g.rng.gen_range(1..=99)
            },
            pkgs: Vec::new(),
        })
        .collect();
    let names = g.names.clone();
    for name in &names {
        let nversions = g.rng.gen_range(1..=3);
        let mut versions: Vec<&str> = VERSIONS.to_vec();
        versions.shuffle(&mut g.rng);
        for version in versions.into_iter().take(nversions) {
            let arches: &[&str] = match g.rng.gen_range(0..10) {
                0..=5 => &["x86_64"],
                6 | 7 => &["noarch"],
                8 => &["x86_64", "i686"],
                _ => &["i686"],
            };
            for arch in arches {
                let p = g.package(name, version, arch);
                let r = g.rng.gen_range(0..nrepos);
                // Sometimes the same build is in both repos.
                if nrepos == 2 && g.chance(0.2) {
                    repos[1 - r].pkgs.push(p.clone());
                }
                repos[r].pkgs.push(p);
            }
        }
    }
    // An installonly kernel in two versions, sometimes pinned by a dependency.
    if g.chance(0.3) {
        for v in ["6.1", "6.2"] {
            let mut k = g.package("kernel", v, "x86_64");
            k.epoch = 0;
            k.provides = vec![
                format!("kernel-core = {v}"),
                "installonlypkg(kernel)".into(),
            ];
            k.requires.clear();
            k.obsoletes.clear();
            repos[0].pkgs.push(k);
        }
        g.names.push("kernel".into());
        if g.chance(0.5) {
            let idx = g.rng.gen_range(0..repos[0].pkgs.len());
            repos[0].pkgs[idx].requires.push("kernel-core = 6.1".into());
        }
    }
    let nspecs = g.rng.gen_range(1..=3);
    let mut specs: Vec<String> = Vec::new();
    for _ in 0..nspecs {
        let spec = match g.rng.gen_range(0..20) {
            0..=12 => g.name(),
            13 | 14 => g.pick(CAPS).to_string(),
            15 => format!("{} >= {}", g.name(), g.pick(VERSIONS)),
            16 => format!("/usr/bin/{}", g.name()),
            17 => format!("{}.i686", g.name()),
            18 => format!("{}-{}", g.name(), g.pick(VERSIONS)),
            _ => "p1*".to_string(),
        };
        if !specs.contains(&spec) {
            specs.push(spec);
        }
    }
    let exclude = if g.chance(0.15) {
        vec![g.name()]
    } else {
        vec![]
    };
    let weak = g.chance(0.5);
    dedup_builds(&mut repos);
    Case {
        seed,
        repos,
        specs,
        weak,
        exclude,
    }
}

/// One file per name-version-release.arch in a repo (the file name has no
/// epoch): later duplicates go.
fn dedup_builds(repos: &mut [GenRepo]) {
    for r in repos {
        let mut seen = std::collections::HashSet::new();
        r.pkgs.retain(|p| {
            seen.insert((
                p.name.clone(),
                p.version.clone(),
                p.release.clone(),
                p.arch.clone(),
            ))
        });
    }
}
