//! Durations as people write them in flags and configuration: a whole number and a unit, such
//! as `90s`, `30m`, `24h` or `7d`.

use std::time::Duration;

/// Parses a duration: a positive whole number followed by `s`, `m`, `h` or `d`.
///
/// # Errors
///
/// A message naming the text and the expected form.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration {text:?}: expected a number and a unit, such as 90s, 30m, 24h or 7d"
        )
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    if number == 0 {
        return Err(format!(
            "invalid duration {text:?}: must be longer than zero"
        ));
    }
    let seconds = number.checked_mul(unit_seconds).ok_or_else(|| {
        format!(
            "invalid duration {text:?}: too long, at most {} seconds",
            u64::MAX
        )
    })?;
    Ok(Duration::from_secs(seconds))
}

/// Formats a duration in the largest unit that divides it, the inverse of [`parse_duration`]
/// for whole seconds.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds != 0 && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        for bad in [
            "",
            "10",
            "h",
            "1.5h",
            "-1h",
            "0s",
            "1w",
            "99999999999999999999d",
            "5 m",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn duration_errors_name_the_rule() {
        let zero = parse_duration("0s").unwrap_err();
        assert_eq!(zero, "invalid duration \"0s\": must be longer than zero");
        let huge = parse_duration("999999999999999999d").unwrap_err();
        assert!(huge.contains("too long"), "{huge}");
        let unit = parse_duration("5w").unwrap_err();
        assert!(unit.contains("expected a number and a unit"), "{unit}");
    }

    #[test]
    fn durations_format_in_the_largest_unit() {
        for text in ["90s", "30m", "25h", "7d"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
    }
}
