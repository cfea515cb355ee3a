use std::fmt;
use std::str::FromStr;

use crate::id::{IdError, SegmentId, TraceId};

/// The `X-Amzn-Trace-Id` header (also `_X_AMZN_TRACE_ID` in Lambda):
/// `Root=1-…;Parent=…;Sampled=1`, with `Self`, `Lineage` and any other field
/// carried through unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeader {
    /// `Root`: the trace id.
    pub root: Option<TraceId>,
    /// `Parent`: the id of the caller's segment or subsegment.
    pub parent: Option<SegmentId>,
    /// `Sampled`: the upstream sampling decision.
    pub sampled: Option<Sampled>,
    /// `Self`: set by load balancers, kept verbatim.
    pub self_id: Option<String>,
    /// `Lineage`: set by Lambda for recursion detection, kept verbatim.
    pub lineage: Option<String>,
    /// Any other `key=value` field, in arrival order.
    pub extra: Vec<(String, String)>,
}

/// The `Sampled` field of a trace header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampled {
    /// `Sampled=1`.
    Yes,
    /// `Sampled=0`.
    No,
    /// `Sampled=?`: the caller asks the callee to decide and report back.
    Requested,
}

/// Why a string is not a trace header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The header holds no field at all.
    #[error("trace header is empty")]
    Empty,
    /// A field is not of the `key=value` form.
    #[error("trace header field {0:?} is not key=value")]
    NotKeyValue(String),
    /// `Root` or `Parent` is not a valid id.
    #[error(transparent)]
    Id(#[from] IdError),
    /// `Sampled` is not `0`, `1` or `?`.
    #[error("trace header Sampled must be 0, 1 or ?, got {0:?}")]
    Sampled(String),
}

impl FromStr for TraceHeader {
    type Err = HeaderError;

    fn from_str(text: &str) -> Result<Self, HeaderError> {
        let mut header = TraceHeader::default();
        let mut fields = 0;
        for field in text.split(';').map(str::trim).filter(|field| !field.is_empty()) {
            fields += 1;
            let (key, value) = field.split_once('=').ok_or_else(|| HeaderError::NotKeyValue(field.into()))?;
            let (key, value) = (key.trim(), value.trim());
            if key.eq_ignore_ascii_case("Root") {
                header.root = Some(value.parse()?);
            } else if key.eq_ignore_ascii_case("Parent") {
                header.parent = Some(value.parse()?);
            } else if key.eq_ignore_ascii_case("Sampled") {
                header.sampled = Some(match value {
                    "1" => Sampled::Yes,
                    "0" => Sampled::No,
                    "?" => Sampled::Requested,
                    other => return Err(HeaderError::Sampled(other.into())),
                });
            } else if key.eq_ignore_ascii_case("Self") {
                header.self_id = Some(value.into());
            } else if key.eq_ignore_ascii_case("Lineage") {
                header.lineage = Some(value.into());
            } else {
                header.extra.push((key.into(), value.into()));
            }
        }
        if fields == 0 {
            return Err(HeaderError::Empty);
        }
        Ok(header)
    }
}

impl fmt::Display for TraceHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut separator = "";
        let mut field = |f: &mut fmt::Formatter<'_>, key: &str, value: &dyn fmt::Display| {
            let result = write!(f, "{separator}{key}={value}");
            separator = ";";
            result
        };
        if let Some(root) = &self.root {
            field(f, "Root", root)?;
        }
        if let Some(parent) = &self.parent {
            field(f, "Parent", parent)?;
        }
        if let Some(sampled) = self.sampled {
            let value = match sampled {
                Sampled::Yes => "1",
                Sampled::No => "0",
                Sampled::Requested => "?",
            };
            field(f, "Sampled", &value)?;
        }
        if let Some(self_id) = &self.self_id {
            field(f, "Self", self_id)?;
        }
        if let Some(lineage) = &self.lineage {
            field(f, "Lineage", lineage)?;
        }
        for (key, value) in &self.extra {
            field(f, key, value)?;
        }
        Ok(())
    }
}

/// The W3C Trace Context `traceparent` header:
/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase.
/// The trace id is the same 128 bits as X-Ray's (see [`TraceId::to_w3c`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id.
    pub trace_id: TraceId,
    /// The caller's span (an X-Ray segment or subsegment id).
    pub parent_id: SegmentId,
    /// The `sampled` flag (bit 0 of the flags): whether the caller records the trace.
    pub sampled: bool,
}

/// Why a string is not a `traceparent` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("traceparent must be 00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex> with non-zero ids, got {0:?}")]
pub struct TraceParentError(pub String);

impl TraceParent {
    /// The X-Ray header that continues the same trace: `Root`, `Parent`, and
    /// `Sampled` from the flag.
    pub fn to_trace_header(self) -> TraceHeader {
        TraceHeader {
            root: Some(self.trace_id),
            parent: Some(self.parent_id),
            sampled: Some(if self.sampled { Sampled::Yes } else { Sampled::No }),
            ..TraceHeader::default()
        }
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    /// Parses version `00` exactly; a later version as the specification
    /// asks, by its first four fields (anything after them must start with
    /// `-`). Version `ff`, uppercase hex and all-zero ids are invalid.
    fn from_str(text: &str) -> Result<Self, TraceParentError> {
        let invalid = || TraceParentError(text.into());
        let lower_hex = |field: &str| field.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        let text = text.trim();
        // version(2) - trace id(32) - parent id(16) - flags(2): 55 bytes.
        let fields = text.get(..55).filter(|fields| fields.is_ascii()).ok_or_else(invalid)?;
        let rest = &text[55..];
        let (version, trace_id, parent_id, flags) = (&fields[..2], &fields[3..35], &fields[36..52], &fields[53..]);
        let dashes = [2, 35, 52].iter().all(|&at| fields.as_bytes()[at] == b'-');
        let version_fits = match version {
            "00" => rest.is_empty(),
            "ff" => false,
            _ => rest.is_empty() || rest.starts_with('-'),
        };
        if !dashes || !version_fits || ![version, trace_id, parent_id, flags].into_iter().all(lower_hex) {
            return Err(invalid());
        }
        let trace_id = TraceId::from_w3c(trace_id).map_err(|_| invalid())?;
        let parent_id: SegmentId = parent_id.parse().map_err(|_| invalid())?;
        if trace_id.to_bytes() == [0; 16] || parent_id.to_u64() == 0 {
            return Err(invalid());
        }
        let flags = u8::from_str_radix(flags, 16).map_err(|_| invalid())?;
        Ok(TraceParent { trace_id, parent_id, sampled: flags & 1 == 1 })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = if self.sampled { "01" } else { "00" };
        write!(f, "00-{}-{}-{flags}", self.trace_id.to_w3c(), self.parent_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const W3C_EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_round_trips_and_converts_to_the_xray_header() {
        let parent: TraceParent = W3C_EXAMPLE.parse().unwrap();
        assert_eq!(parent.trace_id.to_string(), "1-4bf92f35-77b34da6a3ce929d0e0e4736");
        assert_eq!(parent.parent_id.to_string(), "00f067aa0ba902b7");
        assert!(parent.sampled);
        assert_eq!(parent.to_string(), W3C_EXAMPLE);
        assert_eq!(
            parent.to_trace_header().to_string(),
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        );
        let unsampled: TraceParent = W3C_EXAMPLE.replace("-01", "-00").parse().unwrap();
        assert!(!unsampled.sampled);
        assert_eq!(unsampled.to_trace_header().sampled, Some(Sampled::No));
        assert_eq!(unsampled.to_string(), W3C_EXAMPLE.replace("-01", "-00"));
    }

    #[test]
    fn traceparent_flags_other_than_sampled_are_read_and_not_written() {
        // Bit 1 is `random` (Trace Context level 2): sampled is bit 0 only.
        let parse = |flags: &str| W3C_EXAMPLE.replace("-01", &format!("-{flags}")).parse::<TraceParent>().unwrap();
        assert!(parse("03").sampled);
        assert!(!parse("02").sampled);
        assert!(parse("ff").sampled);
        assert_eq!(parse("03").to_string(), W3C_EXAMPLE);
    }

    #[test]
    fn traceparent_later_versions_are_read_by_their_first_four_fields() {
        let later = W3C_EXAMPLE.replacen("00", "01", 1);
        assert_eq!(later.parse::<TraceParent>().unwrap().to_string(), W3C_EXAMPLE);
        assert!(format!("{later}-what-comes-next").parse::<TraceParent>().is_ok());
        assert!(format!("{later}x").parse::<TraceParent>().is_err());
    }

    #[test]
    fn malformed_traceparents_are_rejected() {
        for bad in [
            String::new(),
            "00".into(),
            W3C_EXAMPLE[..54].into(),
            format!("{W3C_EXAMPLE}-extra"),
            W3C_EXAMPLE.replacen("00", "ff", 1),
            W3C_EXAMPLE.to_uppercase(),
            W3C_EXAMPLE.replace("4bf92f35", "4BF92F35"),
            W3C_EXAMPLE.replace("00f067aa0ba902b7", "00F067AA0BA902B7"),
            W3C_EXAMPLE.replace("-01", "-0X"),
            W3C_EXAMPLE.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
            W3C_EXAMPLE.replace("00f067aa0ba902b7", &"0".repeat(16)),
            W3C_EXAMPLE.replace('-', "_"),
            W3C_EXAMPLE.replacen("4bf9", "4bfg", 1),
            "é".repeat(28),
            format!("0é{}", &W3C_EXAMPLE[3..]),
        ] {
            let error = bad.parse::<TraceParent>().unwrap_err();
            assert_eq!(error, TraceParentError(bad.clone()), "{bad:?}");
        }
        assert_eq!(
            "x".parse::<TraceParent>().unwrap_err().to_string(),
            "traceparent must be 00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex> with non-zero ids, got \"x\""
        );
    }

    #[test]
    fn parses_the_lambda_header_with_lineage() {
        let text = "Root=1-6744b001-bbbbbbbbbbbbbbbbbbbbbbbb;Parent=2222222222222222;Sampled=1;Lineage=a87bd80c:0";
        let header: TraceHeader = text.parse().unwrap();
        assert_eq!(header.root.unwrap().to_string(), "1-6744b001-bbbbbbbbbbbbbbbbbbbbbbbb");
        assert_eq!(header.parent.unwrap().to_string(), "2222222222222222");
        assert_eq!(header.sampled, Some(Sampled::Yes));
        assert_eq!(header.lineage.as_deref(), Some("a87bd80c:0"));
        assert_eq!(header.to_string(), text);
    }

    #[test]
    fn passes_self_and_unknown_fields_through() {
        let text = "Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678;CalledFrom=app";
        let header: TraceHeader = text.parse().unwrap();
        assert_eq!(header.self_id.as_deref(), Some("1-67891234-12456789abcdef012345678"));
        assert_eq!(header.extra, vec![("CalledFrom".to_string(), "app".to_string())]);
        assert_eq!(
            header.to_string(),
            "Root=1-67891233-abcdef012345678912345678;Self=1-67891234-12456789abcdef012345678;CalledFrom=app"
        );
    }

    #[test]
    fn sampled_takes_zero_one_and_question_mark() {
        let parse =
            |value: &str| format!("Root=1-6744b001-bbbbbbbbbbbbbbbbbbbbbbbb;Sampled={value}").parse::<TraceHeader>();
        assert_eq!(parse("0").unwrap().sampled, Some(Sampled::No));
        assert_eq!(parse("?").unwrap().sampled, Some(Sampled::Requested));
        assert_eq!(parse("yes").unwrap_err().to_string(), "trace header Sampled must be 0, 1 or ?, got \"yes\"");
    }

    #[test]
    fn tolerates_spaces_and_a_trailing_separator() {
        let header: TraceHeader = " Root=1-6744b001-bbbbbbbbbbbbbbbbbbbbbbbb ; Sampled=1;".parse().unwrap();
        assert_eq!(header.to_string(), "Root=1-6744b001-bbbbbbbbbbbbbbbbbbbbbbbb;Sampled=1");
    }

    #[test]
    fn rejects_malformed_headers_with_the_reason() {
        assert_eq!("".parse::<TraceHeader>().unwrap_err().to_string(), "trace header is empty");
        assert_eq!(" ; ".parse::<TraceHeader>().unwrap_err(), HeaderError::Empty);
        assert_eq!(
            "Root".parse::<TraceHeader>().unwrap_err().to_string(),
            "trace header field \"Root\" is not key=value"
        );
        assert_eq!(
            "Root=1-xyz".parse::<TraceHeader>().unwrap_err().to_string(),
            "trace id must be 1-<8 hex digits>-<24 hex digits>, got \"1-xyz\""
        );
        assert_eq!(
            "Root=1-6744b001-bbbbbbbbbbbbbbbbbbbbbbbb;Parent=12".parse::<TraceHeader>().unwrap_err().to_string(),
            "segment id must be 16 hex digits, got \"12\""
        );
    }

    proptest! {
        #[test]
        fn traceparent_formatting_then_parsing_gives_the_same_ids(
            trace_id in any::<[u8; 16]>().prop_filter("non-zero", |id| *id != [0; 16]),
            parent_id in 1..=u64::MAX,
            sampled in any::<bool>(),
        ) {
            let parent = TraceParent { trace_id: TraceId::from_bytes(trace_id), parent_id: SegmentId::from_u64(parent_id), sampled };
            prop_assert_eq!(parent.to_string().parse::<TraceParent>().unwrap(), parent);
        }

        #[test]
        fn formatting_then_parsing_gives_the_same_header(
            root in proptest::option::of(any::<[u8; 16]>()),
            parent in proptest::option::of(any::<u64>()),
            sampled in proptest::option::of(prop_oneof![Just(Sampled::Yes), Just(Sampled::No), Just(Sampled::Requested)]),
            lineage in proptest::option::of("[a-z0-9]{8}:[0-9]"),
            extra in proptest::collection::vec(("[A-Z][a-zA-Z]{0,8}", "[a-z0-9-]{1,12}"), 0..3),
        ) {
            let extra: Vec<(String, String)> = extra
                .into_iter()
                .filter(|(key, _)| !["Root", "Parent", "Sampled", "Self", "Lineage"].iter().any(|k| k.eq_ignore_ascii_case(key)))
                .collect();
            let header = TraceHeader {
                root: root.map(TraceId::from_bytes),
                parent: parent.map(SegmentId::from_u64),
                sampled,
                self_id: None,
                lineage,
                extra,
            };
            let text = header.to_string();
            prop_assume!(!text.is_empty());
            prop_assert_eq!(text.parse::<TraceHeader>().unwrap(), header);
        }
    }
}
