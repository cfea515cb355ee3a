use std::fmt;
use std::str::FromStr;

/// An X-Ray trace id: `1-` + 8 hex digits of the epoch second the trace began
/// + `-` + 96 random bits as 24 hex digits.
///
/// It holds the same 128 bits as a W3C trace id (`traceparent`): the epoch
/// field is the first 32 bits, so the two forms convert without loss.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId([u8; 16]);

/// A segment or subsegment id: 64 bits written as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(u64);

/// Why a string is not a trace or segment id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The trace id is not `1-<8 hex>-<24 hex>`.
    #[error("trace id must be 1-<8 hex digits>-<24 hex digits>, got {0:?}")]
    TraceId(String),
    /// The W3C trace id is not 32 hex digits.
    #[error("w3c trace id must be 32 hex digits, got {0:?}")]
    W3cTraceId(String),
    /// The segment id is not 16 hex digits.
    #[error("segment id must be 16 hex digits, got {0:?}")]
    SegmentId(String),
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes `hex` (an even number of hex digits) into `out`.
fn decode_hex(hex: &[u8], out: &mut [u8]) -> Option<()> {
    if hex.len() != out.len() * 2 {
        return None;
    }
    for (pair, slot) in hex.chunks_exact(2).zip(out.iter_mut()) {
        *slot = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
    }
    Some(())
}

fn write_hex(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for byte in bytes {
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}

// === impl TraceId ===

impl TraceId {
    /// Builds a trace id from its 16 bytes (the W3C byte order).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        TraceId(bytes)
    }

    /// A new trace id: `epoch` (seconds) and the low 96 bits of `random`.
    pub fn from_parts(epoch: u32, random: u128) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&epoch.to_be_bytes());
        bytes[4..].copy_from_slice(&random.to_be_bytes()[4..]);
        TraceId(bytes)
    }

    /// The 16 bytes of the id, epoch first.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// The epoch second written in the id (when the trace began, for ids made
    /// by an X-Ray SDK).
    pub fn epoch(self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// Parses the 32-hex-digit W3C form.
    pub fn from_w3c(hex: &str) -> Result<Self, IdError> {
        let mut bytes = [0u8; 16];
        decode_hex(hex.as_bytes(), &mut bytes).ok_or_else(|| IdError::W3cTraceId(hex.into()))?;
        Ok(TraceId(bytes))
    }

    /// Parses either form: X-Ray's `1-…-…` or the 32-hex-digit W3C id
    /// (what an OpenTelemetry user holds).
    pub fn parse_any(text: &str) -> Result<Self, IdError> {
        if text.len() == 32 { Self::from_w3c(text) } else { text.parse() }
    }

    /// The 32-hex-digit W3C form.
    pub fn to_w3c(self) -> String {
        W3c(self).to_string()
    }
}

struct W3c(TraceId);

impl fmt::Display for W3c {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(&self.0.0, f)
    }
}

impl FromStr for TraceId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 35 && bytes[0] == b'1' && bytes[1] == b'-' && bytes[10] == b'-';
        let mut id = [0u8; 16];
        let decoded = shaped
            && decode_hex(&bytes[2..10], &mut id[..4]).is_some()
            && decode_hex(&bytes[11..], &mut id[4..]).is_some();
        if decoded { Ok(TraceId(id)) } else { Err(IdError::TraceId(text.into())) }
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("1-")?;
        write_hex(&self.0[..4], f)?;
        f.write_str("-")?;
        write_hex(&self.0[4..], f)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

// === impl SegmentId ===

impl SegmentId {
    /// Builds an id from its 64 bits.
    pub fn from_u64(value: u64) -> Self {
        SegmentId(value)
    }

    /// The 64 bits of the id.
    pub fn to_u64(self) -> u64 {
        self.0
    }
}

impl FromStr for SegmentId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        let mut bytes = [0u8; 8];
        decode_hex(text.as_bytes(), &mut bytes).ok_or_else(|| IdError::SegmentId(text.into()))?;
        Ok(SegmentId(u64::from_be_bytes(bytes)))
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

// TraceId travels as its text form in every JSON Baton writes.
impl serde::Serialize for TraceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TraceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_new_trace_id_is_its_epoch_and_96_random_bits() {
        let id = TraceId::from_parts(0x6744_b000, 0xffff_ffff_0123_4567_89ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "1-6744b000-0123456789abcdef01234567");
        assert_eq!(id.epoch(), 0x6744_b000);
    }

    #[test]
    fn trace_id_round_trips_and_converts_to_w3c() {
        let id: TraceId = "1-6744c000-0123456789abcdef01234567".parse().unwrap();
        assert_eq!(id.to_string(), "1-6744c000-0123456789abcdef01234567");
        assert_eq!(id.to_w3c(), "6744c0000123456789abcdef01234567");
        assert_eq!(TraceId::from_w3c("6744c0000123456789abcdef01234567").unwrap(), id);
        assert_eq!(id.epoch(), 0x6744c000);
        assert_eq!(TraceId::parse_any("6744c0000123456789abcdef01234567").unwrap(), id);
        assert_eq!(TraceId::parse_any("1-6744c000-0123456789abcdef01234567").unwrap(), id);
        assert!(TraceId::parse_any("6744c0000123456789abcdef0123456z").is_err());
    }

    #[test]
    fn trace_id_accepts_upper_case_and_prints_lower_case() {
        let id: TraceId = "1-6744C000-0123456789ABCDEF01234567".parse().unwrap();
        assert_eq!(id.to_string(), "1-6744c000-0123456789abcdef01234567");
    }

    #[test]
    fn malformed_trace_ids_are_rejected_with_the_shape() {
        for bad in [
            "",
            "1-6744c000",
            "2-6744c000-0123456789abcdef01234567",
            "1-6744c00-00123456789abcdef01234567",
            "1-6744c000-0123456789abcdef0123456",
            "1-6744c000-0123456789abcdef0123456g",
            "1_6744c000-0123456789abcdef01234567",
            "1-6744c000-0123456789abcdef012345678",
        ] {
            let error = bad.parse::<TraceId>().unwrap_err();
            assert_eq!(error.to_string(), format!("trace id must be 1-<8 hex digits>-<24 hex digits>, got {bad:?}"));
        }
        assert!(TraceId::from_w3c("6744c0000123456789abcdef0123456").is_err());
    }

    #[test]
    fn segment_id_round_trips() {
        let id: SegmentId = "53995c3f42cd8ad8".parse().unwrap();
        assert_eq!(id.to_string(), "53995c3f42cd8ad8");
        assert_eq!(id.to_u64(), 0x53995c3f42cd8ad8);
        assert_eq!("0000000000000001".parse::<SegmentId>().unwrap().to_string(), "0000000000000001");
        for bad in ["", "53995c3f42cd8ad", "53995c3f42cd8ad8a", "53995c3f42cd8adz", "-3995c3f42cd8ad8"] {
            assert_eq!(
                bad.parse::<SegmentId>().unwrap_err().to_string(),
                format!("segment id must be 16 hex digits, got {bad:?}")
            );
        }
    }

    proptest! {
        #[test]
        fn any_trace_id_round_trips(bytes in any::<[u8; 16]>()) {
            let id = TraceId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<TraceId>().unwrap(), id);
            prop_assert_eq!(TraceId::from_w3c(&id.to_w3c()).unwrap(), id);
        }

        #[test]
        fn any_segment_id_round_trips(value in any::<u64>()) {
            let id = SegmentId::from_u64(value);
            prop_assert_eq!(id.to_string().parse::<SegmentId>().unwrap(), id);
        }
    }
}
