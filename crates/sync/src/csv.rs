//! RFC 4180 fields: quoted when they hold a comma, quote or line break.

use std::fmt::Write as _;

/// Appends one CSV record (and its line break) to `out`.
pub(crate) fn record(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            let _ = write!(out, "\"{}\"", field.replace('"', "\"\""));
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

/// Minor units as a decimal string with `exponent` decimals: `-1250, 2` → `-12.50`.
pub(crate) fn major(minor: i64, exponent: u8) -> String {
    if exponent == 0 {
        return minor.to_string();
    }
    let scale = 10_i128.pow(u32::from(exponent));
    let value = i128::from(minor);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.abs();
    format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = usize::from(exponent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_amounts() {
        let mut out = String::new();
        record(&mut out, &["a", "b,c", "say \"hi\""]);
        assert_eq!(out, "a,\"b,c\",\"say \"\"hi\"\"\"\r\n");
        assert_eq!(major(-1250, 2), "-12.50");
        assert_eq!(major(5, 2), "0.05");
        assert_eq!(major(1234, 0), "1234");
        assert_eq!(major(1, 3), "0.001");
    }
}
