//! OTLP/JSON: the same messages as protobuf, with the encodings the
//! specification gives JSON. Ids are hex strings (not base64, unlike
//! protobuf's canonical JSON), 64-bit integers may be strings or numbers,
//! enums may be numbers or their names, and unknown fields are ignored.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::proto::{AnyValue, ArrayValue, KeyValueList, Value};

/// Reads a hex id (`"5b8efff798038103d269b633813fc60c"`); empty for `""`.
pub(crate) fn hex<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = <&str>::deserialize(deserializer)?;
    if text.len() % 2 != 0 {
        return Err(de::Error::custom(format_args!("id {text:?} is not whole bytes of hex")));
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let digits = std::str::from_utf8(pair).ok();
            digits.and_then(|digits| u8::from_str_radix(digits, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| de::Error::custom(format_args!("id {text:?} is not hex")))
}

/// Reads an unsigned 64-bit integer written as a number or a string.
pub(crate) fn unsigned<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = deserializer.deserialize_any(IntegerVisitor)?;
    u64::try_from(number).map_err(de::Error::custom)
}

fn signed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = deserializer.deserialize_any(IntegerVisitor)?;
    i64::try_from(number).map_err(de::Error::custom)
}

/// An integer written as a number or as a string of digits.
struct IntegerVisitor;

impl Visitor<'_> for IntegerVisitor {
    type Value = i128;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an integer, as a number or a string")
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<i128, E> {
        Ok(number.into())
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<i128, E> {
        Ok(number.into())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<i128, E> {
        text.parse().map_err(|_| E::custom(format_args!("{text:?} is not an integer")))
    }
}

/// Reads `Span.kind`: a number, or a name such as `SPAN_KIND_SERVER`.
pub(crate) fn span_kind<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    enumeration(deserializer, "SPAN_KIND_", &["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"])
}

/// Reads `Status.code`: a number, or a name such as `STATUS_CODE_ERROR`.
pub(crate) fn status_code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    enumeration(deserializer, "STATUS_CODE_", &["UNSET", "OK", "ERROR"])
}

fn enumeration<'de, D: Deserializer<'de>>(deserializer: D, prefix: &str, names: &[&str]) -> Result<i32, D::Error> {
    struct EnumVisitor<'a> {
        prefix: &'a str,
        names: &'a [&'a str],
    }
    impl Visitor<'_> for EnumVisitor<'_> {
        type Value = i32;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(formatter, "a number or a {}* name", self.prefix)
        }

        fn visit_u64<E: de::Error>(self, number: u64) -> Result<i32, E> {
            i32::try_from(number).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, number: i64) -> Result<i32, E> {
            i32::try_from(number).map_err(E::custom)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<i32, E> {
            text.strip_prefix(self.prefix)
                .and_then(|name| self.names.iter().position(|known| *known == name))
                .map(|position| position as i32)
                .ok_or_else(|| E::custom(format_args!("unknown value {text:?}")))
        }
    }
    deserializer.deserialize_any(EnumVisitor { prefix, names })
}

// An AnyValue is an object with one member named after the kind of value;
// `{}` is the empty value.
impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AnyValueVisitor)
    }
}

struct AnyValueVisitor;

impl<'de> Visitor<'de> for AnyValueVisitor {
    type Value = AnyValue;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an OTLP AnyValue object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
        let mut value = None;
        while let Some(key) = map.next_key::<&str>()? {
            let read = match key {
                "stringValue" => Value::String(map.next_value()?),
                "boolValue" => Value::Bool(map.next_value()?),
                "intValue" => Value::Int(map.next_value::<SignedValue>()?.0),
                "doubleValue" => Value::Double(map.next_value::<DoubleValue>()?.0),
                "arrayValue" => Value::Array(map.next_value::<ArrayValue>()?),
                "kvlistValue" => Value::KeyValueList(map.next_value::<KeyValueList>()?),
                "bytesValue" => Value::Bytes(base64(map.next_value()?).map_err(de::Error::custom)?),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                    continue;
                }
            };
            value = Some(read);
        }
        Ok(AnyValue { value })
    }
}

struct SignedValue(i64);

impl<'de> Deserialize<'de> for SignedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        signed(deserializer).map(SignedValue)
    }
}

/// A double, which JSON may also write as `"NaN"`, `"Infinity"` or
/// `"-Infinity"`.
struct DoubleValue(f64);

impl<'de> Deserialize<'de> for DoubleValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DoubleVisitor;
        impl Visitor<'_> for DoubleVisitor {
            type Value = f64;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
            }

            fn visit_f64<E: de::Error>(self, number: f64) -> Result<f64, E> {
                Ok(number)
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<f64, E> {
                Ok(number as f64)
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<f64, E> {
                Ok(number as f64)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<f64, E> {
                text.parse().map_err(|_| E::custom(format_args!("{text:?} is not a double")))
            }
        }
        deserializer.deserialize_any(DoubleVisitor).map(DoubleValue)
    }
}

/// Decodes base64, standard or URL-safe, with or without padding (proto3's
/// JSON mapping lets a writer choose).
fn base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&STANDARD, config)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&URL_SAFE, config).decode(text))
        .map_err(|_| format!("bytesValue {text:?} is not base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64("").unwrap(), b"");
        assert!(base64("a$").is_err());
    }

    #[test]
    fn any_value_reads_every_kind() {
        let read = |json: &str| serde_json::from_str::<AnyValue>(json).unwrap().value;
        assert_eq!(read(r#"{"intValue": 8080}"#), Some(Value::Int(8080)));
        assert_eq!(read(r#"{"intValue": "-7"}"#), Some(Value::Int(-7)));
        assert_eq!(read(r#"{"doubleValue": "NaN"}"#).map(|v| matches!(v, Value::Double(d) if d.is_nan())), Some(true));
        assert_eq!(read(r#"{"boolValue": true}"#), Some(Value::Bool(true)));
        assert_eq!(read("{}"), None);
        let array = read(r#"{"arrayValue": {"values": [{"stringValue": "a"}]}}"#);
        assert_eq!(
            array,
            Some(Value::Array(ArrayValue { values: vec![AnyValue { value: Some(Value::String("a".into())) }] }))
        );
    }
}
