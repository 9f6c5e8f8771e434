//! A small safe binding to libsolv, the solver behind dnf and rpm-ostree.
//!
//! Only what cosa's resolution needs: a pool with RPM semantics, repos and
//! solvables built from our own repodata reader, whatprovides and obsoletes
//! queries, install jobs, and the solver's answer or its problems. The C side
//! (`libsolv_shim.c`) touches libsolv's structs; every decision is made by
//! the caller in Rust.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

use anyhow::{Result, bail};

/// A libsolv string, relation or solvable id.
pub type Id = i32;

#[repr(C)]
struct Queue {
    elements: *mut Id,
    count: c_int,
    alloc: *mut Id,
    left: c_int,
}

#[repr(C)]
struct CPool {
    _opaque: [u8; 0],
}
#[repr(C)]
struct CRepo {
    _opaque: [u8; 0],
}
#[repr(C)]
struct CSolver {
    _opaque: [u8; 0],
}

#[link(name = "solv")]
unsafe extern "C" {
    fn queue_init(q: *mut Queue);
    fn queue_free(q: *mut Queue);
    fn pool_parserpmrichdep(pool: *mut CPool, s: *const c_char) -> Id;
    fn pool_dep2str(pool: *mut CPool, dep: Id) -> *const c_char;
}

unsafe extern "C" {
    fn cosa_pool_new(arch: *const c_char) -> *mut CPool;
    fn cosa_pool_free(pool: *mut CPool);
    fn cosa_repo_new(
        pool: *mut CPool,
        name: *const c_char,
        prio: c_int,
        subprio: c_int,
    ) -> *mut CRepo;
    fn cosa_str(pool: *mut CPool, s: *const c_char, len: c_uint) -> Id;
    fn cosa_rel(pool: *mut CPool, name: Id, evr: Id, flags: c_int) -> Id;
    fn cosa_solvable_new(repo: *mut CRepo, name: Id, evr: Id, arch: Id) -> Id;
    fn cosa_solvable_dep(pool: *mut CPool, p: Id, kind: c_int, dep: Id, marker: Id);
    fn cosa_file_deps(pool: *mut CPool, out: *mut Queue);
    fn cosa_finish_pool(
        pool: *mut CPool,
        excluded: *const Id,
        n: c_int,
        filedeps: *const Id,
        nf: c_int,
    );
    fn cosa_whatprovides(pool: *mut CPool, dep: Id, out: *mut Queue);
    fn cosa_obsoleting(pool: *mut CPool, out: *mut Queue);
    fn cosa_obsoleters(
        pool: *mut CPool,
        targets: *const Id,
        n: c_int,
        candidates: *const Id,
        ncandidates: c_int,
        out: *mut Queue,
    );
    fn cosa_one_of(pool: *mut CPool, ids: *const Id, n: c_int) -> Id;
    fn cosa_solve(
        pool: *mut CPool,
        jobs: *const Id,
        njobs: c_int,
        ignore_weak: c_int,
        nproblems: *mut c_int,
    ) -> *mut CSolver;
    fn cosa_repo_add_rpmmd(
        repo: *mut CRepo,
        repomd: *const c_char,
        repomd_as: *const c_char,
        primary: *const c_char,
        primary_as: *const c_char,
        solv: *mut *mut c_char,
        solv_len: *mut usize,
    ) -> c_int;
    fn cosa_repo_add_solv_file(repo: *mut CRepo, path: *const c_char) -> c_int;
    fn cosa_repo_range(repo: *mut CRepo, start: *mut Id, end: *mut Id);
    fn cosa_solvable_nea(
        pool: *mut CPool,
        p: Id,
        name: *mut *const c_char,
        evr: *mut *const c_char,
        arch: *mut *const c_char,
    );
    fn cosa_pool_errstr(pool: *mut CPool) -> *const c_char;
    fn cosa_write_testcase(solv: *mut CSolver, dir: *const c_char) -> c_int;
    fn cosa_unmet(pool: *mut CPool, set: *const Id, n: c_int, out: *mut Queue);
    fn cosa_solver_installs(solv: *mut CSolver, out: *mut Queue);
    fn cosa_solver_problems(solv: *mut CSolver) -> *mut c_char;
    fn cosa_solver_free(solv: *mut CSolver);
    fn cosa_free(p: *mut c_void);
    fn cosa_prereq_marker() -> Id;
    fn cosa_file_marker() -> Id;
    fn cosa_job_install_one_of() -> Id;
    fn cosa_solvid2str(pool: *mut CPool, p: Id) -> *const c_char;
    fn cosa_rel_flag(which: c_int) -> c_int;
}

/// Relation flags (libsolv's REL_GT, REL_EQ, REL_LT), as the headers define them.
pub fn rel_flags() -> (i32, i32, i32) {
    // SAFETY: pure functions returning constants.
    unsafe { (cosa_rel_flag(0), cosa_rel_flag(1), cosa_rel_flag(2)) }
}

/// SOLVABLE_PREREQMARKER: `Requires(pre)` come after it in a requires array.
pub fn prereq_marker() -> Id {
    // SAFETY: returns a constant.
    unsafe { cosa_prereq_marker() }
}

/// SOLVABLE_FILEMARKER: file provides come after it in a provides array.
pub fn file_marker() -> Id {
    // SAFETY: returns a constant.
    unsafe { cosa_file_marker() }
}

/// The job dnf's `install` makes of a selector: install one of a package
/// set (SOLVER_INSTALL | SOLVER_SOLVABLE_ONE_OF | SOLVER_SETARCH | SOLVER_SETEVR).
pub fn job_install_one_of() -> Id {
    // SAFETY: returns a constant.
    unsafe { cosa_job_install_one_of() }
}

/// Which dependency array of a solvable.
#[derive(Debug, Clone, Copy)]
pub enum DepKind {
    Provides = 0,
    Requires = 1,
    Conflicts = 2,
    Obsoletes = 3,
    Recommends = 4,
    Suggests = 5,
    Supplements = 6,
    Enhances = 7,
}

fn take_queue(mut q: Queue) -> Vec<Id> {
    let v = if q.count > 0 {
        // SAFETY: elements points at `count` initialised ids owned by the queue.
        unsafe { std::slice::from_raw_parts(q.elements, q.count as usize) }.to_vec()
    } else {
        Vec::new()
    };
    // SAFETY: the queue was initialised with queue_init.
    unsafe { queue_free(&mut q) };
    v
}

fn new_queue() -> Queue {
    let mut q = Queue {
        elements: std::ptr::null_mut(),
        count: 0,
        alloc: std::ptr::null_mut(),
        left: 0,
    };
    // SAFETY: queue_init only writes the struct.
    unsafe { queue_init(&mut q) };
    q
}

fn len_c(n: usize) -> c_int {
    c_int::try_from(n).expect("fewer than 2^31 ids")
}

/// A libsolv pool with RPM semantics and an empty installed system.
pub struct Pool {
    ptr: NonNull<CPool>,
    /// Considered packages with Obsoletes, once the pool is finished.
    obsoleting: std::cell::OnceCell<Vec<Id>>,
}

/// A repository inside a [`Pool`] (freed with the pool).
#[derive(Clone, Copy)]
pub struct Repo(*mut CRepo);

impl Pool {
    /// A pool for `arch`: its compatible arches are installable (x86_64
    /// takes i686 and noarch too, as in dnf).
    pub fn new(arch: &str) -> Result<Pool> {
        let c = CString::new(arch)?;
        // SAFETY: plain constructor; a NULL return is handled.
        let ptr = unsafe { cosa_pool_new(c.as_ptr()) };
        match NonNull::new(ptr) {
            Some(ptr) => Ok(Pool {
                ptr,
                obsoleting: std::cell::OnceCell::new(),
            }),
            None => bail!("this libsolv cannot compare RPM versions (built without rpm semantics)"),
        }
    }

    fn p(&self) -> *mut CPool {
        self.ptr.as_ptr()
    }

    /// A repo; libsolv's priority is higher-is-better, so pass dnf's negated.
    pub fn add_repo(&mut self, name: &str, priority: i32, subpriority: i32) -> Result<Repo> {
        let c = CString::new(name)?;
        // SAFETY: the pool is alive; the repo lives as long as the pool.
        Ok(Repo(unsafe {
            cosa_repo_new(self.p(), c.as_ptr(), priority, subpriority)
        }))
    }

    /// Load `repomd` and `primary` (paths; `*_as` are names whose suffix
    /// says how the file is compressed) into the empty `repo` with
    /// libsolv's own parser and solv round trip, as libdnf loads a repo.
    /// The solv data is kept in `cache` and read from there instead when
    /// it exists (the caller names it after what it was made from); a cache
    /// that cannot be read or written is only logged. Returns the repo's
    /// solvable ids.
    pub fn add_rpmmd(
        &mut self,
        repo: Repo,
        repomd: (&Path, &str),
        primary: (&Path, &str),
        cache: &Path,
    ) -> Result<std::ops::Range<Id>> {
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes());
        if cache.exists() {
            let path = c(cache)?;
            // SAFETY: the repo belongs to this pool; the path is NUL-terminated.
            if unsafe { cosa_repo_add_solv_file(repo.0, path.as_ptr()) } == 0 {
                return Ok(self.repo_range(repo));
            }
            tracing::warn!(
                "ignoring the solv cache {}: {}",
                cache.display(),
                self.errstr()
            );
        }
        let (rm, rm_as) = (c(repomd.0)?, CString::new(repomd.1)?);
        let (pr, pr_as) = (c(primary.0)?, CString::new(primary.1)?);
        let (mut buf, mut len) = (std::ptr::null_mut(), 0usize);
        // SAFETY: the repo belongs to this pool; the strings are NUL-terminated.
        let r = unsafe {
            cosa_repo_add_rpmmd(
                repo.0,
                rm.as_ptr(),
                rm_as.as_ptr(),
                pr.as_ptr(),
                pr_as.as_ptr(),
                &mut buf,
                &mut len,
            )
        };
        if r != 0 {
            bail!(
                "libsolv could not load {}: {}",
                primary.0.display(),
                self.errstr()
            );
        }
        // SAFETY: on success the shim hands out `len` bytes at `buf`, which
        // are ours to free.
        let solv = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
        if let Err(e) = crate::util::write_atomic(cache, solv) {
            tracing::warn!("not keeping the solv cache: {e:#}");
        }
        // SAFETY: allocated by the shim with malloc, not used after this.
        unsafe { cosa_free(buf.cast()) };
        Ok(self.repo_range(repo))
    }

    fn repo_range(&self, repo: Repo) -> std::ops::Range<Id> {
        let (mut start, mut end) = (0, 0);
        // SAFETY: the repo is alive.
        unsafe { cosa_repo_range(repo.0, &mut start, &mut end) };
        start..end.max(start)
    }

    /// libsolv's last error message.
    fn errstr(&self) -> String {
        // SAFETY: pool_errstr returns a pool-owned NUL-terminated string,
        // copied here.
        unsafe { CStr::from_ptr(cosa_pool_errstr(self.p())) }
            .to_string_lossy()
            .into_owned()
    }

    /// Name, evr (libsolv's form) and arch of solvable `p`, borrowed from
    /// the pool (non-UTF-8 text reads as empty).
    pub fn solvable_nea(&self, p: Id) -> (&str, &str, &str) {
        let (mut n, mut e, mut a) = (std::ptr::null(), std::ptr::null(), std::ptr::null());
        // SAFETY: `p` is a solvable of this pool; the strings are pool-owned
        // and only move when a string is added, which takes `&mut self`
        // while these borrow `&self`.
        unsafe {
            cosa_solvable_nea(self.p(), p, &mut n, &mut e, &mut a);
            let s = |x: *const c_char| CStr::from_ptr(x).to_str().unwrap_or_default();
            (s(n), s(e), s(a))
        }
    }

    /// rpm's transaction check on `set`: (package, dependency) for each
    /// Requires the set does not meet (rich ones by their operators).
    pub fn unmet(&self, set: &[Id]) -> Vec<(Id, Id)> {
        let mut q = new_queue();
        // SAFETY: the pool is finished; the slice is valid for its length.
        unsafe { cosa_unmet(self.p(), set.as_ptr(), len_c(set.len()), &mut q) };
        take_queue(q).chunks(2).map(|c| (c[0], c[1])).collect()
    }

    /// The id of a string.
    pub fn str(&mut self, s: &str) -> Id {
        // SAFETY: the pointer and length describe `s`; libsolv copies it.
        unsafe { cosa_str(self.p(), s.as_ptr().cast(), s.len() as c_uint) }
    }

    /// The id of `name <flags> evr`.
    pub fn rel(&mut self, name: Id, evr: Id, flags: i32) -> Id {
        // SAFETY: ids come from this pool.
        unsafe { cosa_rel(self.p(), name, evr, flags) }
    }

    /// A rich dependency `( ... )` parsed by libsolv, as dnf parses it; 0
    /// when it does not parse.
    pub fn rich(&mut self, s: &str) -> Id {
        let Ok(c) = CString::new(s) else { return 0 };
        // SAFETY: NUL-terminated string; the pool is alive.
        unsafe { pool_parserpmrichdep(self.p(), c.as_ptr()) }
    }

    pub fn add_solvable(&mut self, repo: Repo, name: Id, evr: Id, arch: Id) -> Id {
        // SAFETY: the repo belongs to this pool.
        unsafe { cosa_solvable_new(repo.0, name, evr, arch) }
    }

    pub fn add_dep(&mut self, p: Id, kind: DepKind, dep: Id, marker: Id) {
        // SAFETY: `p` was returned by add_solvable on this pool.
        unsafe { cosa_solvable_dep(self.p(), p, kind as c_int, dep, marker) }
    }

    /// Every file path that some dependency names.
    pub fn file_deps(&mut self) -> Vec<Id> {
        let mut q = new_queue();
        // SAFETY: the pool is alive; the queue is initialised.
        unsafe { cosa_file_deps(self.p(), &mut q) };
        take_queue(q)
    }

    /// Mark `excluded` as not considered and build the provides index. Call
    /// once, after every solvable is added. `file_deps` are the paths whose
    /// providers [`Pool::add_dep`] added from complete filelists: the ones
    /// nothing provides are known to have no provider.
    pub fn finish(&mut self, excluded: &[Id], file_deps: &[Id]) {
        self.obsoleting = std::cell::OnceCell::new();
        // SAFETY: the slices are valid for their lengths; file_deps are
        // string ids of this pool.
        unsafe {
            cosa_finish_pool(
                self.p(),
                excluded.as_ptr(),
                len_c(excluded.len()),
                file_deps.as_ptr(),
                len_c(file_deps.len()),
            )
        }
    }

    /// Considered packages providing `dep`, by id.
    pub fn whatprovides(&self, dep: Id) -> Vec<Id> {
        let mut q = new_queue();
        // SAFETY: the pool is finished (whatprovides exists).
        unsafe { cosa_whatprovides(self.p(), dep, &mut q) };
        take_queue(q)
    }

    /// Considered packages whose Obsoletes match one of `targets`.
    pub fn obsoleters(&self, targets: &[Id]) -> Vec<Id> {
        let candidates = self.obsoleting.get_or_init(|| {
            let mut q = new_queue();
            // SAFETY: the pool is finished; the queue is initialised.
            unsafe { cosa_obsoleting(self.p(), &mut q) };
            take_queue(q)
        });
        let mut q = new_queue();
        // SAFETY: the slices are valid for their lengths; the pool is finished.
        unsafe {
            cosa_obsoleters(
                self.p(),
                targets.as_ptr(),
                len_c(targets.len()),
                candidates.as_ptr(),
                len_c(candidates.len()),
                &mut q,
            )
        };
        take_queue(q)
    }

    /// The "one of these packages" id for a SOLVER_SOLVABLE_ONE_OF job.
    pub fn one_of(&mut self, ids: &[Id]) -> Id {
        // SAFETY: the slice is valid for its length.
        unsafe { cosa_one_of(self.p(), ids.as_ptr(), len_c(ids.len())) }
    }

    /// A dependency as libsolv prints it.
    pub fn dep_str(&self, dep: Id) -> String {
        // SAFETY: pool_dep2str returns a pool-owned temporary string.
        unsafe { CStr::from_ptr(pool_dep2str(self.p(), dep)) }
            .to_string_lossy()
            .into_owned()
    }

    /// `name-evr.arch` of a solvable.
    pub fn solvable_str(&self, p: Id) -> String {
        // SAFETY: cosa_solvid2str returns a pool-owned temporary string.
        unsafe { CStr::from_ptr(cosa_solvid2str(self.p(), p)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Run the solver on `jobs` (pairs of how, what) with dnf's install
    /// flags. `Ok` lists the packages to install; `Err` carries libsolv's
    /// problem descriptions, one rule a line.
    pub fn solve(&mut self, jobs: &[Id], weak_deps: bool) -> std::result::Result<Vec<Id>, String> {
        let mut nproblems: c_int = 0;
        // SAFETY: the slice is valid; the solver is freed below.
        let solv = unsafe {
            cosa_solve(
                self.p(),
                jobs.as_ptr(),
                len_c(jobs.len()),
                c_int::from(!weak_deps),
                &mut nproblems,
            )
        };
        if let Some(dir) = std::env::var_os(TESTCASE_ENV) {
            write_testcase(solv, &dir);
        }
        let out = if nproblems == 0 {
            let mut q = new_queue();
            // SAFETY: the solver is alive.
            unsafe { cosa_solver_installs(solv, &mut q) };
            Ok(take_queue(q))
        } else {
            // SAFETY: the returned buffer is malloc'd and NUL-terminated.
            let text = unsafe {
                let c = cosa_solver_problems(solv);
                let s = CStr::from_ptr(c).to_string_lossy().into_owned();
                cosa_free(c.cast());
                s
            };
            Err(text)
        };
        // SAFETY: created above, not used after this.
        unsafe { cosa_solver_free(solv) };
        out
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: the pool is freed once, here.
        unsafe { cosa_pool_free(self.p()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_builds_and_solves_a_requirement() {
        let mut pool = Pool::new("x86_64").unwrap();
        let repo = pool.add_repo("r", 0, 0).unwrap();
        let (a, b, evr, arch) = (
            pool.str("a"),
            pool.str("b"),
            pool.str("1-1"),
            pool.str("x86_64"),
        );
        let pa = pool.add_solvable(repo, a, evr, arch);
        let pb = pool.add_solvable(repo, b, evr, arch);
        for (p, n) in [(pa, a), (pb, b)] {
            let self_prov = pool.rel(n, evr, rel_flags().1);
            pool.add_dep(p, DepKind::Provides, self_prov, 0);
        }
        let (gt, eq, _) = rel_flags();
        let ge = pool.str("1");
        let req = pool.rel(b, ge, gt | eq);
        pool.add_dep(pa, DepKind::Requires, req, -prereq_marker());
        pool.finish(&[], &[]);
        assert_eq!(pool.whatprovides(req), vec![pb]);
        let what = pool.one_of(&[pa]);
        let got = pool.solve(&[job_install_one_of(), what], false).unwrap();
        let mut names: Vec<String> = got.iter().map(|&p| pool.solvable_str(p)).collect();
        names.sort();
        assert_eq!(names, ["a-1-1.x86_64", "b-1-1.x86_64"]);
        // Excluded: nothing can satisfy the requirement any more.
        let mut pool2 = Pool::new("x86_64").unwrap();
        let r2 = pool2.add_repo("r", 0, 0).unwrap();
        let (a, b, evr, arch) = (
            pool2.str("a"),
            pool2.str("b"),
            pool2.str("1-1"),
            pool2.str("x86_64"),
        );
        let pa = pool2.add_solvable(r2, a, evr, arch);
        let pb = pool2.add_solvable(r2, b, evr, arch);
        let sp = pool2.rel(b, evr, rel_flags().1);
        pool2.add_dep(pb, DepKind::Provides, sp, 0);
        pool2.add_dep(pa, DepKind::Requires, b, -prereq_marker());
        pool2.finish(&[pb], &[]);
        let what = pool2.one_of(&[pa]);
        let err = pool2
            .solve(&[job_install_one_of(), what], false)
            .unwrap_err();
        assert!(err.contains("b"), "{err}");
    }

    /// rpm's transaction check reads rich Requires by their operators.
    #[test]
    fn unmet_reads_rich_requires() {
        let mut pool = Pool::new("x86_64").unwrap();
        let repo = pool.add_repo("r", 0, 0).unwrap();
        let (evr1, evr2, arch) = (pool.str("1-1"), pool.str("2-1"), pool.str("x86_64"));
        let eq = rel_flags().1;
        let pkg = |pool: &mut Pool, name: &str, evr: Id| {
            let n = pool.str(name);
            let p = pool.add_solvable(repo, n, evr, arch);
            let prov = pool.rel(n, evr, eq);
            pool.add_dep(p, DepKind::Provides, prov, 0);
            p
        };
        let user = pkg(&mut pool, "user", evr1);
        let a = pkg(&mut pool, "a", evr1);
        let b = pkg(&mut pool, "b", evr2);
        let cases = [
            ("(a and b)", true),
            ("(a and c)", false),
            ("(c or b)", true),
            ("(c or d)", false),
            ("(c if a)", false),
            ("(c if d)", true),
            ("(a if c else b)", true),
            ("(a if c else d)", false),
            // rpm: (A unless B) is A and not B.
            ("(c unless a)", false),
            ("(a unless c)", true),
            ("(c unless d)", false),
            ("(c unless a else b)", true),
            ("(c unless a else d)", false),
            ("(b with b >= 2)", true),
            ("(a with a >= 2)", false),
            ("(a without a >= 2)", true),
            ("(b without b >= 2)", false),
            ("((a or c) and (b if a))", true),
        ];
        let deps: Vec<(Id, &str, bool)> = cases
            .iter()
            .map(|&(text, ok)| (pool.rich(text), text, ok))
            .collect();
        for &(d, text, _) in &deps {
            assert_ne!(d, 0, "libsolv could not parse {text}");
            pool.add_dep(user, DepKind::Requires, d, -prereq_marker());
        }
        pool.finish(&[], &[]);
        let unmet: Vec<Id> = pool
            .unmet(&[user, a, b])
            .into_iter()
            .map(|(p, d)| {
                assert_eq!(p, user);
                d
            })
            .collect();
        for (d, text, ok) in deps {
            assert_eq!(!unmet.contains(&d), ok, "{text}");
        }
    }
}

/// When set, every solve writes libsolv's testcase into this directory.
pub const TESTCASE_ENV: &str = "COSA_SOLVER_TESTCASE";

fn write_testcase(solv: *mut CSolver, dir: &std::ffi::OsStr) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = CString::new(dir.as_bytes()) else {
        tracing::warn!("{TESTCASE_ENV}: the path holds a NUL byte; no testcase written");
        return;
    };
    // SAFETY: the solver is alive and the path NUL-terminated.
    if unsafe { cosa_write_testcase(solv, c.as_ptr()) } == 0 {
        tracing::warn!(
            "{TESTCASE_ENV}: libsolv could not write its testcase into {}",
            dir.to_string_lossy()
        );
    } else {
        eprintln!("Wrote libsolv's testcase into {}", dir.to_string_lossy());
    }
}
