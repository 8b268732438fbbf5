//! Human durations on the command line: `500ms`, `5s`, `2m`, `1.5s`, `250us`, `1h`.

use std::time::Duration;

/// Why a string is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: use a number and a unit, e.g. 500ms, 5s, 2m, 1h")]
pub struct InvalidDuration(pub String);

/// Units and their length in nanoseconds, longest suffix first so `ms` is not read as `s`.
const UNITS: [(&str, f64); 7] = [
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
];

/// Parses a duration: a non-negative decimal number followed by `ns`, `us`, `ms`, `s`,
/// `m` or `h` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_owned());
    let trimmed = text.trim();
    let (number, scale) = UNITS
        .iter()
        .filter_map(|&(unit, scale)| Some((trimmed.strip_suffix(unit)?, scale)))
        // "5ms" also ends in "s": the longest unit that matches wins.
        .min_by_key(|(number, _)| number.len())
        .unwrap_or((trimmed, 1e9));
    let number = number.trim();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let nanos = value * scale;
    // About 584 years: anything longer is a typo, not a wait.
    if !nanos.is_finite() || nanos >= u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("5s"), Ok(ms(5000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("10ns"), Ok(Duration::from_nanos(10)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("3"), Ok(ms(3000)));
        assert_eq!(parse_duration(" 7 ms "), Ok(ms(7)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "s",
            "ms",
            "-1s",
            "5x",
            "five s",
            "1e3s",
            "5 5s",
            "1.2.3s",
            "inf",
            "nan",
            "99999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }
}
