//! UTC timestamps in RFC 3339 (`2024-05-20T01:02:03Z`), without a calendar crate.

use anyhow::{Result, bail};

/// Seconds since the epoch, now, or `SOURCE_DATE_EPOCH` when set (reproducible builds).
pub fn now_secs() -> i64 {
    if let Some(s) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return s;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's civil_from_days.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-05-20T01:02:03Z`
pub fn format_rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `YYYYMMDD` of a timestamp (UTC), as used in build versions.
pub fn yyyymmdd(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}{m:02}{d:02}")
}

/// `strftime` of a UTC timestamp for the specifiers version prefixes use
/// (`%Y %y %m %d %j %H %M %S %%`); any other specifier is an error.
pub fn strftime_utc(fmt: &str, secs: i64) -> Result<String> {
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let s = secs.rem_euclid(86_400);
    let mut out = String::new();
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('Y') => out.push_str(&format!("{y:04}")),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('j') => out.push_str(&format!("{:03}", days - days_from_civil(y, 1, 1) + 1)),
            Some('H') => out.push_str(&format!("{:02}", s / 3600)),
            Some('M') => out.push_str(&format!("{:02}", s / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", s % 60)),
            Some('%') => out.push('%'),
            Some(o) => bail!(
                "unsupported date format %{o} in {fmt:?} (supported: %Y %y %m %d %j %H %M %S %%)"
            ),
            None => bail!("date format {fmt:?} ends with a lone %"),
        }
    }
    Ok(out)
}

/// Parse RFC 3339 with a `Z` or `+hh:mm` offset and optional fractional seconds.
pub fn parse_rfc3339(s: &str) -> Result<i64> {
    let bad = || anyhow::anyhow!("invalid RFC 3339 timestamp {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        bail!(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64> {
        s.get(r).and_then(|x| x.parse().ok()).ok_or_else(bad)
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        bail!(bad());
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            bail!(bad());
        }
        rest = &r[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let oh: i64 = o[1..3].parse().map_err(|_| bad())?;
            let om: i64 = o[4..6].parse().map_err(|_| bad())?;
            let v = oh * 3600 + om * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => bail!(bad()),
    };
    Ok(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for secs in [
            0i64,
            951_782_400,
            1_700_000_000,
            4_102_444_800,
            1_709_251_199,
        ] {
            assert_eq!(parse_rfc3339(&format_rfc3339(secs)).unwrap(), secs);
        }
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(yyyymmdd(1_700_000_000), "20231114");
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123+01:00").unwrap(),
            1_700_000_000
        );
        assert!(parse_rfc3339("2023-13-14T23:13:20Z").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
