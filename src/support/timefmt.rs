//! Time formatting used in output, the ledger and the manifest.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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
}
