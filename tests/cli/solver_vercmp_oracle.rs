//! `rpmvercmp` and `Evr::compare` against rpm itself: all pairs evaluated in
//! one `rpm --eval` call through rpm's Lua `rpm.vercmp`.

use std::cmp::Ordering;
use std::process::Command;

use cosa::rpm::types::Evr;
use cosa::rpm::vercmp::rpmvercmp;

const TRICKY: &[(&str, &str)] = &[
    ("1.0", "1.0"),
    ("1.0", "2.0"),
    ("2.0.1", "2.0"),
    ("2.0.1a", "2.0.1"),
    ("5.5p1", "5.5p2"),
    ("5.5p10", "5.5p1"),
    ("10xyz", "10.1xyz"),
    ("xyz10", "xyz10.1"),
    ("xyz.4", "8"),
    ("xyz.4", "2"),
    ("5.5p2", "5.6p1"),
    ("6.0.rc1", "6.0"),
    ("10b2", "10a1"),
    ("1.0aa", "1.0a"),
    ("10.0001", "10.1"),
    ("10.0001", "10.0039"),
    ("4.999.9", "5.0"),
    ("20101121", "20101122"),
    ("2_0", "2_0"),
    ("2.0", "2_0"),
    ("a", "a"),
    ("a+", "a+"),
    ("a+", "a_"),
    ("+a", "+a"),
    ("+a", "_a"),
    ("+_", "_+"),
    ("+", "_"),
    ("1.0~rc1", "1.0"),
    ("1.0~rc1", "1.0~rc2"),
    ("1.0~rc1~git123", "1.0~rc1"),
    ("1.0~", "1.0"),
    ("~", "~~"),
    ("~~", "~"),
    ("1.0^", "1.0"),
    ("1.0^git1", "1.0"),
    ("1.0^git1", "1.0.1"),
    ("1.0^git1", "1.0^git2"),
    ("1.0^git1", "1.01"),
    ("1.0^20160101", "1.0.1"),
    ("1.0~rc1^git1", "1.0~rc1"),
    ("1.0^git1~pre", "1.0^git1"),
    ("1.0^", "1.0~"),
    ("^", "~"),
    ("^", ""),
    ("~", ""),
    ("", ""),
    ("0", ""),
    ("001", "1"),
    ("0001", "01"),
    ("1.001", "1.1"),
    ("1.1", "1.01"),
    ("999999999999999999999", "999999999999999999998"),
    ("0000000000000000000000001", "2"),
    ("1a", "1.a"),
    ("a1", "a.1"),
    ("1.a", "1.1"),
    ("abc", "abd"),
    ("ABC", "abc"),
    ("Z", "a"),
    ("1e", "1f"),
    ("1..2", "1.2"),
    ("1.+2", "1.2"),
    ("1.0.0", "1.0"),
    ("1.0.", "1.0"),
    ("..", "."),
    ("é1", "1"),
];

/// A tiny deterministic generator of version strings.
fn generated(n: usize) -> Vec<(String, String)> {
    const TOKENS: &[&str] = &[
        "0", "1", "2", "01", "10", "007", "99", "a", "b", "Z", "rc", "git", "~", "^", ".", "_",
        "+", "-x", "~rc1", "^post", "beta", "0.0",
    ];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |m: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m as u64) as usize
    };
    let word = |next: &mut dyn FnMut(usize) -> usize| {
        let len = 1 + next(5);
        (0..len)
            .map(|_| TOKENS[next(TOKENS.len())])
            .collect::<String>()
            .replace('-', "")
    };
    (0..n)
        .map(|_| {
            let a = word(&mut next);
            // Half of the pairs share a prefix, to exercise the later segments.
            let b = if next(2) == 0 {
                format!("{}{}", &a[..a.len() / 2], word(&mut next))
            } else {
                word(&mut next)
            };
            (a, b)
        })
        .collect()
}

const EVRS: &[(&str, &str)] = &[
    ("1:1.0-1", "2.0-1"),
    ("0:1.0-1", "1.0-1"),
    ("2:0.1-1", "10:0.1-1"),
    ("1.0-1", "1.0-1.fc40"),
    ("1.0-2", "1.0-10"),
    ("1.0-1~rc", "1.0-1"),
    ("3:1.0-1.el9", "3:1.0-1.el9_1"),
];

/// One `rpm --eval` with a Lua chunk printing `rpm.vercmp` of every pair
/// (`None` where rpm refuses the input, e.g. an empty version).
fn rpm_vercmp(pairs: &[(String, String)]) -> Vec<Option<i32>> {
    let quote = |s: &str| format!("[==[{s}]==]");
    let mut lua = String::from(
        "%{lua: local r = {}\nlocal function c(a, b) local ok, v = pcall(rpm.vercmp, a, b); \
         r[#r+1] = ok and tostring(v) or 'E' end\n",
    );
    for (a, b) in pairs {
        lua.push_str(&format!("c({}, {})\n", quote(a), quote(b)));
    }
    lua.push_str("print(table.concat(r, ' '))}");
    let out = Command::new("rpm")
        .arg("--eval")
        .arg(&lua)
        .output()
        .expect("running rpm --eval");
    assert!(
        out.status.success(),
        "rpm --eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<Option<i32>> = text
        .split_whitespace()
        .map(|x| (x != "E").then(|| x.parse().expect("rpm.vercmp result")))
        .collect();
    assert_eq!(v.len(), pairs.len(), "rpm printed {text:?}");
    v
}

fn sign(o: Ordering) -> i32 {
    o as i32
}

#[test]
fn rpmvercmp_agrees_with_rpm() {
    let mut pairs: Vec<(String, String)> = TRICKY
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    pairs.extend(TRICKY.iter().map(|(a, b)| (b.to_string(), a.to_string())));
    pairs.extend(generated(170));
    pairs.extend(EVRS.iter().flat_map(|(a, b)| {
        [
            (a.to_string(), b.to_string()),
            (b.to_string(), a.to_string()),
        ]
    }));
    assert!(pairs.len() >= 300);
    let theirs = rpm_vercmp(&pairs);
    let mut bad = Vec::new();
    let refused = theirs.iter().filter(|x| x.is_none()).count();
    assert!(refused < 10, "rpm refused {refused} pairs");
    for ((a, b), want) in pairs.iter().zip(theirs) {
        let Some(want) = want else { continue };
        let ours = if [a, b].iter().any(|s| s.contains(['-', ':'])) {
            sign(Evr::parse(a).compare(&Evr::parse(b)))
        } else {
            sign(rpmvercmp(a, b))
        };
        if ours != want {
            bad.push(format!("{a:?} vs {b:?}: ours {ours}, rpm {want}"));
        }
    }
    assert!(
        bad.is_empty(),
        "rpmvercmp disagrees with rpm on:\n{}",
        bad.join("\n")
    );
}
