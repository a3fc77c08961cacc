//! CronJob schedules in the standard five-field cron syntax that upstream accepts (it uses
//! `robfig/cron`'s standard parser): minute, hour, day of month, month, day of week, each a
//! comma-separated list of `*`/`?`, numbers, names (`jan`, `mon`), ranges (`1-5`) and steps
//! (`*/15`, `3/5`, `1-30/2`); or a descriptor (`@hourly`, `@daily`, `@every 1h30m`, …).
//! Errors read as that parser's do, since upstream puts them into its validation messages.
//!
//! The parsed [`Schedule`] keeps the matching minutes, hours, days and months as bit sets, for
//! a CronJob controller to find the next run; that search is not this module's job.
//! [`time_zone`] finds the zone a CronJob's `timeZone` names.

use std::fmt;

use jiff::tz::TimeZone;

/// Why a schedule does not parse, in `robfig/cron`'s words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(pub String);

/// A parsed schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Runs at the times whose fields are all set; bit `n` of a field stands for the value `n`.
    Fields {
        /// Minutes, 0–59.
        minutes: u64,
        /// Hours, 0–23.
        hours: u64,
        /// Days of the month, 1–31.
        days_of_month: u64,
        /// Months, 1–12.
        months: u64,
        /// Days of the week, 0 (Sunday)–6.
        days_of_week: u64,
        /// Whether the day-of-month or day-of-week field was `*` (cron then matches on the
        /// other alone): (day of month, day of week).
        day_stars: (bool, bool),
    },
    /// `@every <duration>`: runs every so many seconds (at least one).
    Every {
        /// The period in seconds.
        seconds: u64,
    },
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DAYS_OF_MONTH: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAYS_OF_WEEK: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

fn error(message: impl fmt::Display) -> CronError {
    CronError(message.to_string())
}

/// Parses a CronJob schedule (`*/5 * * * *`, `0 3 * * mon-fri`, `@daily`).
pub fn parse_schedule(spec: &str) -> Result<Schedule, CronError> {
    if spec.is_empty() {
        return Err(error("empty spec string"));
    }
    let spec = strip_time_zone(spec)?;
    if spec.starts_with('@') {
        return parse_descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = fields[..] else {
        return Err(error(format_args!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        )));
    };
    let days = (dom.starts_with(['*', '?']), dow.starts_with(['*', '?']));
    Ok(Schedule::Fields {
        minutes: parse_field(minute, &MINUTES)?,
        hours: parse_field(hour, &HOURS)?,
        days_of_month: parse_field(dom, &DAYS_OF_MONTH)?,
        months: parse_field(month, &MONTHS)?,
        days_of_week: parse_field(dow, &DAYS_OF_WEEK)?,
        day_stars: days,
    })
}

/// The IANA time zone `name` (`Europe/Paris`), as upstream's `time.LoadLocation` finds it:
/// from the system's zoneinfo (`/usr/share/zoneinfo`), else from the copy of the time zone
/// database built into cairn, so a machine without `tzdata` still knows every zone.
pub fn time_zone(name: &str) -> Result<TimeZone, CronError> {
    if name.is_empty() {
        return Err(error("timeZone must be nil or non-empty string"));
    }
    let part_ok = |p: &str| {
        (1..=14).contains(&p.len())
            && p != "."
            && p != ".."
            && !p.starts_with('-')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    };
    let unknown = || error(format_args!("unknown time zone {name}"));
    if !name.split('/').all(part_ok) {
        return Err(unknown());
    }
    jiff::tz::db().get(name).map_err(|_| unknown())
}

/// `TZ=Europe/Paris 0 3 * * *`: the parser takes the zone off the front (upstream's
/// validation refuses it separately and points to `timeZone`).
fn strip_time_zone(spec: &str) -> Result<&str, CronError> {
    if !(spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=")) {
        return Ok(spec);
    }
    let eq = spec.find('=').unwrap_or_default();
    match spec.find(' ') {
        Some(space) if space > eq + 1 => Ok(spec[space..].trim()),
        _ => Err(error(format_args!(
            "provided bad location {}: unknown time zone {}",
            &spec[eq + 1..],
            &spec[eq + 1..]
        ))),
    }
}

fn parse_descriptor(spec: &str) -> Result<Schedule, CronError> {
    let at = |minutes, hours, days_of_month, months, days_of_week| Schedule::Fields {
        minutes,
        hours,
        days_of_month,
        months,
        days_of_week,
        day_stars: (
            days_of_month == all(&DAYS_OF_MONTH),
            days_of_week == all(&DAYS_OF_WEEK),
        ),
    };
    let (any_dom, any_month, any_dow) = (all(&DAYS_OF_MONTH), all(&MONTHS), all(&DAYS_OF_WEEK));
    match spec {
        "@yearly" | "@annually" => Ok(at(1, 1, 1 << 1, 1 << 1, any_dow)),
        "@monthly" => Ok(at(1, 1, 1 << 1, any_month, any_dow)),
        "@weekly" => Ok(at(1, 1, any_dom, any_month, 1)),
        "@daily" | "@midnight" => Ok(at(1, 1, any_dom, any_month, any_dow)),
        "@hourly" => Ok(at(1, all(&HOURS), any_dom, any_month, any_dow)),
        _ => match spec.strip_prefix("@every ") {
            Some(duration) => {
                let seconds = parse_duration(duration).ok_or_else(|| {
                    error(format_args!(
                        "failed to parse duration {spec}: time: invalid duration {}",
                        super::quote(duration)
                    ))
                })?;
                Ok(Schedule::Every {
                    seconds: seconds.max(1),
                })
            }
            None => Err(error(format_args!("unrecognized descriptor: {spec}"))),
        },
    }
}

fn all(bounds: &Bounds) -> u64 {
    bits(bounds.min, bounds.max, 1)
}

fn bits(start: u32, end: u32, step: u32) -> u64 {
    (start..=end)
        .step_by(step as usize)
        .fold(0, |acc, n| acc | 1 << n)
}

/// A comma-separated list of ranges.
fn parse_field(field: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let mut set = 0;
    for range in field.split(',').filter(|r| !r.is_empty()) {
        set |= parse_range(range, bounds)?;
    }
    Ok(set)
}

/// `*`, `?`, `n`, `n-m`, each optionally `/step`; `n/step` runs from n to the maximum.
fn parse_range(expr: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end) = if low_high[0] == "*" || low_high[0] == "?" {
        (bounds.min, bounds.max)
    } else {
        let start = parse_int_or_name(low_high[0], bounds)?;
        match low_high.len() {
            1 => (start, start),
            2 => (start, parse_int_or_name(low_high[1], bounds)?),
            _ => return Err(error(format_args!("too many hyphens: {expr}"))),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1])?;
            if low_high.len() == 1 {
                end = bounds.max;
            }
            step
        }
        _ => return Err(error(format_args!("too many slashes: {expr}"))),
    };
    if start < bounds.min {
        return Err(error(format_args!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            bounds.min
        )));
    }
    if end > bounds.max {
        return Err(error(format_args!(
            "end of range ({end}) above maximum ({}): {expr}",
            bounds.max
        )));
    }
    if start > end {
        return Err(error(format_args!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        )));
    }
    if step == 0 {
        return Err(error(format_args!(
            "step of range should be a positive number: {expr}"
        )));
    }
    Ok(bits(start, end, step))
}

fn parse_int_or_name(expr: &str, bounds: &Bounds) -> Result<u32, CronError> {
    let lower = expr.to_ascii_lowercase();
    match bounds.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(i as u32 + bounds.min),
        None => parse_int(expr),
    }
}

/// Go's `strconv.Atoi`, refusing negatives, with the parser's messages.
fn parse_int(expr: &str) -> Result<u32, CronError> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(format_args!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            super::quote(expr)
        )));
    }
    let Ok(number) = expr.parse::<i64>() else {
        return Err(error(format_args!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: value out of range",
            super::quote(expr)
        )));
    };
    if number < 0 {
        return Err(error(format_args!(
            "negative number ({number}) not allowed: {expr}"
        )));
    }
    // Anything past the bounds check's reach is out of range anyway.
    Ok(u32::try_from(number).unwrap_or(u32::MAX))
}

/// Go's `time.ParseDuration` (`1h30m`, `90s`, `1.5h`), whole seconds rounded down; `None`
/// when it does not parse or is negative.
fn parse_duration(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        nanos += number * scale;
    }
    Some((nanos / 1e9) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &str) -> String {
        parse_schedule(spec).unwrap_err().0
    }

    #[test]
    fn time_zones_are_found_by_their_iana_names() {
        for name in [
            "UTC",
            "Etc/UTC",
            "Europe/Paris",
            "America/Argentina/Buenos_Aires",
        ] {
            assert!(time_zone(name).is_ok(), "{name}");
        }
        let paris = time_zone("Europe/Paris").unwrap();
        let noon = jiff::Timestamp::from_second(1_780_000_000).unwrap();
        assert_ne!(paris.to_offset(noon), TimeZone::UTC.to_offset(noon));
        for name in ["Mars/Olympus", "../etc/passwd", "Europe/-Paris", "Local"] {
            assert_eq!(
                time_zone(name).unwrap_err().0,
                format!("unknown time zone {name}")
            );
        }
        assert_eq!(
            time_zone("").unwrap_err().0,
            "timeZone must be nil or non-empty string"
        );
    }

    #[test]
    fn accepts_the_standard_forms() {
        for spec in [
            "* * * * *",
            "*/5 * * * *",
            "0 3 * * *",
            "0 0 1 1 *",
            "15,45 9-17 * * mon-fri",
            "0 0 * JAN,jul SUN",
            "3/5 * ? * *",
            "1-30/2 0 1 * 0",
            "0 12 * * 6",
            "@hourly",
            "@daily",
            "@midnight",
            "@weekly",
            "@monthly",
            "@yearly",
            "@annually",
            "@every 1h30m",
            "TZ=UTC 0 3 * * *",
        ] {
            assert!(
                parse_schedule(spec).is_ok(),
                "{spec}: {:?}",
                parse_schedule(spec)
            );
        }
    }

    #[test]
    fn fields_become_bit_sets() {
        let Schedule::Fields {
            minutes,
            hours,
            days_of_week,
            ..
        } = parse_schedule("*/15 9-11 * * mon-fri").unwrap()
        else {
            panic!("not fields");
        };
        assert_eq!(minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(hours, 1 << 9 | 1 << 10 | 1 << 11);
        assert_eq!(days_of_week, 0b0111110);
        assert_eq!(
            parse_schedule("@every 90s"),
            Ok(Schedule::Every { seconds: 90 })
        );
    }

    #[test]
    fn errors_read_as_upstreams() {
        assert_eq!(err(""), "empty spec string");
        assert_eq!(err("foo"), "expected exactly 5 fields, found 1: [foo]");
        assert_eq!(
            err("* * * *"),
            "expected exactly 5 fields, found 4: [* * * *]"
        );
        assert_eq!(
            err("60 * * * *"),
            "end of range (60) above maximum (59): 60"
        );
        assert_eq!(
            err("* 0-24 * * *"),
            "end of range (24) above maximum (23): 0-24"
        );
        assert_eq!(
            err("* * 0 * *"),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(
            err("* * * 13 *"),
            "end of range (13) above maximum (12): 13"
        );
        assert_eq!(err("* * * * 7"), "end of range (7) above maximum (6): 7");
        assert_eq!(
            err("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(
            err("*/0 * * * *"),
            "step of range should be a positive number: */0"
        );
        assert_eq!(err("1-2-3 * * * *"), "too many hyphens: 1-2-3");
        assert_eq!(err("*/2/3 * * * *"), "too many slashes: */2/3");
        assert_eq!(
            err("x * * * *"),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err("* * * foo *"),
            "failed to parse int from foo: strconv.Atoi: parsing \"foo\": invalid syntax"
        );
        assert_eq!(err("@fortnightly"), "unrecognized descriptor: @fortnightly");
        assert_eq!(
            err("@every soon"),
            "failed to parse duration @every soon: time: invalid duration \"soon\""
        );
    }
}
