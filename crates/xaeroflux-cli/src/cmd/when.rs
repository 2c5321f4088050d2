//! Moments on the command line: `--since` and `--until` of `xf cat`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

/// What `xf cat` prints of a topic view: a window by time and a count from
/// its end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Events at or after this many milliseconds since the epoch.
    pub since: Option<u64>,
    /// Events before this.
    pub until: Option<u64>,
    /// The last N events.
    pub last: Option<u64>,
}

impl Window {
    /// From the flags as given.
    pub fn parse(since: Option<&str>, until: Option<&str>, last: Option<u64>) -> Result<Self> {
        let now = now_ms();
        Ok(Self {
            since: since.map(|s| parse_when(s, now)).transpose()?,
            until: until.map(|s| parse_when(s, now)).transpose()?,
            last,
        })
    }
}

/// The time now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds since the epoch, an RFC 3339 time, or a time ago (`90s`,
/// `15m`, `2h`, `7d`, also `500ms`).
pub fn parse_when(s: &str, now: u64) -> Result<u64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(s.parse()?);
    }
    for (suffix, ms) in [
        ("ms", 1u64),
        ("s", 1_000),
        ("m", 60_000),
        ("h", 3_600_000),
        ("d", 86_400_000),
    ] {
        if let Some(n) = s.strip_suffix(suffix)
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
        {
            let ago = n.parse::<u64>()?.saturating_mul(ms);
            return Ok(now.saturating_sub(ago));
        }
    }
    rfc3339(s).ok_or_else(|| {
        anyhow::anyhow!(
            "{s:?} is not a moment: give milliseconds since the Unix epoch, an RFC 3339 time \
             (2026-12-01T18:00:00Z) or a time ago (90s, 15m, 2h, 7d)"
        )
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]` to milliseconds since the epoch.
fn rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let sep = |at: usize, c: &[u8]| b.get(at).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut at = 19;
    let mut ms = 0i64;
    if sep(at, b".") {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let frac = s.get(start..at)?;
        if frac.is_empty() {
            return None;
        }
        let three: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = three.parse().ok()?;
    }
    let offset_min = match s.get(at..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            if rest.get(3..4)? != ":" {
                return None;
            }
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3_600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1_000 + ms).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_parse_in_every_form() {
        let now = 1_764_612_000_000;
        assert_eq!(parse_when("1700000000000", now).unwrap(), 1_700_000_000_000);
        assert_eq!(parse_when("15m", now).unwrap(), now - 900_000);
        assert_eq!(parse_when("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_when("500ms", now).unwrap(), now - 500);
        assert_eq!(parse_when("1970-01-01T00:00:00Z", now).unwrap(), 0);
        assert_eq!(
            parse_when("2026-12-01T18:00:00Z", now).unwrap(),
            1_796_148_000_000
        );
        assert_eq!(
            parse_when("2026-12-01T18:00:00.250Z", now).unwrap(),
            1_796_148_000_250
        );
        assert_eq!(
            parse_when("2026-12-01T19:00:00+01:00", now).unwrap(),
            1_796_148_000_000
        );
        assert_eq!(
            parse_when("2000-02-29T00:00:00Z", now).unwrap(),
            951_782_400_000
        );
        for bad in [
            "",
            "yesterday",
            "15x",
            "2026-13-01T00:00:00Z",
            "2026-12-01",
            "-5",
        ] {
            assert!(parse_when(bad, now).is_err(), "{bad:?} accepted");
        }
    }
}
