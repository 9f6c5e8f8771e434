//! RPM version comparison, mirroring rpm's `rpmvercmp()` (rpmio/rpmvercmp.c)
//! and `rpmVersionCompare()` for whole EVRs.

use std::cmp::Ordering;

/// Compare two version (or release) strings exactly as rpm's `rpmvercmp` does:
/// segments of digits compare numerically, segments of letters lexically,
/// digits beat letters, `~` sorts before anything (even the end), `^` sorts
/// after the end but before anything else.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let one = a.as_bytes();
    let two = b.as_bytes();
    let (mut i, mut j) = (0usize, 0usize);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < one.len() || j < two.len() {
        while i < one.len() && sep(one[i]) {
            i += 1;
        }
        while j < two.len() && sep(two[j]) {
            j += 1;
        }
        let c1 = one.get(i).copied();
        let c2 = two.get(j).copied();
        // Tilde sorts before everything, including the end of the string.
        if c1 == Some(b'~') || c2 == Some(b'~') {
            if c1 != Some(b'~') {
                return Ordering::Greater;
            }
            if c2 != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // Caret sorts after the end of the string but before anything else.
        if c1 == Some(b'^') || c2 == Some(b'^') {
            if c1.is_none() {
                return Ordering::Less;
            }
            if c2.is_none() {
                return Ordering::Greater;
            }
            if c1 != Some(b'^') {
                return Ordering::Greater;
            }
            if c2 != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if c1.is_none() || c2.is_none() {
            break;
        }
        let (s1, s2) = (i, j);
        let isnum = one[i].is_ascii_digit();
        if isnum {
            while i < one.len() && one[i].is_ascii_digit() {
                i += 1;
            }
            while j < two.len() && two[j].is_ascii_digit() {
                j += 1;
            }
        } else {
            while i < one.len() && one[i].is_ascii_alphabetic() {
                i += 1;
            }
            while j < two.len() && two[j].is_ascii_alphabetic() {
                j += 1;
            }
        }
        // `one` always has a segment here; if `two` has none of the same kind,
        // numeric segments win over alphabetic ones.
        if j == s2 {
            return if isnum {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let mut seg1 = &one[s1..i];
        let mut seg2 = &two[s2..j];
        if isnum {
            while seg1.first() == Some(&b'0') {
                seg1 = &seg1[1..];
            }
            while seg2.first() == Some(&b'0') {
                seg2 = &seg2[1..];
            }
            match seg1.len().cmp(&seg2.len()) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match seg1.cmp(seg2) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    let rest1 = i < one.len();
    let rest2 = j < two.len();
    match (rest1, rest2) {
        (false, false) => Ordering::Equal,
        (true, _) => Ordering::Greater,
        (false, true) => Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn known_pairs() {
        // Pairs from rpm's own test suite (tests/rpmvercmp.at).
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0", Greater),
            ("5.5p1", "5.5p2", Less),
            ("5.5p10", "5.5p1", Greater),
            ("10xyz", "10.1xyz", Less),
            ("xyz10", "xyz10.1", Less),
            ("1.0aa", "1.0a", Greater),
            ("1.0010", "1.9", Greater),
            ("1.05", "1.5", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~rc1~git123", "1.0~rc1", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.01", Less),
            ("1.0^git1~pre", "1.0^git1", Less),
            ("1.0~rc1^git1", "1.0~rc1", Greater),
            ("a+", "a_", Equal),
            ("+a", "_a", Equal),
            ("+", "_", Equal),
            ("1b", "1a", Greater),
            ("2_0", "2_0", Equal),
            ("4.999.9", "5.0", Less),
            ("20101121", "20101122", Less),
            ("1.0a", "1.0", Greater),
            ("a", "1", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
