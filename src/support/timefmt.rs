//! Time formatting used in output, the ledger and the manifest.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::support::error::{Error, Result};

/// `2026-11-22T00:23:34Z`: UTC, whole seconds.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `396 days`, `5 hours`, `1 minute`: the largest whole unit of a span.
pub fn human_span(d: time::Duration) -> String {
    let secs = d.whole_seconds().unsigned_abs();
    let (n, unit) = match secs {
        s if s >= 86_400 => (s / 86_400, "day"),
        s if s >= 3_600 => (s / 3_600, "hour"),
        s if s >= 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `397d`, `5h`, `12m`: the same, compact, for columns.
pub fn compact_span(d: time::Duration) -> String {
    let secs = d.whole_seconds().unsigned_abs();
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s => format!("{}m", s / 60),
    }
}

/// A period such as `30d`, `12h`, `2w`, `90m` (minutes) or `0d`, for
/// `option` (named in the error).
pub fn parse_period(option: &'static str, s: &str) -> Result<Duration> {
    let expected = "expected a whole number followed by m (minutes), h (hours), d (days) or w (weeks), e.g. 30d, 12h, 2w, 90m";
    let bad = || Error::invalid(option, s, expected);
    let unit_at = s
        .len()
        .checked_sub(1)
        .filter(|i| s.is_char_boundary(*i))
        .ok_or_else(bad)?;
    let (digits, unit) = s.split_at(unit_at);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // u32 keeps every product below i64 seconds; no one warns 80,000 years ahead.
    let n = i64::from(digits.parse::<u32>().map_err(|_| bad())?);
    Ok(match unit {
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        "w" => Duration::weeks(n),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(
            human_span(time::Duration::days(396) + time::Duration::hours(23)),
            "396 days"
        );
        assert_eq!(human_span(-time::Duration::hours(1)), "1 hour");
        assert_eq!(human_span(time::Duration::seconds(5)), "5 seconds");
        assert_eq!(compact_span(time::Duration::days(397)), "397d");
        assert_eq!(compact_span(-time::Duration::minutes(90)), "1h");
        assert_eq!(compact_span(time::Duration::seconds(30)), "0m");
    }

    #[test]
    fn periods() {
        assert_eq!(
            parse_period("--within value", "30d").unwrap(),
            time::Duration::days(30)
        );
        assert_eq!(
            parse_period("--within value", "12h").unwrap(),
            time::Duration::hours(12)
        );
        assert_eq!(
            parse_period("--within value", "2w").unwrap(),
            time::Duration::weeks(2)
        );
        assert_eq!(
            parse_period("--within value", "90m").unwrap(),
            time::Duration::minutes(90)
        );
        assert_eq!(
            parse_period("--within value", "0d").unwrap(),
            time::Duration::ZERO
        );
        for bad in [
            "",
            "d",
            "30",
            "30x",
            "-1d",
            "1.5d",
            "30 d",
            "99999999999d",
            "3é",
        ] {
            let e = parse_period("--within value", bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("'{bad}'")) && e.contains("30d, 12h, 2w, 90m"),
                "{bad}: {e}"
            );
        }
    }
}
