//! Human durations on the command line (`500ms`, `5s`, `2m`, `1.5s`, `250us`, `1h 30m`),
//! parsed by `humantime`, plus a bare number of seconds.

use std::time::Duration;

/// Why a string is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?} ({reason}): use a number and a unit, e.g. 500ms, 5s, 2m, 1h")]
pub struct InvalidDuration {
    /// What was given.
    pub text: String,
    /// What `humantime` said about it.
    pub reason: String,
}

/// Parses a duration as `humantime` does (units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`,
/// `d`, ..., fractions and sums such as `1.5s` or `1m 30s`); a bare whole number means
/// seconds.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let trimmed = text.trim();
    let invalid = |reason: String| InvalidDuration {
        text: text.to_owned(),
        reason,
    };
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| invalid(e.to_string()));
    }
    humantime::parse_duration(trimmed).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("1m 30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("10ns"), Ok(Duration::from_nanos(10)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("3"), Ok(ms(3000)));
        assert_eq!(parse_duration(" 7ms "), Ok(ms(7)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", "s", "ms", "-1s", "5x", "five s", "1e3s", "1.2.3s", "inf", "nan", "soon",
        ] {
            let error = parse_duration(bad).expect_err(bad);
            assert_eq!(error.text, bad);
            assert!(error.to_string().contains("e.g. 500ms"), "{error}");
        }
    }
}
