//! The resolvo [`DependencyProvider`] for RPM repositories.
//!
//! Every package name is a resolvo name (so one version per name). A simple
//! dependency becomes a union of version sets, one per package name that
//! provides it, each filtering that name's candidates by the dependency.
//! Conflicts and obsoletes are resolvo "constrains" with negated filters.
//! Rich dependencies map onto requirements, unions and conditions:
//! `(A if B else C)` is `A` under condition `B` plus `(C or B)`,
//! `(A unless B)` is `A` plus a constraint against `B` (libsolv reads it as
//! `A and not B`), `(A unless B else C)` is `(A or B)` plus `C`
//! under condition `B`, `with`/`without` filter the providers of `A`, and any
//! operand that is not a plain alternative becomes a virtual helper solvable
//! named after its text that carries the operand as its dependencies.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::Display;

use anyhow::{Context, Result, anyhow, bail};
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, DenseIndex, Dependencies,
    DependencyProvider, Interner, KnownDependencies, LogicalOperator, NameId, Problem, Requirement,
    SolvableId, Solver, SolverCache, StringId, UnsolvableOrCancelled, VersionSetId,
    VersionSetUnionId,
};

use super::richdep::Rich;
use super::{Pin, Request};
use crate::rpm::repodata::LoadedRepo;
use crate::rpm::types::{Cmp, Dep, PackageMeta, ranges_overlap};

/// Which candidates of one name a version set admits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Pred {
    /// Provides (or ships the file) `dep`.
    Dep(Dep),
    /// Is named `dep.name` with an EVR in the range (obsoletes, requests).
    NameEvr(Dep),
    /// `(A with B)`, `(A without B)`.
    Rich(Rich),
    Not(Box<Pred>),
    InRepo(String, Box<Pred>),
    /// A virtual helper solvable.
    Any,
}

#[derive(Debug, Clone)]
enum Solv {
    Pkg(usize),
    Virtual(Rich),
}

#[derive(Default)]
struct Tables {
    names: Vec<String>,
    name_ids: HashMap<String, NameId>,
    /// Per name: (candidate solvables, excluded solvables with a reason).
    name_cands: Vec<(Vec<SolvableId>, Vec<(SolvableId, StringId)>)>,
    solvables: Vec<(Solv, NameId)>,
    vsets: Vec<(NameId, Pred)>,
    vset_ids: HashMap<(NameId, Pred), VersionSetId>,
    unions: Vec<Vec<VersionSetId>>,
    conds: Vec<Condition>,
    strings: Vec<String>,
}

struct Provider<'a> {
    /// All packages known to the solver (candidates and excluded ones).
    pkgs: Vec<&'a PackageMeta>,
    prio: Vec<u32>,
    /// Capability and needed file path -> usable packages.
    whatprovides: HashMap<String, Vec<usize>>,
    requested: HashSet<String>,
    t: RefCell<Tables>,
}

fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob_match(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob_match(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob_match(rest, &s[1..]),
    }
}

fn pin_matches(p: &PackageMeta, pin: &Pin) -> bool {
    let evr_ok = p.evr().compare(&pin.evr) == Ordering::Equal
        && pin.evr.release.as_ref().is_none_or(|r| *r == p.release);
    let arch_ok = pin.arch.as_ref().is_none_or(|a| *a == p.arch);
    let digest_ok = pin.digest.as_ref().is_none_or(|d| match d.split_once(':') {
        Some((kind, hex)) => p.checksum_type == kind && p.checksum.eq_ignore_ascii_case(hex),
        None => p.checksum.eq_ignore_ascii_case(d),
    });
    evr_ok && arch_ok && digest_ok
}

fn name_evr_matches(p: &PackageMeta, d: &Dep) -> bool {
    p.name == d.name
        && match &d.evr {
            Some(evr) if d.cmp != Cmp::ANY => ranges_overlap(&p.evr(), Cmp::EQ, evr, d.cmp),
            _ => true,
        }
}

/// Does one package satisfy a rich expression on its own (for `with`)?
fn pkg_matches_rich(p: &PackageMeta, r: &Rich) -> bool {
    match r {
        Rich::Simple(d) => p.satisfies(d),
        Rich::And(v) => v.iter().all(|r| pkg_matches_rich(p, r)),
        Rich::Or(v) => v.iter().any(|r| pkg_matches_rich(p, r)),
        Rich::With(a, b) => pkg_matches_rich(p, a) && pkg_matches_rich(p, b),
        Rich::Without(a, b) => pkg_matches_rich(p, a) && !pkg_matches_rich(p, b),
        Rich::If(..) | Rich::Unless(..) => false,
    }
}

fn pred_matches(p: &PackageMeta, pred: &Pred) -> bool {
    match pred {
        Pred::Dep(d) => p.satisfies(d),
        Pred::NameEvr(d) => name_evr_matches(p, d),
        Pred::Rich(r) => pkg_matches_rich(p, r),
        Pred::Not(inner) => !pred_matches(p, inner),
        Pred::InRepo(repo, inner) => p.repo == *repo && pred_matches(p, inner),
        Pred::Any => true,
    }
}

/// The first simple dependency of a `with`/`without`: whose providers to look at.
fn rich_anchor(r: &Rich) -> Option<&Dep> {
    match r {
        Rich::Simple(d) => Some(d),
        Rich::With(a, _) | Rich::Without(a, _) => rich_anchor(a),
        _ => None,
    }
}

fn collect_files(r: &Rich, out: &mut HashSet<String>) {
    match r {
        Rich::Simple(d) => {
            if d.name.starts_with('/') {
                out.insert(d.name.clone());
            }
        }
        Rich::And(v) | Rich::Or(v) => v.iter().for_each(|r| collect_files(r, out)),
        Rich::If(a, b, c) | Rich::Unless(a, b, c) => {
            collect_files(a, out);
            collect_files(b, out);
            if let Some(c) = c {
                collect_files(c, out);
            }
        }
        Rich::With(a, b) | Rich::Without(a, b) => {
            collect_files(a, out);
            collect_files(b, out);
        }
    }
}

fn is_rpmlib(d: &Dep) -> bool {
    d.name.starts_with("rpmlib(")
}

/// The dependency specs of the request, with their repo restriction.
fn request_specs(req: &Request) -> Vec<(Option<&str>, &str)> {
    let mut v: Vec<(Option<&str>, &str)> =
        req.packages.iter().map(|s| (None, s.as_str())).collect();
    for (repo, specs) in &req.repo_packages {
        v.extend(specs.iter().map(|s| (Some(repo.as_str()), s.as_str())));
    }
    v
}

impl<'a> Provider<'a> {
    fn new(repos: &'a [LoadedRepo], req: &Request) -> Result<Provider<'a>> {
        let arches = crate::util::compatible_arches(&req.basearch);
        let mut pkgs = Vec::new();
        let mut prio = Vec::new();
        let mut why_not: Vec<Option<String>> = Vec::new();
        for r in repos {
            for p in &r.packages {
                if !arches.contains(&p.arch.as_str()) {
                    continue;
                }
                let excluded = req
                    .exclude
                    .iter()
                    .find(|g| glob_match(g.as_bytes(), p.name.as_bytes()));
                pkgs.push(p);
                prio.push(r.priority);
                why_not.push(excluded.map(|g| format!("it matches the exclude pattern {g:?}")));
            }
        }
        // Lockfile pins.
        for (name, pin) in &req.pins {
            let mut found = false;
            for (i, p) in pkgs.iter().enumerate() {
                if p.name == *name && why_not[i].is_none() {
                    if pin_matches(p, pin) {
                        found = true;
                    } else {
                        why_not[i] = Some(format!("the lockfile pins {name} to {}", pin.evr));
                    }
                }
            }
            if !found {
                let mut entry = format!("{name} {}", pin.evr);
                if let Some(a) = &pin.arch {
                    entry.push_str(&format!(".{a}"));
                }
                if let Some(d) = &pin.digest {
                    entry.push_str(&format!(" ({d})"));
                }
                bail!("lockfile entry {entry}: no package in the enabled repositories matches it");
            }
        }
        // Names requested from one repo come only from that repo.
        let mut repo_of: HashMap<String, &str> = HashMap::new();
        for (repo, specs) in &req.repo_packages {
            for d in specs.iter().filter_map(|s| Dep::parse(s)) {
                if pkgs.iter().any(|p| p.name == d.name) {
                    repo_of.insert(d.name, repo.as_str());
                }
            }
        }
        // Repo priorities: per name, only the best repos carrying it.
        let mut best: HashMap<&str, u32> = HashMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            if why_not[i].is_none() {
                let b = best.entry(p.name.as_str()).or_insert(prio[i]);
                *b = (*b).min(prio[i]);
            }
        }
        let mut hidden = vec![false; pkgs.len()];
        for (i, p) in pkgs.iter().enumerate() {
            if let Some(repo) = repo_of.get(&p.name) {
                if p.repo != *repo && why_not[i].is_none() {
                    why_not[i] = Some(format!("{} is requested from repo {repo}", p.name));
                }
            } else if !req.pins.contains_key(&p.name)
                && best.get(p.name.as_str()).is_some_and(|b| prio[i] > *b)
            {
                hidden[i] = true;
            }
        }
        let usable: Vec<bool> = (0..pkgs.len())
            .map(|i| why_not[i].is_none() && !hidden[i])
            .collect();

        // Index provides, and the files that some dependency names.
        let mut needed_files = HashSet::new();
        for (i, p) in pkgs.iter().enumerate() {
            if !usable[i] {
                continue;
            }
            for d in p
                .requires
                .iter()
                .chain(&p.conflicts)
                .chain(&p.recommends)
                .chain(&p.supplements)
            {
                if let Ok(r) = Rich::from_dep(d) {
                    collect_files(&r, &mut needed_files);
                }
            }
        }
        for (_, s) in request_specs(req) {
            if s.starts_with('/') {
                needed_files.insert(s.trim().to_string());
            }
        }
        let mut whatprovides: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            if !usable[i] {
                continue;
            }
            let mut add = |k: &str| {
                let v = whatprovides.entry(k.to_string()).or_default();
                if v.last() != Some(&i) {
                    v.push(i);
                }
            };
            for d in &p.provides {
                add(&d.name);
            }
            for f in &p.files {
                if needed_files.contains(f) {
                    add(f);
                }
            }
        }

        let mut requested = HashSet::new();
        for (_, s) in request_specs(req) {
            if let Some(d) = Dep::parse(s) {
                requested.insert(d.name);
            }
        }

        let prov = Provider {
            pkgs,
            prio,
            whatprovides,
            requested,
            t: RefCell::new(Tables::default()),
        };
        for i in 0..prov.pkgs.len() {
            if hidden[i] {
                continue;
            }
            let name = prov.name_id(&prov.pkgs[i].name);
            let mut t = prov.t.borrow_mut();
            let sid = SolvableId::from_index(t.solvables.len());
            t.solvables.push((Solv::Pkg(i), name));
            match &why_not[i] {
                None => t.name_cands[name.to_index()].0.push(sid),
                Some(reason) => {
                    let s = StringId::from_index(t.strings.len());
                    t.strings.push(reason.clone());
                    t.name_cands[name.to_index()].1.push((sid, s));
                }
            }
        }
        Ok(prov)
    }

    fn name_id(&self, name: &str) -> NameId {
        let mut t = self.t.borrow_mut();
        if let Some(id) = t.name_ids.get(name) {
            return *id;
        }
        let id = NameId::from_index(t.names.len());
        t.names.push(name.to_string());
        t.name_ids.insert(name.to_string(), id);
        t.name_cands.push(Default::default());
        id
    }

    fn vset(&self, name: NameId, pred: Pred) -> VersionSetId {
        let mut t = self.t.borrow_mut();
        let key = (name, pred);
        if let Some(id) = t.vset_ids.get(&key) {
            return *id;
        }
        let id = VersionSetId::from_index(t.vsets.len());
        t.vsets.push(key.clone());
        t.vset_ids.insert(key, id);
        id
    }

    fn requirement(&self, vsets: Vec<VersionSetId>) -> Requirement {
        if vsets.len() == 1 {
            Requirement::Single(vsets[0])
        } else {
            let mut t = self.t.borrow_mut();
            let id = VersionSetUnionId::from_index(t.unions.len());
            t.unions.push(vsets);
            Requirement::Union(id)
        }
    }

    fn condition(&self, c: Condition) -> ConditionId {
        let mut t = self.t.borrow_mut();
        let id = ConditionId::from_index(t.conds.len());
        t.conds.push(c);
        id
    }

    fn solvable_pkg(&self, s: SolvableId) -> Option<&'a PackageMeta> {
        match &self.t.borrow().solvables[s.to_index()].0 {
            Solv::Pkg(i) => Some(self.pkgs[*i]),
            Solv::Virtual(_) => None,
        }
    }

    /// Names of usable packages providing `d`, in libsolv's preference
    /// order: requested names first, names whose providers another provider
    /// obsoletes last, otherwise alphabetical.
    fn provider_names(&self, d: &Dep, pred: &Pred) -> Vec<String> {
        let providers: Vec<&PackageMeta> = self
            .whatprovides
            .get(&d.name)
            .into_iter()
            .flatten()
            .map(|&i| self.pkgs[i])
            .filter(|p| pred_matches(p, pred))
            .collect();
        let obsoleted = |n: &str| {
            providers.iter().any(|q| {
                q.name != n
                    && q.obsoletes.iter().any(|o| {
                        providers
                            .iter()
                            .any(|p| p.name == n && name_evr_matches(p, o))
                    })
            })
        };
        let mut names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        names.sort_by_key(|n| (!self.requested.contains(*n), obsoleted(n), n.to_string()));
        names.dedup();
        names.into_iter().map(String::from).collect()
    }

    /// Version sets for "something providing `d`" (restricted by `pred`).
    fn dep_vsets(&self, d: &Dep, pred: Pred) -> Vec<VersionSetId> {
        let names = self.provider_names(d, &pred);
        if names.is_empty() {
            return vec![self.vset(self.name_id(&d.name), pred)];
        }
        names
            .iter()
            .map(|n| self.vset(self.name_id(n), pred.clone()))
            .collect()
    }

    fn virtual_vset(&self, r: &Rich) -> VersionSetId {
        let text = format!("{r}");
        let name = self.name_id(&text);
        let mut t = self.t.borrow_mut();
        if t.name_cands[name.to_index()].0.is_empty() {
            let sid = SolvableId::from_index(t.solvables.len());
            t.solvables.push((Solv::Virtual(r.clone()), name));
            t.name_cands[name.to_index()].0.push(sid);
        }
        drop(t);
        self.vset(name, Pred::Any)
    }

    /// The alternatives (a disjunction) that satisfy `r`.
    fn alternatives(&self, r: &Rich) -> Vec<VersionSetId> {
        match r {
            Rich::Simple(d) => self.dep_vsets(d, Pred::Dep(d.clone())),
            Rich::Or(v) => v.iter().flat_map(|r| self.alternatives(r)).collect(),
            Rich::With(..) | Rich::Without(..) => match rich_anchor(r) {
                Some(d) => self.dep_vsets(d, Pred::Rich(r.clone())),
                None => vec![self.virtual_vset(r)],
            },
            _ => vec![self.virtual_vset(r)],
        }
    }

    /// `r` as a resolvo condition, when it can be one.
    fn cond_of(&self, r: &Rich) -> Option<ConditionId> {
        let fold = |ids: Vec<ConditionId>, op| {
            ids.into_iter()
                .reduce(|a, b| self.condition(Condition::Binary(op, a, b)))
        };
        match r {
            Rich::Simple(_) | Rich::With(..) | Rich::Without(..) => {
                let ids = self
                    .alternatives(r)
                    .into_iter()
                    .map(|vs| self.condition(Condition::Requirement(vs)))
                    .collect();
                fold(ids, LogicalOperator::Or)
            }
            Rich::And(v) => fold(
                v.iter().map(|r| self.cond_of(r)).collect::<Option<_>>()?,
                LogicalOperator::And,
            ),
            Rich::Or(v) => fold(
                v.iter().map(|r| self.cond_of(r)).collect::<Option<_>>()?,
                LogicalOperator::Or,
            ),
            Rich::If(..) | Rich::Unless(..) => None,
        }
    }

    fn with_cond(
        &self,
        reqs: Vec<ConditionalRequirement>,
        cond: ConditionId,
    ) -> Vec<ConditionalRequirement> {
        reqs.into_iter()
            .map(|mut cr| {
                cr.condition = Some(match cr.condition {
                    None => cond,
                    Some(c) => self.condition(Condition::Binary(LogicalOperator::And, cond, c)),
                });
                cr
            })
            .collect()
    }

    /// `r` as a conjunction of (conditional) requirements, plus constraints
    /// for the negative parts: libsolv reads a required `(A unless B)` as
    /// `A and not B`.
    fn requirements(&self, r: &Rich, cons: &mut Vec<VersionSetId>) -> Vec<ConditionalRequirement> {
        let union = |v: Vec<VersionSetId>| vec![ConditionalRequirement::from(self.requirement(v))];
        // Requirements of `a` that carry no constraints, else `a` as a helper.
        let plain = |a: &Rich| {
            let mut inner = Vec::new();
            let reqs = self.requirements(a, &mut inner);
            if inner.is_empty() {
                reqs
            } else {
                union(vec![self.virtual_vset(a)])
            }
        };
        match r {
            Rich::Simple(d) if is_rpmlib(d) => vec![],
            Rich::And(v) => v.iter().flat_map(|r| self.requirements(r, cons)).collect(),
            Rich::If(a, b, els) => {
                let Some(cond) = self.cond_of(b) else {
                    tracing::warn!(
                        "unsupported condition in rich dependency {r}; treating as required"
                    );
                    return self.requirements(a, cons);
                };
                let mut out = self.with_cond(plain(a), cond);
                if let Some(c) = els {
                    let mut alts = self.alternatives(c);
                    alts.extend(self.alternatives(b));
                    out.extend(union(alts));
                }
                out
            }
            Rich::Unless(a, b, None) => {
                for vs in self.alternatives(b) {
                    let (name, pred) = self.t.borrow().vsets[vs.to_index()].clone();
                    if pred != Pred::Any {
                        cons.push(self.vset(name, Pred::Not(Box::new(pred))));
                    }
                }
                self.requirements(a, cons)
            }
            Rich::Unless(a, b, Some(c)) => {
                let mut alts = self.alternatives(a);
                alts.extend(self.alternatives(b));
                let mut out = union(alts);
                match self.cond_of(b) {
                    Some(cond) => out.extend(self.with_cond(plain(c), cond)),
                    None => tracing::warn!("unsupported condition in rich dependency {r}"),
                }
                out
            }
            _ => union(self.alternatives(r)),
        }
    }

    /// Conflicts and obsoletes of a package, as constraints.
    fn constraints(&self, p: &PackageMeta) -> Vec<VersionSetId> {
        let mut out = Vec::new();
        for c in &p.conflicts {
            let simple: Vec<Dep> = match Rich::from_dep(c) {
                Ok(Rich::Simple(d)) => vec![d],
                Ok(Rich::Or(v)) => v
                    .into_iter()
                    .filter_map(|r| match r {
                        Rich::Simple(d) => Some(d),
                        _ => None,
                    })
                    .collect(),
                _ => {
                    tracing::warn!("{}: unsupported rich conflict {}", p.nevra(), c);
                    vec![]
                }
            };
            for d in simple {
                let pred = Pred::Dep(d.clone());
                for n in self.provider_names(&d, &pred) {
                    if n != p.name {
                        out.push(self.vset(self.name_id(&n), Pred::Not(Box::new(pred.clone()))));
                    }
                }
            }
        }
        for o in &p.obsoletes {
            if o.name != p.name && self.t.borrow().name_ids.contains_key(&o.name) {
                let name = self.name_id(&o.name);
                out.push(self.vset(name, Pred::Not(Box::new(Pred::NameEvr(o.clone())))));
            }
        }
        out
    }

    fn cmp_solvables(&self, a: SolvableId, b: SolvableId) -> Ordering {
        let t = self.t.borrow();
        let (Solv::Pkg(i), Solv::Pkg(j)) =
            (&t.solvables[a.to_index()].0, &t.solvables[b.to_index()].0)
        else {
            return a.to_index().cmp(&b.to_index());
        };
        let (p, q) = (self.pkgs[*i], self.pkgs[*j]);
        q.evr()
            .compare(&p.evr())
            .then_with(|| (p.arch != "noarch").cmp(&(q.arch != "noarch")))
            .then_with(|| self.prio[*i].cmp(&self.prio[*j]))
            .then_with(|| i.cmp(j))
    }

    /// The best candidate satisfying a simple or `with` dependency.
    fn best_provider(&self, alts: Vec<VersionSetId>) -> Option<SolvableId> {
        for vs in alts {
            let (name, pred) = self.t.borrow().vsets[vs.to_index()].clone();
            let mut c: Vec<SolvableId> = self.t.borrow().name_cands[name.to_index()]
                .0
                .iter()
                .copied()
                .filter(|&s| self.solvable_pkg(s).is_some_and(|p| pred_matches(p, &pred)))
                .collect();
            c.sort_by(|&a, &b| self.cmp_solvables(a, b));
            if let Some(s) = c.first() {
                return Some(*s);
            }
        }
        None
    }

    fn request_requirement(
        &self,
        repo: Option<&str>,
        spec: &str,
    ) -> Result<ConditionalRequirement> {
        let d = Dep::parse(spec).with_context(|| format!("invalid package spec {spec:?}"))?;
        let wrap = |p: Pred| match repo {
            Some(r) => Pred::InRepo(r.to_string(), Box::new(p)),
            None => p,
        };
        if d.is_rich() {
            let r = Rich::from_dep(&d)?;
            let mut cons = Vec::new();
            let reqs = self.requirements(&r, &mut cons);
            return match reqs.as_slice() {
                [one] if one.condition.is_none() && cons.is_empty() => Ok(*one),
                _ => Ok(self.requirement(vec![self.virtual_vset(&r)]).into()),
            };
        }
        let has_name = {
            let t = self.t.borrow();
            t.name_ids
                .get(&d.name)
                .is_some_and(|n| !t.name_cands[n.to_index()].0.is_empty())
        };
        let vsets = if has_name && !d.name.starts_with('/') {
            vec![self.vset(self.name_id(&d.name), wrap(Pred::NameEvr(d.clone())))]
        } else {
            self.dep_vsets(&d, wrap(Pred::Dep(d.clone())))
        };
        Ok(self.requirement(vsets).into())
    }
}

impl Interner for Provider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl Display + '_ {
        match self.solvable_pkg(solvable) {
            Some(p) => p.nevra(),
            None => self.t.borrow().names[self.solvable_name(solvable).to_index()].clone(),
        }
    }

    fn display_merged_solvables(&self, solvables: &[SolvableId]) -> impl Display + '_ {
        let mut v: Vec<String> = solvables
            .iter()
            .map(|&s| self.display_solvable(s).to_string())
            .collect();
        v.sort();
        v.dedup();
        v.join(" | ")
    }

    fn display_name(&self, name: NameId) -> impl Display + '_ {
        self.t.borrow().names[name.to_index()].clone()
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl Display + '_ {
        let t = self.t.borrow();
        let (name, pred) = &t.vsets[version_set.to_index()];
        fn show(name: &str, pred: &Pred) -> String {
            match pred {
                Pred::Dep(d) | Pred::NameEvr(d) if d.name == name => match &d.evr {
                    Some(e) if d.cmp != Cmp::ANY => format!("{} {e}", d.cmp.op()),
                    _ => String::new(),
                },
                Pred::Dep(d) => format!("(provides {d})"),
                Pred::NameEvr(d) => format!("(matching {d})"),
                Pred::Rich(r) => format!("(for {r})"),
                Pred::Not(inner) => match show(name, inner) {
                    s if s.is_empty() => "(none)".to_string(),
                    s => format!("(not {s})"),
                },
                Pred::InRepo(repo, inner) => format!("{} (from repo {repo})", show(name, inner)),
                Pred::Any => String::new(),
            }
        }
        show(&t.names[name.to_index()], pred)
    }

    fn display_string(&self, string_id: StringId) -> impl Display + '_ {
        self.t.borrow().strings[string_id.to_index()].clone()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.t.borrow().vsets[version_set.to_index()].0
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.t.borrow().solvables[solvable.to_index()].1
    }

    fn version_sets_in_union(&self, u: VersionSetUnionId) -> impl Iterator<Item = VersionSetId> {
        self.t.borrow().unions[u.to_index()].clone().into_iter()
    }

    fn resolve_condition(&self, condition: ConditionId) -> Condition {
        self.t.borrow().conds[condition.to_index()].clone()
    }
}

impl DependencyProvider for Provider<'_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let pred = self.t.borrow().vsets[version_set.to_index()].1.clone();
        candidates
            .iter()
            .copied()
            .filter(|&s| {
                let m = match self.solvable_pkg(s) {
                    Some(p) => pred_matches(p, &pred),
                    None => matches!(pred, Pred::Any),
                };
                m != inverse
            })
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates<SolvableId>> {
        let t = self.t.borrow();
        let (candidates, excluded) = t.name_cands.get(name.to_index())?.clone();
        Some(Candidates {
            candidates: candidates
                .into_iter()
                .chain(excluded.iter().map(|e| e.0))
                .collect(),
            excluded,
            ..Default::default()
        })
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        solvables.sort_by(|&a, &b| self.cmp_solvables(a, b));
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let solv = self.t.borrow().solvables[solvable.to_index()].0.clone();
        let mut deps = KnownDependencies::default();
        match solv {
            Solv::Virtual(r) => deps.requirements = self.requirements(&r, &mut deps.constrains),
            Solv::Pkg(i) => {
                let p = self.pkgs[i];
                for d in &p.requires {
                    if is_rpmlib(d) {
                        continue;
                    }
                    match Rich::from_dep(d) {
                        Ok(r) => deps
                            .requirements
                            .extend(self.requirements(&r, &mut deps.constrains)),
                        Err(e) => {
                            let msg = format!("{}: {e:#}", p.nevra());
                            let mut t = self.t.borrow_mut();
                            let id = StringId::from_index(t.strings.len());
                            t.strings.push(msg);
                            return Dependencies::Unknown(id);
                        }
                    }
                }
                deps.constrains.extend(self.constraints(p));
            }
        }
        Dependencies::Known(deps)
    }
}

/// Packages that weak dependencies of the installed set ask for.
fn weak_wishes(prov: &Provider, installed: &[usize]) -> Vec<SolvableId> {
    let inst: Vec<&PackageMeta> = installed.iter().map(|&i| prov.pkgs[i]).collect();
    let inst_names: HashSet<&str> = inst.iter().map(|p| p.name.as_str()).collect();
    let sat = |d: &Dep| inst.iter().any(|p| p.satisfies(d));
    let with = |a: &Rich, b: &Rich, neg: bool| {
        inst.iter()
            .any(|p| pkg_matches_rich(p, a) && pkg_matches_rich(p, b) != neg)
    };
    let mut out = Vec::new();
    fn wish(prov: &Provider, r: &Rich, ev: &dyn Fn(&Rich) -> bool, out: &mut Vec<SolvableId>) {
        if ev(r) {
            return;
        }
        match r {
            Rich::Simple(d) if is_rpmlib(d) => {}
            Rich::And(v) => v.iter().for_each(|r| wish(prov, r, ev, out)),
            Rich::If(a, b, c) | Rich::Unless(a, b, c) => {
                let cond = ev(b) == matches!(r, Rich::If(..));
                match (cond, c) {
                    (true, _) => wish(prov, a, ev, out),
                    (false, Some(c)) => wish(prov, c, ev, out),
                    (false, None) => {}
                }
            }
            Rich::Or(v) => {
                if let Some(first) = v.first() {
                    wish(prov, first, ev, out)
                }
            }
            _ => out.extend(prov.best_provider(prov.alternatives(r))),
        }
    }
    let ev = |r: &Rich| r.eval(&sat, &with);
    for p in &inst {
        for d in &p.recommends {
            if let Ok(r) = Rich::from_dep(d) {
                wish(prov, &r, &ev, &mut out);
            }
        }
    }
    // Supplements: the best candidate of each name not installed.
    let names: Vec<NameId> = prov.t.borrow().name_ids.values().copied().collect();
    for name in names {
        let mut c = prov.t.borrow().name_cands[name.to_index()].0.clone();
        c.sort_by(|&a, &b| prov.cmp_solvables(a, b));
        let Some(&best) = c.first() else { continue };
        let Some(p) = prov.solvable_pkg(best) else {
            continue;
        };
        if inst_names.contains(p.name.as_str()) {
            continue;
        }
        if p.supplements
            .iter()
            .any(|d| Rich::from_dep(d).is_ok_and(|r| ev(&r)))
        {
            out.push(best);
        }
    }
    out.sort();
    out.dedup();
    out
}

pub fn solve(repos: &[LoadedRepo], req: &Request) -> Result<Vec<PackageMeta>> {
    let prov = Provider::new(repos, req)?;
    let specs = request_specs(req);
    let requirements = specs
        .iter()
        .map(|(repo, s)| prov.request_requirement(*repo, s))
        .collect::<Result<Vec<_>>>()?;
    let all_specs: Vec<&str> = specs.iter().map(|(_, s)| *s).collect();
    let mut solver = Solver::new(prov);
    let mut soft: Vec<SolvableId> = Vec::new();
    let mut rounds = 0;
    let chosen = loop {
        let problem = Problem::new()
            .requirements(requirements.clone())
            .soft_requirements(soft.clone());
        let chosen = match solver.solve(problem) {
            Ok(c) => c,
            Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
                let msg = conflict.display_user_friendly(&solver).to_string();
                return Err(anyhow!(
                    "cannot install {}:\n{}",
                    all_specs.join(", "),
                    msg.trim_end()
                ));
            }
            Err(UnsolvableOrCancelled::Cancelled(_)) => {
                bail!("dependency resolution was cancelled")
            }
        };
        rounds += 1;
        if !req.recommends || rounds > 32 {
            break chosen;
        }
        let prov = solver.provider();
        let installed: Vec<usize> = chosen
            .iter()
            .filter_map(|&s| match prov.t.borrow().solvables[s.to_index()].0 {
                Solv::Pkg(i) => Some(i),
                Solv::Virtual(_) => None,
            })
            .collect();
        let new: Vec<SolvableId> = weak_wishes(prov, &installed)
            .into_iter()
            .filter(|s| !soft.contains(s) && !chosen.contains(s))
            .collect();
        if new.is_empty() {
            break chosen;
        }
        soft.extend(new);
    };
    let prov = solver.provider();
    let mut out: Vec<PackageMeta> = chosen
        .iter()
        .filter_map(|&s| prov.solvable_pkg(s).cloned())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.arch.cmp(&b.arch)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpm::types::Evr;

    fn pkg(name: &str, evr: &str, arch: &str, repo: &str) -> PackageMeta {
        let e = Evr::parse(evr);
        PackageMeta {
            name: name.into(),
            epoch: e.epoch,
            version: e.version.clone(),
            release: e.release.clone().unwrap_or_else(|| "1".into()),
            arch: arch.into(),
            checksum_type: "sha256".into(),
            checksum: format!("{name}{evr}"),
            provides: vec![Dep::versioned(name, Cmp::EQ, Evr::parse(evr))],
            repo: repo.into(),
            ..Default::default()
        }
    }

    fn repo(id: &str, priority: u32, packages: Vec<PackageMeta>) -> LoadedRepo {
        LoadedRepo {
            id: id.into(),
            priority,
            baseurls: vec![],
            gpgcheck: false,
            gpgkeys: vec![],
            revision: None,
            timestamp: None,
            packages,
        }
    }

    fn req(specs: &[&str]) -> Request {
        Request {
            packages: specs.iter().map(|s| s.to_string()).collect(),
            basearch: "x86_64".into(),
            ..Default::default()
        }
    }

    fn nevras(r: Result<Vec<PackageMeta>>) -> Vec<String> {
        r.unwrap().iter().map(|p| p.nevra()).collect()
    }

    #[test]
    fn pins_select_exact_package_or_fail_naming_the_entry() {
        let repos = [repo(
            "r",
            99,
            vec![
                pkg("foo", "1.0-1", "x86_64", "r"),
                pkg("foo", "2.0-1", "x86_64", "r"),
            ],
        )];
        let mut r = req(&["foo"]);
        assert_eq!(nevras(solve(&repos, &r)), ["foo-2.0-1.x86_64"]);
        let pin = |evr: &str, digest: Option<&str>| Pin {
            evr: Evr::parse(evr),
            arch: Some("x86_64".into()),
            digest: digest.map(String::from),
        };
        r.pins
            .insert("foo".into(), pin("1.0-1", Some("sha256:FOO1.0-1")));
        assert_eq!(nevras(solve(&repos, &r)), ["foo-1.0-1.x86_64"]);
        r.pins
            .insert("foo".into(), pin("1.0-1", Some("sha256:beef")));
        let e = format!("{:#}", solve(&repos, &r).unwrap_err());
        assert!(
            e.contains("lockfile entry foo 1.0-1.x86_64 (sha256:beef)"),
            "{e}"
        );
        r.pins.insert("foo".into(), pin("3.0-1", None));
        assert!(solve(&repos, &r).is_err());
        // A pinned package that a versioned request cannot use: the error
        // tells why the other version is out.
        r.pins.insert("foo".into(), pin("1.0-1", None));
        r.packages = vec!["foo >= 2".into()];
        let e = format!("{:#}", solve(&repos, &r).unwrap_err());
        assert!(e.contains("foo >= 2"), "{e}");
    }

    #[test]
    fn repo_packages_override_priorities() {
        let repos = [
            repo("fast", 1, vec![pkg("foo", "1.0-1", "x86_64", "fast")]),
            repo("slow", 50, vec![pkg("foo", "9.0-1", "x86_64", "slow")]),
        ];
        assert_eq!(nevras(solve(&repos, &req(&["foo"]))), ["foo-1.0-1.x86_64"]);
        let mut r = req(&[]);
        r.repo_packages = vec![("slow".into(), vec!["foo".into()])];
        let out = solve(&repos, &r).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].nevra(), out[0].repo.as_str()),
            ("foo-9.0-1.x86_64".into(), "slow")
        );
    }

    #[test]
    fn excluded_and_missing_show_in_errors() {
        let mut app = pkg("app", "1-1", "x86_64", "r");
        app.requires = vec![Dep::any("libx")];
        let mut libx = pkg("libx", "1-1", "x86_64", "r");
        libx.requires = vec![Dep::parse("(missing-cap or other-missing)").unwrap()];
        let repos = [repo("r", 99, vec![app, libx])];
        let e = format!("{:#}", solve(&repos, &req(&["app"])).unwrap_err());
        assert!(
            e.contains("app-1-1.x86_64") && e.contains("missing-cap"),
            "{e}"
        );
        let mut r = req(&["libx"]);
        r.exclude = vec!["lib*".into()];
        let e = format!("{:#}", solve(&repos, &r).unwrap_err());
        assert!(
            e.contains("excluded because it matches the exclude pattern \"lib*\""),
            "{e}"
        );
        assert!(solve(&repos, &req(&["bogus spec with words"])).is_err());
    }

    #[test]
    fn rich_request_and_virtual_helpers() {
        let mut a = pkg("a", "1-1", "noarch", "r");
        a.requires = vec![Dep::parse("((b and c) or d)").unwrap()];
        let repos = [repo(
            "r",
            99,
            vec![
                a,
                pkg("b", "1-1", "x86_64", "r"),
                pkg("c", "1-1", "x86_64", "r"),
                pkg("d", "1-1", "i686", "r"),
            ],
        )];
        assert_eq!(
            nevras(solve(&repos, &req(&["(a if b)", "b"]))),
            ["a-1-1.noarch", "b-1-1.x86_64", "c-1-1.x86_64"]
        );
    }
}
