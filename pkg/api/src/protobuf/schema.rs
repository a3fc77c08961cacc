//! The shape of the message table in `messages.rs`: what the decoder needs to know of each
//! protobuf message to write its JSON. It holds no messages itself.

/// A protobuf message: its full name (for errors) and its fields, sorted by number.
pub(super) struct Message {
    pub(super) name: &'static str,
    pub(super) fields: &'static [Field],
}

impl Message {
    /// The field with this number; `None` for a field this table does not know (skipped, as Go's
    /// decoder skips unknown fields).
    pub(super) fn field(&self, tag: u32) -> Option<&'static Field> {
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }
}

/// One field of a message.
pub(super) struct Field {
    /// The field number.
    pub(super) tag: u32,
    /// Its JSON name; empty for an inlined message.
    pub(super) json: &'static str,
    /// The type of its values (of a map: of the map's values; keys are always strings).
    pub(super) ty: Ty,
    /// Whether it holds one value, many, a map, or its message's fields inline.
    pub(super) shape: Shape,
    /// Go leaves it out of JSON when it holds its zero value (a non-pointer scalar tagged
    /// `omitempty`); Go clients encode such fields even when zero.
    pub(super) omit_zero: bool,
}

/// The type of a field's values.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    String,
    /// Bytes, written as base64.
    Bytes,
    Bool,
    Int32,
    Int64,
    Message(&'static Message),
    /// `resource.Quantity{1 string}`: its string.
    Quantity,
    /// `intstr.IntOrString{1 type, 2 intVal, 3 strVal}`: a number or a string.
    IntOrString,
    /// `metav1.Time{1 seconds, 2 nanos}`: RFC 3339 in whole seconds.
    Time,
    /// `metav1.MicroTime{1 seconds, 2 nanos}`: RFC 3339 with microseconds.
    MicroTime,
    /// `FieldsV1{1 raw}`, `RawExtension{1 raw}`: raw holds JSON, written as it is.
    RawJson,
    /// `ExtraValue{1 items}`, `Verbs{1 items}`: a JSON array of strings.
    StringList,
}

/// How many values a field holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// One value.
    Single,
    /// A JSON array.
    Repeated,
    /// A JSON object: map entries are messages `{1 key, 2 value}`.
    Map,
    /// An embedded Go struct tagged `json:",inline"`: its fields are the parent's.
    Inline,
}
