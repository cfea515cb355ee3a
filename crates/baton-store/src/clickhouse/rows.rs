//! Row encoding for ClickHouse: `RowBinary` written for inserts and read
//! back from selects, SQL literals, and times as `UInt64` nanoseconds.

use crate::Error;

/// Rows in ClickHouse's `RowBinary` format, for one `INSERT`.
#[derive(Default)]
pub(super) struct RowBinary {
    bytes: Vec<u8>,
    rows: usize,
}

impl RowBinary {
    /// Marks the start of a row (for counting only).
    pub(super) fn row(&mut self) -> &mut Self {
        self.rows += 1;
        self
    }

    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(super) fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    pub(super) fn bool(&mut self, value: bool) -> &mut Self {
        self.u8(u8::from(value))
    }

    /// A `Date`: days since the epoch.
    pub(super) fn date(&mut self, day: i64) -> &mut Self {
        self.bytes.extend_from_slice(&(day.clamp(0, i64::from(u16::MAX)) as u16).to_le_bytes());
        self
    }

    pub(super) fn u16(&mut self, value: u16) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub(super) fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub(super) fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub(super) fn i64(&mut self, value: i64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub(super) fn f64(&mut self, value: f64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn length(&mut self, mut length: usize) {
        // LEB128, as ClickHouse prefixes strings and arrays.
        loop {
            let byte = (length & 0x7f) as u8;
            length >>= 7;
            if length == 0 {
                self.bytes.push(byte);
                return;
            }
            self.bytes.push(byte | 0x80);
        }
    }

    /// A `String` (any bytes).
    pub(super) fn string(&mut self, value: impl AsRef<[u8]>) -> &mut Self {
        let value = value.as_ref();
        self.length(value.len());
        self.bytes.extend_from_slice(value);
        self
    }

    /// A `Nullable(String)`.
    pub(super) fn nullable_string(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.u8(0).string(value),
            None => self.u8(1),
        }
    }

    /// A `FixedString(16)`.
    pub(super) fn fixed16(&mut self, value: [u8; 16]) -> &mut Self {
        self.bytes.extend_from_slice(&value);
        self
    }

    /// An `Array(String)`.
    pub(super) fn strings<S: AsRef<[u8]>>(&mut self, values: &[S]) -> &mut Self {
        self.length(values.len());
        for value in values {
            self.string(value);
        }
        self
    }

    /// An `Array(UInt16)`.
    pub(super) fn u16s(&mut self, values: impl ExactSizeIterator<Item = u16>) -> &mut Self {
        self.length(values.len());
        for value in values {
            self.u16(value);
        }
        self
    }

    /// An `Array(Int64)`.
    pub(super) fn i64s(&mut self, values: impl ExactSizeIterator<Item = i64>) -> &mut Self {
        self.length(values.len());
        for value in values {
            self.i64(value);
        }
        self
    }
}

/// A `RowBinary` answer, read value by value in column order.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    /// Whether every row has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], Error> {
        if self.bytes.len() < count {
            return Err(Error::Corrupt("a ClickHouse answer ends in the middle of a row".into()));
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    pub(super) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn bool(&mut self) -> Result<bool, Error> {
        Ok(self.u8()? != 0)
    }

    /// A `Date`, as days since the epoch.
    pub(super) fn date(&mut self) -> Result<i64, Error> {
        Ok(i64::from(self.u16()?))
    }

    pub(super) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(super) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(super) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(super) fn i64(&mut self) -> Result<i64, Error> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub(super) fn f64(&mut self) -> Result<f64, Error> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn length(&mut self) -> Result<usize, Error> {
        let mut length = 0usize;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            length |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(length);
            }
        }
        Err(Error::Corrupt("a ClickHouse answer has an overlong length".into()))
    }

    /// A `String`'s bytes.
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let length = self.length()?;
        self.take(length)
    }

    /// A `String` that holds UTF-8 text.
    pub(super) fn string(&mut self) -> Result<String, Error> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|error| Error::Corrupt(error.to_string()))
    }

    /// A `Nullable(String)`.
    pub(super) fn nullable_string(&mut self) -> Result<Option<String>, Error> {
        if self.bool()? { Ok(None) } else { self.string().map(Some) }
    }

    /// A `FixedString(16)`.
    pub(super) fn fixed16(&mut self) -> Result<[u8; 16], Error> {
        self.array()
    }

    /// An `Array(String)` of UTF-8 text.
    pub(super) fn strings(&mut self) -> Result<Vec<String>, Error> {
        let count = self.length()?;
        (0..count).map(|_| self.string()).collect()
    }

    /// An `Array(UInt16)`.
    pub(super) fn u16s(&mut self) -> Result<Vec<u16>, Error> {
        let count = self.length()?;
        (0..count).map(|_| self.u16()).collect()
    }

    /// An `Array(Int64)`.
    pub(super) fn i64s(&mut self) -> Result<Vec<i64>, Error> {
        let count = self.length()?;
        (0..count).map(|_| self.i64()).collect()
    }
}

/// A SQL string literal holding `text`.
pub(super) fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for character in text.chars() {
        match character {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            '\0' => quoted.push_str("\\0"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    quoted
}

/// A SQL string literal holding any bytes (a `FixedString(16)` trace key).
pub(super) fn bytes_literal(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut literal = String::with_capacity(bytes.len() * 4 + 2);
    literal.push('\'');
    for byte in bytes {
        write!(literal, "\\x{byte:02x}").expect("writing to a string");
    }
    literal.push('\'');
    literal
}

/// Epoch seconds as nanoseconds, rounded exactly (not through a product of
/// floats, which at today's epoch is off by up to 128 ns); 0 for negative
/// or NaN seconds, `u64::MAX` past it.
pub(super) fn nanos(seconds: f64) -> u64 {
    if seconds.is_nan() || seconds <= 0.0 {
        return 0;
    }
    if seconds >= u64::MAX as f64 / 1e9 {
        return u64::MAX;
    }
    // seconds = mantissa * 2^exponent, exactly.
    let bits = seconds.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let (mantissa, exponent) = if biased == 0 {
        (bits & ((1 << 52) - 1), -1074)
    } else {
        ((bits & ((1 << 52) - 1)) | (1 << 52), biased - 1075)
    };
    let scaled = u128::from(mantissa) * 1_000_000_000;
    let value = if exponent >= 0 {
        scaled << exponent
    } else if exponent <= -128 {
        0
    } else {
        let shift = (-exponent) as u32;
        (scaled + (1u128 << (shift - 1))) >> shift
    };
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The seconds whose [`nanos`] are `nanos`: the exact inverse for every time
/// after mid-1970, where adjacent seconds values are over 2 ns apart.
pub(super) fn seconds(nanos_value: u64) -> f64 {
    // The quotient of floats is within a few values of the exact one;
    // the nearest that maps back wins.
    let guess = nanos_value as f64 / 1e9;
    let (mut below, mut above) = (guess, guess);
    for _ in 0..4 {
        for candidate in [above, below] {
            if nanos(candidate) == nanos_value {
                return candidate;
            }
        }
        (below, above) = (below.next_down(), above.next_up());
    }
    guess
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_as_written() {
        let mut rows = RowBinary::default();
        let long = "x".repeat(300);
        rows.row()
            .u8(7)
            .date(20_000)
            .u32(u32::MAX)
            .u64(1 << 40)
            .i64(-5)
            .f64(0.25)
            .string(&long)
            .nullable_string(None)
            .nullable_string(Some("é"))
            .fixed16([9; 16])
            .strings(&["a", ""])
            .u16s([1u16, 2].into_iter())
            .i64s([-1i64].into_iter());
        assert_eq!(rows.rows(), 1);
        let mut reader = Reader::new(rows.bytes());
        assert_eq!(reader.u8().unwrap(), 7);
        assert_eq!(reader.date().unwrap(), 20_000);
        assert_eq!(reader.u32().unwrap(), u32::MAX);
        assert_eq!(reader.u64().unwrap(), 1 << 40);
        assert_eq!(reader.i64().unwrap(), -5);
        assert_eq!(reader.f64().unwrap(), 0.25);
        assert_eq!(reader.string().unwrap(), long);
        assert_eq!(reader.nullable_string().unwrap(), None);
        assert_eq!(reader.nullable_string().unwrap().as_deref(), Some("é"));
        assert_eq!(reader.fixed16().unwrap(), [9; 16]);
        assert_eq!(reader.strings().unwrap(), ["a", ""]);
        assert_eq!(reader.u16s().unwrap(), [1, 2]);
        assert_eq!(reader.i64s().unwrap(), [-1]);
        assert!(reader.is_empty());
        assert!(reader.u8().is_err(), "past the end is an error, not a panic");
    }

    #[test]
    fn string_lengths_are_leb128() {
        let mut rows = RowBinary::default();
        rows.string([0u8; 128]);
        assert_eq!(&rows.bytes()[..2], [0x80, 0x01]);
    }

    #[test]
    fn literals_escape_quotes_and_bytes() {
        assert_eq!(quote(r"it's \ ok"), r"'it\'s \\ ok'");
        assert_eq!(bytes_literal(&[0, 0xff, b'\'']), r"'\x00\xff\x27'");
    }

    #[test]
    fn nanoseconds_are_exact_and_invert() {
        assert_eq!(nanos(1.5), 1_500_000_000);
        assert_eq!(nanos(0.0), 0);
        assert_eq!(nanos(-3.0), 0);
        assert_eq!(nanos(f64::NAN), 0);
        assert_eq!(nanos(1e30), u64::MAX);
        // The float product is off here; the exact rounding is not.
        let seconds_value = 1_732_550_000.123_456_7_f64;
        let exact = nanos(seconds_value);
        assert_eq!(exact / 1_000_000_000, 1_732_550_000);
        let mut value = 1_732_550_000.0_f64;
        for _ in 0..10_000 {
            value = value.next_up();
            assert_eq!(seconds(nanos(value)), value);
            assert!(nanos(value.next_up()) > nanos(value), "order is kept");
        }
        assert_eq!(seconds(nanos(100.0)), 100.0);
    }
}
