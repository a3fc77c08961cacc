//! Protobuf message bytes to the JSON of the same object, driven by the message table: JSON
//! names, base64 bytes, Quantity as its string, IntOrString as a number or a string, Time and
//! MicroTime as RFC 3339, inlined structs, and Go's zero-value omission.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::ProtobufError;
use super::schema::{Field, Message, Shape, Ty};
use super::wire::{Reader, WireType};

/// Decodes `bytes` as `message` into `out`, which may already hold fields (of an outer object
/// that inlines this one, or of an earlier occurrence of the same message, which protobuf merges).
pub(super) fn message(
    message: &'static Message,
    bytes: &[u8],
    out: &mut Map<String, Value>,
) -> Result<(), ProtobufError> {
    let malformed = |reason: String| ProtobufError::Malformed {
        message: message.name,
        reason,
    };
    let mut r = Reader::new(bytes);
    while let Some((tag, wire_type)) = r.key().map_err(malformed)? {
        let Some(field) = message.field(tag) else {
            r.skip(wire_type).map_err(malformed)?;
            continue;
        };
        match field.shape {
            Shape::Single => {
                if let (Ty::Message(inner), WireType::Len) = (field.ty, wire_type) {
                    let bytes = r.bytes().map_err(malformed)?;
                    let entry = out
                        .entry(field.json)
                        .or_insert_with(|| Value::Object(Map::new()));
                    match entry {
                        Value::Object(object) => self::message(inner, bytes, object)?,
                        _ => unreachable!("a message field always holds an object"),
                    }
                    continue;
                }
                match value(field, field.ty, wire_type, &mut r, message)? {
                    Some(v) if !(field.omit_zero && is_zero(&v)) => {
                        out.insert(field.json.into(), v);
                    }
                    _ => {
                        out.remove(field.json);
                    }
                }
            }
            Shape::Repeated => {
                let items = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = items else {
                    unreachable!("a repeated field always holds an array")
                };
                if wire_type == WireType::Len && packable(field.ty) {
                    let mut packed = Reader::new(r.bytes().map_err(malformed)?);
                    while !packed.is_empty() {
                        let item = value(field, field.ty, WireType::Varint, &mut packed, message)?;
                        items.extend(item);
                    }
                } else {
                    let item = value(field, field.ty, wire_type, &mut r, message)?;
                    items.push(item.unwrap_or(Value::Null));
                }
            }
            Shape::Map => {
                expect(field, wire_type, WireType::Len, message)?;
                let mut entry = Reader::new(r.bytes().map_err(malformed)?);
                let (mut key, mut val) = (String::new(), None);
                while let Some((tag, wire_type)) = entry.key().map_err(malformed)? {
                    match tag {
                        1 => {
                            expect(field, wire_type, WireType::Len, message)?;
                            key = utf8(entry.bytes().map_err(malformed)?, message)?;
                        }
                        2 => val = value(field, field.ty, wire_type, &mut entry, message)?,
                        _ => entry.skip(wire_type).map_err(malformed)?,
                    }
                }
                let val = match val {
                    Some(v) => v,
                    None => value(
                        field,
                        field.ty,
                        WireType::Len,
                        &mut Reader::new(&[0]),
                        message,
                    )?
                    .unwrap_or(Value::Null),
                };
                let object = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(object) = object else {
                    unreachable!("a map field always holds an object")
                };
                object.insert(key, val);
            }
            Shape::Inline => {
                let Ty::Message(inner) = field.ty else {
                    unreachable!("only messages are inlined")
                };
                expect(field, wire_type, WireType::Len, message)?;
                self::message(inner, r.bytes().map_err(malformed)?, out)?;
            }
        }
    }
    Ok(())
}

/// One value of `ty`; `None` for a value that JSON leaves out (a zero Time).
fn value(
    field: &Field,
    ty: Ty,
    wire_type: WireType,
    r: &mut Reader<'_>,
    message: &'static Message,
) -> Result<Option<Value>, ProtobufError> {
    let malformed = |reason: String| ProtobufError::Malformed {
        message: message.name,
        reason,
    };
    let want = match ty {
        Ty::Bool | Ty::Int32 | Ty::Int64 => WireType::Varint,
        _ => WireType::Len,
    };
    expect(field, wire_type, want, message)?;
    let value = match ty {
        Ty::String => Value::String(utf8(r.bytes().map_err(malformed)?, message)?),
        Ty::Bytes => Value::String(BASE64.encode(r.bytes().map_err(malformed)?)),
        Ty::Bool => Value::Bool(r.varint().map_err(malformed)? != 0),
        // int32 values are sign-extended to 64 bits on the wire.
        Ty::Int32 => Value::from(r.varint().map_err(malformed)? as i64 as i32),
        Ty::Int64 => Value::from(r.varint().map_err(malformed)? as i64),
        Ty::Message(inner) => {
            let mut object = Map::new();
            self::message(inner, r.bytes().map_err(malformed)?, &mut object)?;
            Value::Object(object)
        }
        Ty::Quantity => {
            let fields = scalars(r.bytes().map_err(malformed)?, message)?;
            match fields.string(1, message)? {
                Some(s) if !s.is_empty() => Value::String(s),
                // Go's zero Quantity.
                _ => Value::String("0".into()),
            }
        }
        Ty::IntOrString => {
            let fields = scalars(r.bytes().map_err(malformed)?, message)?;
            match fields.varint(1) {
                1 => Value::String(fields.string(3, message)?.unwrap_or_default()),
                _ => Value::from(fields.varint(2) as i64 as i32),
            }
        }
        Ty::Time | Ty::MicroTime => {
            let bytes = r.bytes().map_err(malformed)?;
            if bytes.is_empty() {
                // Go writes the zero time as an empty message; its JSON is null.
                return Ok(None);
            }
            let fields = scalars(bytes, message)?;
            let seconds = fields.varint(1) as i64;
            let nanos = fields.varint(2) as i64 as i32;
            let micros = matches!(ty, Ty::MicroTime).then_some(nanos / 1000);
            Value::String(rfc3339(seconds, micros).ok_or_else(|| {
                malformed(format!("field {} is outside years 0 to 9999", field.json))
            })?)
        }
        Ty::RawJson => {
            let fields = scalars(r.bytes().map_err(malformed)?, message)?;
            match fields.bytes(1) {
                None => Value::Null,
                Some(raw) => serde_json::from_slice(raw)
                    .map_err(|_| malformed(format!("field {} does not hold JSON", field.json)))?,
            }
        }
        Ty::StringList => {
            let mut list = Vec::new();
            let mut items = Reader::new(r.bytes().map_err(malformed)?);
            while let Some((tag, wire_type)) = items.key().map_err(malformed)? {
                if tag == 1 {
                    expect(field, wire_type, WireType::Len, message)?;
                    list.push(Value::String(utf8(
                        items.bytes().map_err(malformed)?,
                        message,
                    )?));
                } else {
                    items.skip(wire_type).map_err(malformed)?;
                }
            }
            Value::Array(list)
        }
    };
    Ok(Some(value))
}

/// Whether repeated values of `ty` may come packed into one length-delimited payload.
fn packable(ty: Ty) -> bool {
    matches!(ty, Ty::Bool | Ty::Int32 | Ty::Int64)
}

/// Go's zero value, which it leaves out of JSON for `omitempty` fields.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn expect(
    field: &Field,
    got: WireType,
    want: WireType,
    message: &'static Message,
) -> Result<(), ProtobufError> {
    if got == want {
        return Ok(());
    }
    Err(ProtobufError::Malformed {
        message: message.name,
        reason: format!(
            "field {} ({}) has wire type {got:?}, expected {want:?}",
            field.tag, field.json
        ),
    })
}

fn utf8(bytes: &[u8], message: &'static Message) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::Malformed {
        message: message.name,
        reason: "a string is not valid UTF-8".into(),
    })
}

/// The last value of each field number of a small message of scalars (Quantity, Time, …).
struct Scalars<'a> {
    varints: Vec<(u32, u64)>,
    payloads: Vec<(u32, &'a [u8])>,
}

fn scalars<'a>(bytes: &'a [u8], message: &'static Message) -> Result<Scalars<'a>, ProtobufError> {
    let malformed = |reason: String| ProtobufError::Malformed {
        message: message.name,
        reason,
    };
    let mut out = Scalars {
        varints: Vec::new(),
        payloads: Vec::new(),
    };
    let mut r = Reader::new(bytes);
    while let Some((tag, wire_type)) = r.key().map_err(malformed)? {
        match wire_type {
            WireType::Varint => out.varints.push((tag, r.varint().map_err(malformed)?)),
            WireType::Len => out.payloads.push((tag, r.bytes().map_err(malformed)?)),
            other => r.skip(other).map_err(malformed)?,
        }
    }
    Ok(out)
}

impl<'a> Scalars<'a> {
    fn varint(&self, tag: u32) -> u64 {
        self.varints
            .iter()
            .rev()
            .find(|(t, _)| *t == tag)
            .map_or(0, |(_, v)| *v)
    }

    fn bytes(&self, tag: u32) -> Option<&'a [u8]> {
        self.payloads
            .iter()
            .rev()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }

    fn string(&self, tag: u32, message: &'static Message) -> Result<Option<String>, ProtobufError> {
        self.bytes(tag).map(|b| utf8(b, message)).transpose()
    }
}

/// `seconds` since the Unix epoch as RFC 3339 in UTC (`2026-11-25T15:30:00Z`), with six digits
/// of fraction when `micros` is given, as Go writes Time and MicroTime; `None` outside the years
/// 0 to 9999, which Go refuses to write.
fn rfc3339(seconds: i64, micros: Option<i32>) -> Option<String> {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let fraction = micros.map_or(String::new(), |us| format!(".{:06}", us.clamp(0, 999_999)));
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_as_go_does() {
        assert_eq!(rfc3339(0, None).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_795_620_600, None).unwrap(),
            "2026-11-25T15:30:00Z"
        );
        assert_eq!(
            rfc3339(1_795_620_600, Some(0)).unwrap(),
            "2026-11-25T15:30:00.000000Z"
        );
        assert_eq!(
            rfc3339(951_782_400 + 86_399, Some(123_456)).unwrap(),
            "2000-02-29T23:59:59.123456Z"
        );
        assert_eq!(rfc3339(-1, None).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(
            rfc3339(-62_135_596_800, None).unwrap(),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(rfc3339(253_402_300_800, None), None, "year 10000");
    }
}
