//! Installation order: dependencies before dependents.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::richdep::Rich;
use crate::rpm::types::{Dep, PackageMeta};

/// Simple dependencies inside a (possibly rich) dependency.
fn leaves(r: &Rich, out: &mut Vec<Dep>) {
    match r {
        Rich::Simple(d) => out.push(d.clone()),
        Rich::And(v) | Rich::Or(v) => v.iter().for_each(|r| leaves(r, out)),
        Rich::If(a, b, c) | Rich::Unless(a, b, c) => {
            leaves(a, out);
            leaves(b, out);
            if let Some(c) = c {
                leaves(c, out);
            }
        }
        Rich::With(a, b) | Rich::Without(a, b) => {
            leaves(a, out);
            leaves(b, out);
        }
    }
}

/// Edges `i -> j` (i requires j), with a flag for pre-requires.
fn edges(pkgs: &[PackageMeta]) -> Vec<Vec<(usize, bool)>> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in pkgs.iter().enumerate() {
        by_name.entry(p.name.as_str()).or_default().push(i);
        for d in &p.provides {
            by_name.entry(d.name.as_str()).or_default().push(i);
        }
        for f in &p.files {
            by_name.entry(f).or_default().push(i);
        }
    }
    pkgs.iter()
        .enumerate()
        .map(|(i, p)| {
            let mut out: Vec<(usize, bool)> = Vec::new();
            for req in &p.requires {
                if req.name.starts_with("rpmlib(") {
                    continue;
                }
                let mut simple = Vec::new();
                match Rich::from_dep(req) {
                    Ok(r) => leaves(&r, &mut simple),
                    Err(_) => continue,
                }
                for d in simple {
                    for &j in by_name.get(d.name.as_str()).into_iter().flatten() {
                        if j != i && pkgs[j].satisfies(&d) {
                            match out.iter_mut().find(|(k, _)| *k == j) {
                                Some(e) => e.1 |= req.pre,
                                None => out.push((j, req.pre)),
                            }
                        }
                    }
                }
            }
            out
        })
        .collect()
}

/// Tarjan's strongly connected components; emitted dependencies first.
fn sccs(n: usize, adj: &[Vec<(usize, bool)>], start_order: &[usize]) -> Vec<Vec<usize>> {
    struct St<'a> {
        adj: &'a [Vec<(usize, bool)>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut St, v: usize) {
        // Iterative DFS to survive long dependency chains.
        let mut work: Vec<(usize, usize)> = vec![(v, 0)];
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on[v] = true;
        while let Some(&mut (u, ref mut ei)) = work.last_mut() {
            if let Some(&(w, _)) = s.adj[u].get(*ei) {
                *ei += 1;
                match s.index[w] {
                    None => {
                        s.index[w] = Some(s.next);
                        s.low[w] = s.next;
                        s.next += 1;
                        s.stack.push(w);
                        s.on[w] = true;
                        work.push((w, 0));
                    }
                    Some(iw) if s.on[w] => s.low[u] = s.low[u].min(iw),
                    _ => {}
                }
            } else {
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    s.low[parent] = s.low[parent].min(s.low[u]);
                }
                if Some(s.low[u]) == s.index[u] {
                    let mut comp = Vec::new();
                    while let Some(w) = s.stack.pop() {
                        s.on[w] = false;
                        comp.push(w);
                        if w == u {
                            break;
                        }
                    }
                    s.out.push(comp);
                }
            }
        }
    }
    let mut s = St {
        adj,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for &v in start_order {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Order the members of one dependency cycle: repeatedly take the member
/// whose unplaced in-cycle pre-requires, then requires, are fewest, by name.
fn order_cycle(comp: &[usize], pkgs: &[PackageMeta], adj: &[Vec<(usize, bool)>]) -> Vec<usize> {
    let mut left: Vec<usize> = comp.to_vec();
    let mut out = Vec::new();
    while !left.is_empty() {
        let key = |i: usize| {
            let pending = |pre_only: bool| {
                adj[i]
                    .iter()
                    .filter(|(j, pre)| (!pre_only || *pre) && left.contains(j))
                    .count()
            };
            (pending(true), pending(false), pkgs[i].name.clone(), i)
        };
        let best = left
            .iter()
            .copied()
            .min_by_key(|&i| key(i))
            .expect("non-empty");
        left.retain(|&i| i != best);
        out.push(best);
    }
    out
}

/// See [`super::install_order`].
pub fn install_order(pkgs: &[PackageMeta]) -> Vec<usize> {
    let n = pkgs.len();
    let adj = edges(pkgs);
    let mut by_name: Vec<usize> = (0..n).collect();
    by_name.sort_by(|&a, &b| pkgs[a].name.cmp(&pkgs[b].name).then(a.cmp(&b)));
    let comps = sccs(n, &adj, &by_name);
    let mut comp_of = vec![0; n];
    for (c, members) in comps.iter().enumerate() {
        for &m in members {
            comp_of[m] = c;
        }
    }
    // Kahn over the condensation, smallest name first among ready components.
    let mut pending = vec![0usize; comps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); comps.len()];
    for (i, out) in adj.iter().enumerate() {
        for &(j, _) in out {
            let (ci, cj) = (comp_of[i], comp_of[j]);
            if ci != cj && !dependents[cj].contains(&ci) {
                dependents[cj].push(ci);
                pending[ci] += 1;
            }
        }
    }
    let key = |c: usize| {
        let m = comps[c]
            .iter()
            .min_by_key(|&&i| (&pkgs[i].name, i))
            .expect("non-empty");
        Reverse((pkgs[*m].name.clone(), *m))
    };
    let mut heap: BinaryHeap<(Reverse<(String, usize)>, usize)> = (0..comps.len())
        .filter(|&c| pending[c] == 0)
        .map(|c| (key(c), c))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some((_, c)) = heap.pop() {
        order.extend(order_cycle(&comps[c], pkgs, &adj));
        for &d in &dependents[c] {
            pending[d] -= 1;
            if pending[d] == 0 {
                heap.push((key(d), d));
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, reqs: &[&str], pre: &[&str]) -> PackageMeta {
        let mut p = PackageMeta {
            name: name.into(),
            version: "1".into(),
            release: "1".into(),
            arch: "x86_64".into(),
            provides: vec![Dep::any(name)],
            ..Default::default()
        };
        p.requires = reqs.iter().map(|r| Dep::parse(r).unwrap()).collect();
        for r in pre {
            let mut d = Dep::parse(r).unwrap();
            d.pre = true;
            p.requires.push(d);
        }
        p
    }

    fn names(pkgs: &[PackageMeta]) -> Vec<&str> {
        install_order(pkgs)
            .into_iter()
            .map(|i| pkgs[i].name.as_str())
            .collect()
    }

    #[test]
    fn chain_and_ties() {
        let pkgs = vec![
            pkg("z", &[], &[]),
            pkg(
                "app",
                &["lib", "rpmlib(CompressedFileNames) <= 3.0.4-1"],
                &[],
            ),
            pkg("lib", &["(glibc or musl)"], &[]),
            pkg("glibc", &[], &[]),
            pkg("b", &[], &[]),
        ];
        assert_eq!(names(&pkgs), ["b", "glibc", "lib", "app", "z"]);
    }

    #[test]
    fn cycle_broken_by_pre_requires() {
        // a <-> c cycle; c has Requires(pre) on a, so a goes first.
        let pkgs = vec![
            pkg("c", &[], &["a"]),
            pkg("a", &["c"], &[]),
            pkg("d", &["c"], &[]),
        ];
        assert_eq!(names(&pkgs), ["a", "c", "d"]);
        let pkgs = vec![pkg("c", &["a"], &[]), pkg("a", &[], &["c"])];
        assert_eq!(names(&pkgs), ["c", "a"]);
        let pkgs = vec![pkg("c", &["a"], &[]), pkg("a", &["c"], &[])];
        assert_eq!(names(&pkgs), ["a", "c"]);
    }
}
