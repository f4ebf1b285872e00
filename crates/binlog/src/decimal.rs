//! MySQL's binary DECIMAL format (`decimal2bin`), decoded to the text MySQL prints.
//!
//! A DECIMAL(p, s) has `p - s` integer and `s` fraction digits. Each side is cut into groups of
//! nine digits stored as 4-byte big-endian integers; the integer side's leftover (most
//! significant) digits and the fraction side's leftover (least significant) digits take
//! [`DIGIT_BYTES`]`[n]` bytes. Layout: leading integer leftover, whole integer groups, whole
//! fraction groups, trailing fraction leftover. The top bit of the first byte is flipped (set
//! means non-negative) and a negative value has every byte inverted.

use crate::error::Reason;

/// Bytes needed for 0..=9 decimal digits.
const DIGIT_BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const DIGITS_PER_GROUP: usize = 9;
const POW10: [u32; 10] =
    [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/// Largest precision MySQL and MariaDB accept.
pub(crate) const MAX_PRECISION: u8 = 65;

/// Precision and scale of a DECIMAL column, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecimalSpec {
    precision: u8,
    scale: u8,
}

impl DecimalSpec {
    pub(crate) fn new(precision: u8, scale: u8) -> Result<Self, Reason> {
        if precision == 0 || precision > MAX_PRECISION {
            return Err(Reason::BadMetadata("DECIMAL precision must be 1..=65"));
        }
        if scale > precision {
            return Err(Reason::BadMetadata("DECIMAL scale exceeds precision"));
        }
        Ok(Self { precision, scale })
    }

    fn int_digits(self) -> usize {
        usize::from(self.precision - self.scale)
    }

    fn frac_digits(self) -> usize {
        usize::from(self.scale)
    }

    /// Size of the binary form in bytes.
    pub(crate) fn binary_len(self) -> usize {
        let (i, f) = (self.int_digits(), self.frac_digits());
        (i / DIGITS_PER_GROUP + f / DIGITS_PER_GROUP) * 4
            + DIGIT_BYTES[i % DIGITS_PER_GROUP]
            + DIGIT_BYTES[f % DIGITS_PER_GROUP]
    }

    /// Decodes exactly [`binary_len`](Self::binary_len) bytes into MySQL's text form:
    /// optional `-`, the integer part without leading zeros (`0` if it is zero), and for a
    /// non-zero scale a point and exactly `scale` digits. Zero never has a sign.
    pub(crate) fn decode(self, bytes: &[u8]) -> Result<String, Reason> {
        if bytes.len() != self.binary_len() {
            return Err(Reason::BadLength { length: bytes.len() as u64, available: bytes.len() });
        }
        let negative = bytes[0] & 0x80 == 0;
        let mut groups = Groups { bytes, pos: 0, invert: if negative { 0xFF } else { 0 } };

        let (int_digits, frac_digits) = (self.int_digits(), self.frac_digits());
        // Sign, integer digits, point, fraction digits; and a lone "0" when there are no integer digits.
        // Built as bytes (ASCII only), checked as UTF-8 once at the end.
        let mut text: Vec<u8> = Vec::with_capacity(int_digits.max(1) + frac_digits + 2);
        if negative {
            text.push(b'-');
        }
        let mut all_zero = true;

        // Integer part: the leftover group first, then whole groups; leading zeros suppressed.
        let mut started = false;
        let lead = int_digits % DIGITS_PER_GROUP;
        let int_group_sizes = std::iter::once(lead)
            .filter(|&d| d > 0)
            .chain(std::iter::repeat_n(DIGITS_PER_GROUP, int_digits / DIGITS_PER_GROUP));
        for digits in int_group_sizes {
            let value = groups.next(digits)?;
            if started {
                push_padded(&mut text, value, digits);
            } else if value != 0 {
                push_padded(&mut text, value, 0);
                started = true;
            }
        }
        if started {
            all_zero = false;
        } else {
            text.push(b'0');
        }

        // Fraction part: whole groups, then the leftover group, all zero-padded.
        if frac_digits > 0 {
            text.push(b'.');
            let trail = frac_digits % DIGITS_PER_GROUP;
            let frac_group_sizes = std::iter::repeat_n(DIGITS_PER_GROUP, frac_digits / DIGITS_PER_GROUP)
                .chain(std::iter::once(trail).filter(|&d| d > 0));
            for digits in frac_group_sizes {
                let value = groups.next(digits)?;
                all_zero &= value == 0;
                push_padded(&mut text, value, digits);
            }
        }

        if negative && all_zero {
            text.remove(0);
        }
        String::from_utf8(text).map_err(|_| Reason::InvalidValue("DECIMAL text"))
    }
}

/// Reads digit groups off the binary form, undoing the sign bit flip and the inversion.
struct Groups<'b> {
    bytes: &'b [u8],
    pos: usize,
    invert: u8,
}

impl Groups<'_> {
    /// The next group holding `digits` digits, checked to be below `10^digits`.
    fn next(&mut self, digits: usize) -> Result<u32, Reason> {
        let len = DIGIT_BYTES[digits];
        let mut value = 0u32;
        for i in self.pos..self.pos + len {
            // Length was checked against binary_len, so `get` never fails; stay panic-free anyway.
            let mut byte = *self.bytes.get(i).ok_or(Reason::InvalidValue("DECIMAL layout"))?;
            if i == 0 {
                byte ^= 0x80;
            }
            value = (value << 8) | u32::from(byte ^ self.invert);
        }
        self.pos += len;
        if value >= POW10[digits] {
            return Err(Reason::InvalidValue("DECIMAL digit group out of range"));
        }
        Ok(value)
    }
}

/// Appends `value` in decimal, left-padded with zeros to `width` digits.
fn push_padded(text: &mut Vec<u8>, mut value: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut start = buf.len();
    while value > 0 {
        start -= 1;
        buf[start] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    let start = start.min(buf.len() - width.min(buf.len()));
    text.extend_from_slice(&buf[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(p: u8, s: u8, bytes: &[u8]) -> String {
        let spec = DecimalSpec::new(p, s).unwrap();
        assert_eq!(spec.binary_len(), bytes.len(), "test vector length for ({p},{s})");
        spec.decode(bytes).unwrap()
    }

    #[test]
    fn sizes() {
        // (10,2): 8 integer digits -> 4 bytes, 2 fraction digits -> 1 byte.
        assert_eq!(DecimalSpec::new(10, 2).unwrap().binary_len(), 5);
        // (65,30): 35 = 3*9 + 8 -> 12 + 4; 30 = 3*9 + 3 -> 12 + 2.
        assert_eq!(DecimalSpec::new(65, 30).unwrap().binary_len(), 30);
        assert_eq!(DecimalSpec::new(5, 0).unwrap().binary_len(), 3);
        assert_eq!(DecimalSpec::new(4, 4).unwrap().binary_len(), 2);
        assert_eq!(DecimalSpec::new(18, 9).unwrap().binary_len(), 8);
    }

    #[test]
    fn decimal_10_2() {
        // 1234.56: integer 1234 = 0x000004D2 in 4 bytes, fraction 56 = 0x38 in 1 byte;
        // flip the top bit of the first byte: 80 00 04 D2 38.
        assert_eq!(dec(10, 2, &[0x80, 0x00, 0x04, 0xD2, 0x38]), "1234.56");
        // -1234.56: every byte of the positive form inverted.
        assert_eq!(dec(10, 2, &[0x7F, 0xFF, 0xFB, 0x2D, 0xC7]), "-1234.56");
        // -12.50: 12 = 0x0000000C, 50 = 0x32 -> 80 00 00 0C 32, inverted.
        assert_eq!(dec(10, 2, &[0x7F, 0xFF, 0xFF, 0xF3, 0xCD]), "-12.50");
        // 0.00 and 0.05 (integer part printed as "0").
        assert_eq!(dec(10, 2, &[0x80, 0, 0, 0, 0]), "0.00");
        assert_eq!(dec(10, 2, &[0x80, 0, 0, 0, 5]), "0.05");
        // -0.05 keeps its sign; an inverted zero ("-0.00") prints without one.
        assert_eq!(dec(10, 2, &[0x7F, 0xFF, 0xFF, 0xFF, 0xFA]), "-0.05");
        assert_eq!(dec(10, 2, &[0x7F, 0xFF, 0xFF, 0xFF, 0xFF]), "0.00");
    }

    #[test]
    fn decimal_5_0() {
        // 12345 in 3 bytes (5 digits): 0x003039 -> 80 30 39. No point for scale 0.
        assert_eq!(dec(5, 0, &[0x80, 0x30, 0x39]), "12345");
        assert_eq!(dec(5, 0, &[0x7F, 0xCF, 0xC6]), "-12345");
        assert_eq!(dec(5, 0, &[0x80, 0x00, 0x2A]), "42");
        assert_eq!(dec(5, 0, &[0x80, 0x00, 0x00]), "0");
    }

    #[test]
    fn decimal_4_4() {
        // No integer digits; 4 fraction digits in 2 bytes: 1234 = 0x04D2 -> 84 D2.
        assert_eq!(dec(4, 4, &[0x84, 0xD2]), "0.1234");
        assert_eq!(dec(4, 4, &[0x7B, 0x2D]), "-0.1234");
        assert_eq!(dec(4, 4, &[0x80, 0x00]), "0.0000");
    }

    #[test]
    fn decimal_65_30_extremes() {
        // Max: 35 nines . 30 nines. Integer: leftover 8 digits 99999999 = 05 F5 E0 FF, then
        // 3 groups of 999999999 = 3B 9A C9 FF; fraction: 3 such groups, then 999 = 03 E7 in 2 bytes.
        let mut max = vec![0x85, 0xF5, 0xE0, 0xFF];
        for _ in 0..6 {
            max.extend_from_slice(&[0x3B, 0x9A, 0xC9, 0xFF]);
        }
        max.extend_from_slice(&[0x03, 0xE7]);
        let nines = |n| "9".repeat(n);
        let text = format!("{}.{}", nines(35), nines(30));
        assert_eq!(dec(65, 30, &max), text);
        let min: Vec<u8> = max.iter().map(|b| !b).collect();
        assert_eq!(dec(65, 30, &min), format!("-{text}"));

        // 1.000...001 (30 fraction digits): integer groups 0,0,0,1, fraction 0,0,0,1.
        let mut one = vec![0x80, 0, 0, 0];
        one.extend_from_slice(&[0; 8]);
        one.extend_from_slice(&[0, 0, 0, 1]);
        one.extend_from_slice(&[0; 12]);
        one.extend_from_slice(&[0, 1]);
        assert_eq!(dec(65, 30, &one), format!("1.{}1", "0".repeat(29)));
        // Leading zero groups are skipped, inner zero groups padded: 1_000000000 . 0
        let mut big = vec![0x80, 0, 0, 0];
        big.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        big.extend_from_slice(&[0; 14]);
        assert_eq!(dec(65, 30, &big), format!("1000000000.{}", "0".repeat(30)));
    }

    #[test]
    fn decimal_18_9() {
        // Exactly one whole group on each side: 123456789.000000001.
        assert_eq!(
            dec(18, 9, &[0x87, 0x5B, 0xCD, 0x15, 0x00, 0x00, 0x00, 0x01]),
            "123456789.000000001"
        );
    }

    #[test]
    fn invalid_groups_and_specs() {
        // 5-digit leftover group holding 100000 (0x0186A0).
        let spec = DecimalSpec::new(5, 0).unwrap();
        assert!(spec.decode(&[0x81, 0x86, 0xA0]).is_err());
        assert!(spec.decode(&[0x80, 0x00]).is_err());
        // Whole group 1_000_000_000 = 0x3B9ACA00.
        assert!(DecimalSpec::new(9, 0).unwrap().decode(&[0xBB, 0x9A, 0xCA, 0x00]).is_err());
        assert!(DecimalSpec::new(0, 0).is_err());
        assert!(DecimalSpec::new(66, 0).is_err());
        assert!(DecimalSpec::new(4, 5).is_err());
    }
}
