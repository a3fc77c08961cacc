//! Kubernetes resource quantities (`resource.Quantity`): `100m`, `1.5Gi`, `2e3`, `128974848`.
//! A [`Quantity`] is parsed from the API's string form, compared by value, and printed in
//! upstream's canonical form (`1.5Gi` reads back as `1536Mi`, `1000` as `1k`, `0.5` as `500m`),
//! keeping the family of suffix it was written with (decimal SI, binary SI or an exponent).
//!
//! Values are kept exactly, in nano units (the finest suffix); anything finer is rounded up,
//! as upstream does. This module owns the arithmetic only; which resource a quantity measures
//! (cpu, memory) is its caller's business.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// The regular expression upstream names when a quantity does not parse.
pub const QUANTITY_REGEX: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Nano units per whole unit.
const NANO: i128 = 1_000_000_000;

/// The largest magnitude kept, in nano units: beyond any real resource amount, small enough
/// that no arithmetic here overflows.
const MAX_NANOS: i128 = 10i128.pow(36);

/// How a quantity was written, which is how it is printed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Powers of ten with SI suffixes: `n`, `u`, `m`, none, `k`, `M`, `G`, `T`, `P`, `E`.
    DecimalSi,
    /// Powers of 1024: `Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`.
    BinarySi,
    /// Powers of ten as exponents: `2e3`, `1E-3`.
    DecimalExponent,
}

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string does not have a quantity's shape.
    #[error("quantities must match the regular expression '{QUANTITY_REGEX}'")]
    Format,
    /// The number has a suffix upstream does not know.
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// The number is too large to keep.
    #[error("quantity is too large")]
    TooLarge,
}

/// A resource amount, exact to a billionth, compared by value (`1Gi == 1073741824`).
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl Quantity {
    /// Parses the API form of a quantity.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let (number, suffix) = split_number(text)?;
        let (base, exponent, format) = interpret_suffix(suffix)?;
        let nanos = scale(number, base, exponent)?;
        Ok(Quantity { nanos, format })
    }

    /// A whole number of units in decimal SI form (`Quantity::from_units(3)` prints `3`).
    pub fn from_units(units: i64) -> Quantity {
        Quantity {
            nanos: i128::from(units) * NANO,
            format: Format::DecimalSi,
        }
    }

    /// Thousandths of a unit in decimal SI form (`Quantity::from_millis(250)` prints `250m`).
    pub fn from_millis(millis: i64) -> Quantity {
        Quantity {
            nanos: i128::from(millis) * 1_000_000,
            format: Format::DecimalSi,
        }
    }

    /// The format it prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The value in whole units, rounded up away from zero (upstream's `Value()`); saturates
    /// at the bounds of `i64`.
    pub fn value(&self) -> i64 {
        saturate(div_away_from_zero(self.nanos, NANO))
    }

    /// The value in thousandths, rounded up away from zero (upstream's `MilliValue()`), as
    /// the scheduler counts cpu; saturates at the bounds of `i64`.
    pub fn millis(&self) -> i64 {
        saturate(div_away_from_zero(self.nanos, 1_000_000))
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The sum, in this quantity's format.
    pub fn add(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: (self.nanos + other.nanos).clamp(-MAX_NANOS, MAX_NANOS),
            format: self.format,
        }
    }

    /// The difference, in this quantity's format.
    pub fn sub(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: (self.nanos - other.nanos).clamp(-MAX_NANOS, MAX_NANOS),
            format: self.format,
        }
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Quantity) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Quantity, QuantityError> {
        Quantity::parse(text)
    }
}

impl fmt::Display for Quantity {
    /// Upstream's canonical form: no fractional digits, the largest suffix that keeps the
    /// value exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        if self.format == Format::BinarySi
            && let Some(text) = binary_form(self.nanos)
        {
            return f.write_str(&text);
        }
        f.write_str(&decimal_form(self.nanos, self.format))
    }
}

/// The decimal digits of a number: its sign, whole part and fraction.
struct Number<'a> {
    negative: bool,
    whole: &'a str,
    fraction: &'a str,
}

/// Splits `text` into its number (`[+-]?digits[.digits]`) and its suffix.
fn split_number(text: &str) -> Result<(Number<'_>, &str), QuantityError> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let whole = &rest[..whole_len];
    let after = &rest[whole_len..];
    let (fraction, suffix) = match after.strip_prefix('.') {
        Some(f) => {
            let len = f.bytes().take_while(u8::is_ascii_digit).count();
            (&f[..len], &f[len..])
        }
        None => ("", after),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(QuantityError::Format);
    }
    let number = Number {
        negative,
        whole,
        fraction,
    };
    Ok((number, suffix))
}

/// The base (2 or 10), exponent and format a suffix stands for.
fn interpret_suffix(suffix: &str) -> Result<(u32, i32, Format), QuantityError> {
    let decimal = |e| Ok((10, e, Format::DecimalSi));
    let binary = |e| Ok((2, e, Format::BinarySi));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => exponent_suffix(suffix),
    }
}

/// `e3`, `E-6`, `e+2`: an explicit power of ten.
fn exponent_suffix(suffix: &str) -> Result<(u32, i32, Format), QuantityError> {
    let digits = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))
        .ok_or(QuantityError::Suffix)?;
    let unsigned = digits.trim_start_matches(['+', '-']);
    if unsigned.is_empty()
        || digits.len() - unsigned.len() > 1
        || !unsigned.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(QuantityError::Suffix);
    }
    let exponent: i32 = digits.parse().map_err(|_| QuantityError::TooLarge)?;
    Ok((10, exponent, Format::DecimalExponent))
}

/// The number times `base^exponent`, in nano units, rounded up away from zero.
fn scale(number: Number<'_>, base: u32, exponent: i32) -> Result<i128, QuantityError> {
    // digits / 10^fraction_len * base^exponent * 10^9
    let digits = format!("{}{}", number.whole, number.fraction);
    let digits = digits.trim_start_matches('0');
    if digits.len() > 38 {
        return Err(QuantityError::TooLarge);
    }
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| QuantityError::TooLarge)?
    };
    let mut ten_power = 9 - number.fraction.len() as i64;
    let mut value = mantissa;
    if base == 2 {
        value = value
            .checked_mul(1i128 << exponent)
            .ok_or(QuantityError::TooLarge)?;
    } else {
        ten_power += i64::from(exponent);
    }
    value = shift_decimal(value, ten_power)?;
    if value > MAX_NANOS {
        return Err(QuantityError::TooLarge);
    }
    Ok(if number.negative { -value } else { value })
}

/// `value * 10^power` for a non-negative value, rounding a fraction up.
fn shift_decimal(value: i128, power: i64) -> Result<i128, QuantityError> {
    if value == 0 {
        return Ok(0);
    }
    if power >= 0 {
        let factor = u32::try_from(power)
            .ok()
            .and_then(|p| 10i128.checked_pow(p))
            .ok_or(QuantityError::TooLarge)?;
        return value.checked_mul(factor).ok_or(QuantityError::TooLarge);
    }
    let Some(divisor) = u32::try_from(-power)
        .ok()
        .and_then(|p| 10i128.checked_pow(p))
    else {
        // Finer than anything kept: the smallest amount, rounded up.
        return Ok(1);
    };
    Ok(div_away_from_zero(value, divisor))
}

fn div_away_from_zero(value: i128, divisor: i128) -> i128 {
    let quotient = value / divisor;
    match value % divisor {
        0 => quotient,
        _ if value > 0 => quotient + 1,
        _ => quotient - 1,
    }
}

fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// A whole number of units as the largest exact power of 1024 (`1536Mi`); `None` when the
/// value has a fraction or is under 1024, which upstream prints in decimal instead.
fn binary_form(nanos: i128) -> Option<String> {
    if nanos % NANO != 0 {
        return None;
    }
    let units = nanos / NANO;
    if units.abs() < 1024 {
        return None;
    }
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut mantissa = units;
    let mut index = 0;
    while index < SUFFIXES.len() - 1 && mantissa % 1024 == 0 {
        mantissa /= 1024;
        index += 1;
    }
    Some(format!("{mantissa}{}", SUFFIXES[index]))
}

/// The value as `mantissa × 10^exponent` with the largest exponent (a multiple of three) that
/// leaves the mantissa whole, written with an SI suffix or an `e` exponent.
fn decimal_form(nanos: i128, format: Format) -> String {
    let mut mantissa = nanos;
    let mut exponent = -9;
    while mantissa % 1000 == 0 && exponent < 18 {
        mantissa /= 1000;
        exponent += 3;
    }
    let suffix = match format {
        Format::DecimalExponent if exponent == 0 => String::new(),
        Format::DecimalExponent => format!("e{exponent}"),
        _ => si_suffix(exponent).to_string(),
    };
    format!("{mantissa}{suffix}")
}

fn si_suffix(exponent: i32) -> &'static str {
    match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parses_and_prints_canonically() {
        let cases = [
            ("100m", "100m"),
            ("0.1", "100m"),
            ("0.5", "500m"),
            ("1", "1"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("1.5", "1500m"),
            ("1.5Gi", "1536Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1.5Ki", "1536"),
            ("512Ki", "512Ki"),
            ("0.5Ki", "512"),
            ("2e3", "2e3"),
            ("1.5e3", "1500"),
            ("1E-3", "1e-3"),
            ("12e6", "12e6"),
            ("1k", "1k"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("129M", "129M"),
            ("123Mi", "123Mi"),
            ("-100m", "-100m"),
            ("+2", "2"),
            ("0", "0"),
            ("0Gi", "0"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("1u", "1u"),
            ("1E", "1E"),
            ("8Ei", "8Ei"),
            (".5", "500m"),
            ("5.", "5"),
        ];
        for (text, canonical) in cases {
            assert_eq!(q(text).to_string(), canonical, "{text}");
            assert_eq!(q(canonical), q(text), "{canonical} reads back as {text}");
        }
    }

    #[test]
    fn remembers_its_format() {
        assert_eq!(q("1Mi").format(), Format::BinarySi);
        assert_eq!(q("1M").format(), Format::DecimalSi);
        assert_eq!(q("1e6").format(), Format::DecimalExponent);
    }

    #[test]
    fn refuses_what_upstream_refuses() {
        for text in [
            "", ".", "-", "abc", "1.2.3", "1K", "1mi", "1 Gi", "1e", "1e+-3", "Gi",
        ] {
            assert!(Quantity::parse(text).is_err(), "{text:?} parsed");
        }
        assert_eq!(
            Quantity::parse("abc").unwrap_err().to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(Quantity::parse("1e99"), Err(QuantityError::TooLarge));
    }

    #[test]
    fn compares_by_value() {
        assert!(q("100m") < q("1"));
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("2e3"), q("2k"));
        assert!(q("-1") < q("0"));
        let mut list = [q("1Gi"), q("100Mi"), q("1G"), q("512Ki")];
        list.sort();
        let printed: Vec<String> = list.iter().map(Quantity::to_string).collect();
        assert_eq!(printed, ["512Ki", "100Mi", "1G", "1Gi"]);
    }

    #[test]
    fn millis_and_values_round_up() {
        assert_eq!(q("100m").millis(), 100);
        assert_eq!(q("1.5").millis(), 1500);
        assert_eq!(q("100m").value(), 1);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("1n").millis(), 1);
        assert_eq!(q("-1n").millis(), -1);
        assert_eq!(q("2e3").value(), 2000);
        assert_eq!(q("8Ei").value(), i64::MAX);
    }

    #[test]
    fn arithmetic_keeps_the_left_format() {
        let sum = q("1Gi").add(&q("512Mi"));
        assert_eq!(sum.to_string(), "1536Mi");
        assert_eq!(q("1").sub(&q("250m")).to_string(), "750m");
        assert_eq!(Quantity::from_millis(250).to_string(), "250m");
        assert_eq!(Quantity::from_units(3).to_string(), "3");
        assert!(Quantity::from_units(0).is_zero());
        assert!(q("-1m").is_negative());
    }
}
