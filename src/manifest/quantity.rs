//! Kubernetes resource quantities (`128Mi`, `1G`, `1.5e3`, `500m`) read as
//! a number of bytes. `k8s_openapi`'s `Quantity` is only the text; this is
//! the API server's grammar (`resource.ParseQuantity`):
//!
//! ```text
//! <quantity> ::= <sign><digits>[.<digits>]<suffix>
//! <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei          (powers of 1024)
//!              | n | u | m | "" | k | M | G | T | P | E   (powers of 1000)
//!              | e<signed integer> | E<signed integer>     (powers of 10)
//! ```
//!
//! A fraction of a byte is rounded up, as `Quantity.Value()` does.

/// Why a quantity could not be read as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not the grammar above (the API server's own wording).
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    /// Below zero.
    #[error("must be greater than or equal to 0")]
    Negative,
    /// More than 2^64 - 1 bytes, or more significant digits than kept.
    #[error("must be at most 18446744073709551615 bytes, with at most 30 significant digits")]
    OutOfRange,
}

/// Significant digits kept in the mantissa (fits a u128 with room for a
/// binary multiplier).
const MAX_DIGITS: usize = 30;

/// Reads `text` as a number of bytes, rounding a fraction up.
pub fn parse_bytes(text: &str) -> Result<u64, QuantityError> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
        return Err(QuantityError::Format);
    }
    let (exp10, binary_shift) = suffix_scale(suffix)?;

    // The digits as one integer, with the decimal point moved into the
    // exponent; zeros that carry no value are dropped first.
    let frac_part = frac_part.trim_end_matches('0');
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    if negative {
        return Err(QuantityError::Negative);
    }
    if digits.len() > MAX_DIGITS {
        return Err(QuantityError::OutOfRange);
    }
    let mantissa: u128 = digits.parse().map_err(|_| QuantityError::Format)?;
    let frac_len = i64::try_from(frac_part.len()).map_err(|_| QuantityError::OutOfRange)?;
    let exp10 = exp10 - frac_len;
    let scaled = mantissa
        .checked_mul(1u128 << binary_shift)
        .ok_or(QuantityError::OutOfRange)?;
    let bytes = if exp10 >= 0 {
        let factor = u32::try_from(exp10)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
            .ok_or(QuantityError::OutOfRange)?;
        scaled
            .checked_mul(factor)
            .ok_or(QuantityError::OutOfRange)?
    } else {
        match u32::try_from(-exp10)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
        {
            Some(divisor) => scaled.div_ceil(divisor),
            // Smaller than any divisor we can hold: a positive fraction
            // of one byte.
            None => 1,
        }
    };
    u64::try_from(bytes).map_err(|_| QuantityError::OutOfRange)
}

/// The suffix as (power of ten, power of two).
fn suffix_scale(suffix: &str) -> Result<(i64, u32), QuantityError> {
    let scale = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let exponent = suffix
                .strip_prefix(['e', 'E'])
                .filter(|e| !e.is_empty())
                .ok_or(QuantityError::Format)?;
            let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QuantityError::Format);
            }
            let e: i64 = exponent.parse().map_err(|_| QuantityError::OutOfRange)?;
            (e, 0)
        }
    };
    Ok(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_suffixes() {
        for (text, bytes) in [
            ("0", 0),
            ("1", 1),
            ("128", 128),
            ("1Ki", 1024),
            ("64Mi", 64 << 20),
            ("1Gi", 1 << 30),
            ("2Ti", 2 << 40),
            ("1Pi", 1 << 50),
            ("1Ei", 1 << 60),
            ("1k", 1000),
            ("1M", 1_000_000),
            ("5G", 5_000_000_000),
            ("1T", 1_000_000_000_000),
            ("1P", 1_000_000_000_000_000),
            ("1E", 1_000_000_000_000_000_000),
            ("+10Mi", 10 << 20),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn fractions_and_exponents() {
        for (text, bytes) in [
            ("1.5Gi", 3 << 29),
            ("0.5Ki", 512),
            (".5Ki", 512),
            ("2.Ki", 2048),
            ("1e3", 1000),
            ("1E3", 1000),
            ("1e+3", 1000),
            ("12e-1", 2),
            ("1.25e2", 125),
            ("500m", 1),
            ("1500m", 2),
            ("1n", 1),
            ("3000000u", 3),
            ("0.000Mi", 0),
            ("1.000000000000000000000000000000000000", 1),
            ("1e-400", 1),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn malformed_quantities_are_refused() {
        for text in [
            "", "Mi", ".", "1..2", "1.2.3", "1K", "1mi", "1 Mi", "1e", "1e+", "1ee3", "1Mi5", "x",
            "1Gb", "--1", "1e3.5",
        ] {
            assert_eq!(parse_bytes(text), Err(QuantityError::Format), "{text:?}");
        }
    }

    #[test]
    fn negative_and_huge_quantities_are_refused() {
        assert_eq!(parse_bytes("-1Mi"), Err(QuantityError::Negative));
        assert_eq!(parse_bytes("-0"), Ok(0));
        assert_eq!(parse_bytes("16Ei"), Err(QuantityError::OutOfRange));
        assert_eq!(parse_bytes("15Ei"), Ok(15 << 60));
        assert_eq!(parse_bytes("1e20"), Err(QuantityError::OutOfRange));
        assert_eq!(parse_bytes("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_bytes("18446744073709551616"),
            Err(QuantityError::OutOfRange)
        );
        assert_eq!(
            parse_bytes("1234567890123456789012345678901"),
            Err(QuantityError::OutOfRange)
        );
        assert_eq!(
            parse_bytes("1e99999999999999999999"),
            Err(QuantityError::OutOfRange)
        );
    }
}
