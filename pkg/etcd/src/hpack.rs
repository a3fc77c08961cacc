//! HPACK (RFC 7541) as far as the authority rewriter needs it: a decoder that keeps a
//! connection's dynamic table, and an encoder that writes only literals that are not indexed,
//! so that the peer decoding them never uses its dynamic table.
//!
//! What this module does not do: Huffman-code or index anything it encodes, or decode anything
//! but requests (its table size limit is the server's).

mod huffman;

use std::collections::VecDeque;

pub(crate) use huffman::HuffmanError;

/// What RFC 7541 §4.1 adds to an entry's name and value lengths to count its size.
const ENTRY_OVERHEAD: usize = 32;

/// One decoded header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: Vec<u8>,
    pub(crate) value: Vec<u8>,
    /// Sent as "never indexed" (§6.2.3): it must stay a never-indexed literal when re-encoded.
    pub(crate) sensitive: bool,
}

/// Why a header block does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer does not fit the limits kept here (2^28).
    IntegerOverflow,
    /// An index is zero or beyond the static and dynamic tables.
    BadIndex(usize),
    /// A Huffman-coded string does not decode.
    Huffman(HuffmanError),
    /// A dynamic table size update above the limit the server announced.
    TableSizeTooLarge(usize),
    /// A dynamic table size update after a header field.
    LateTableSizeUpdate,
}

/// Decodes the header blocks that one peer sends on one connection, in order.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// Newest entry first.
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
    /// The most the encoder may set `max_size` to (SETTINGS_HEADER_TABLE_SIZE).
    limit: usize,
}

impl Decoder {
    /// A decoder whose peer may use a table of up to `limit` octets, as the server announced.
    pub(crate) fn new(limit: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// Decodes one complete header block, updating the dynamic table as it says.
    pub(crate) fn decode(&mut self, mut block: &[u8]) -> Result<Vec<Field>, DecodeError> {
        let mut fields = Vec::new();
        while let Some(&first) = block.first() {
            if first & 0x80 != 0 {
                // §6.1: indexed header field.
                let index = integer(&mut block, 7)?;
                let (name, value) = self.entry(index)?;
                fields.push(Field {
                    name: name.to_vec(),
                    value: value.to_vec(),
                    sensitive: false,
                });
            } else if first & 0x40 != 0 {
                // §6.2.1: literal with incremental indexing.
                let field = self.literal(&mut block, 6, false)?;
                self.insert(field.name.clone(), field.value.clone());
                fields.push(field);
            } else if first & 0x20 != 0 {
                // §6.3: dynamic table size update, only before the first field.
                if !fields.is_empty() {
                    return Err(DecodeError::LateTableSizeUpdate);
                }
                let size = integer(&mut block, 5)?;
                if size > self.limit {
                    return Err(DecodeError::TableSizeTooLarge(size));
                }
                self.max_size = size;
                self.evict(0);
            } else {
                // §6.2.2 and §6.2.3: literal without indexing, or never indexed.
                let sensitive = first & 0x10 != 0;
                fields.push(self.literal(&mut block, 4, sensitive)?);
            }
        }
        Ok(fields)
    }

    /// A literal field whose name index has a `prefix`-bit prefix (0: the name follows).
    fn literal(
        &self,
        block: &mut &[u8],
        prefix: u8,
        sensitive: bool,
    ) -> Result<Field, DecodeError> {
        let index = integer(block, prefix)?;
        let name = if index == 0 {
            string(block)?
        } else {
            self.entry(index)?.0.to_vec()
        };
        let value = string(block)?;
        Ok(Field {
            name,
            value,
            sensitive,
        })
    }

    /// The entry at `index` of the static table followed by the dynamic table (§2.3.3).
    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
        if index == 0 {
            return Err(DecodeError::BadIndex(index));
        }
        if let Some((name, value)) = STATIC_TABLE.get(index - 1) {
            return Ok((name.as_bytes(), value.as_bytes()));
        }
        self.table
            .get(index - 1 - STATIC_TABLE.len())
            .map(|(name, value)| (name.as_slice(), value.as_slice()))
            .ok_or(DecodeError::BadIndex(index))
    }

    /// §4.4: adds an entry, evicting the oldest ones to make room; one too large for the whole
    /// table empties it.
    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.table.push_front((name, value));
        self.size += size;
    }

    /// Evicts the oldest entries until `room` more octets fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            let Some((name, value)) = self.table.pop_back() else {
                break;
            };
            self.size -= name.len() + value.len() + ENTRY_OVERHEAD;
        }
    }
}

/// Appends `field` as a literal with a literal name, not indexed (or never indexed if it came
/// so), without Huffman coding.
pub(crate) fn encode_literal(field: &Field, out: &mut Vec<u8>) {
    out.push(if field.sensitive { 0x10 } else { 0x00 });
    for s in [&field.name, &field.value] {
        encode_integer(s.len(), 7, 0x00, out);
        out.extend_from_slice(s);
    }
}

/// §5.1: `value` with a `prefix`-bit prefix, the octet's other bits being `flags`.
pub(crate) fn encode_integer(mut value: usize, prefix: u8, flags: u8, out: &mut Vec<u8>) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    out.push(value as u8);
}

/// §5.1: an integer with a `prefix`-bit prefix, at most 2^28 (four continuation octets).
fn integer(block: &mut &[u8], prefix: u8) -> Result<usize, DecodeError> {
    let (&first, rest) = block.split_first().ok_or(DecodeError::Truncated)?;
    *block = rest;
    let max = (1usize << prefix) - 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    for shift in [0, 7, 14, 21] {
        let (&b, rest) = block.split_first().ok_or(DecodeError::Truncated)?;
        *block = rest;
        value += usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::IntegerOverflow)
}

/// §5.2: a string literal, Huffman-coded or not.
fn string(block: &mut &[u8]) -> Result<Vec<u8>, DecodeError> {
    let huffman = block.first().is_some_and(|b| b & 0x80 != 0);
    let len = integer(block, 7)?;
    if len > block.len() {
        return Err(DecodeError::Truncated);
    }
    let (raw, rest) = block.split_at(len);
    *block = rest;
    if huffman {
        huffman::decode(raw).map_err(DecodeError::Huffman)
    } else {
        Ok(raw.to_vec())
    }
}

/// RFC 7541 Appendix A: the static table, index 1 first.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

#[cfg(test)]
pub(crate) use huffman::encode as huffman_encode;

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pairs(fields: &[Field]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8(f.name.clone()).unwrap(),
                    String::from_utf8(f.value.clone()).unwrap(),
                )
            })
            .collect()
    }

    fn list(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rfc_7541_integer_examples() {
        // C.1.1 to C.1.3.
        for (encoded, prefix, value) in [
            (&[0x0a][..], 5, 10),
            (&[0x1f, 0x9a, 0x0a][..], 5, 1337),
            (&[0x2a][..], 8, 42),
        ] {
            let mut b = encoded;
            assert_eq!(integer(&mut b, prefix).unwrap(), value);
            assert!(b.is_empty());
            let mut out = Vec::new();
            encode_integer(value, prefix, 0, &mut out);
            assert_eq!(out, encoded);
        }
        let mut b = &[0x1f, 0xff, 0xff, 0xff, 0xff, 0x01][..];
        assert_eq!(integer(&mut b, 5), Err(DecodeError::IntegerOverflow));
        let mut b = &[0x1f, 0xff][..];
        assert_eq!(integer(&mut b, 5), Err(DecodeError::Truncated));
    }

    #[test]
    fn rfc_7541_requests_with_huffman_share_a_dynamic_table() {
        // C.4: indexed static fields, a literal with indexing that later requests refer to by
        // index (62, 63), Huffman-coded names and values.
        let mut d = Decoder::new(4096);
        let first = d
            .decode(&hex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))
            .unwrap();
        assert_eq!(
            pairs(&first),
            list(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ])
        );
        let second = d.decode(&hex("828684be5886a8eb10649cbf")).unwrap();
        assert_eq!(
            pairs(&second)[3..],
            list(&[
                (":authority", "www.example.com"),
                ("cache-control", "no-cache")
            ])
        );
        let third = d
            .decode(&hex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"))
            .unwrap();
        assert_eq!(
            pairs(&third),
            list(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ])
        );
        assert_eq!(d.size, 164);
    }

    #[test]
    fn rfc_7541_responses_evict_from_a_small_table() {
        // C.6, with a 256-octet table: the second and third blocks evict older entries and
        // refer to the survivors by their shifted indexes.
        let mut d = Decoder::new(256);
        d.decode(&hex(concat!(
            "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a6",
            "2d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
        )))
        .unwrap();
        assert_eq!(d.size, 222);
        let second = d.decode(&hex("4883640effc1c0bf")).unwrap();
        assert_eq!(
            pairs(&second),
            list(&[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com"),
            ])
        );
        let third = d
            .decode(&hex(concat!(
                "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab",
                "77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f",
                "9587316065c003ed4ee5b1063d5007",
            )))
            .unwrap();
        assert_eq!(
            pairs(&third),
            list(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                ),
            ])
        );
        assert_eq!((d.table.len(), d.size), (3, 215));
    }

    #[test]
    fn table_size_updates_evict_and_are_bounded() {
        let mut d = Decoder::new(4096);
        d.decode(&hex("418cf1e3c2e5f23a6ba0ab90f4ff")).unwrap();
        assert_eq!(d.table.len(), 1);
        // Size 0 empties the table; index 62 is then gone.
        assert_eq!(d.decode(&hex("20")).unwrap(), []);
        assert_eq!(d.table.len(), 0);
        assert_eq!(d.decode(&hex("be")), Err(DecodeError::BadIndex(62)));
        // Above the server's limit (4097 = 31 + 4066).
        assert_eq!(
            d.decode(&hex("3fe21f")),
            Err(DecodeError::TableSizeTooLarge(4097))
        );
        assert_eq!(
            d.decode(&hex("823f")),
            Err(DecodeError::LateTableSizeUpdate)
        );
        assert_eq!(d.decode(&hex("80")), Err(DecodeError::BadIndex(0)));
    }

    #[test]
    fn never_indexed_fields_stay_never_indexed() {
        // C.2.3: "password: secret", never indexed.
        let mut d = Decoder::new(4096);
        let fields = d
            .decode(&hex("100870617373776f726406736563726574"))
            .unwrap();
        assert!(fields[0].sensitive);
        assert_eq!(d.table.len(), 0);
        let mut out = Vec::new();
        encode_literal(&fields[0], &mut out);
        assert_eq!(out, hex("100870617373776f726406736563726574"));
    }

    #[test]
    fn literals_round_trip_without_touching_the_table() {
        let field = Field {
            name: b"x-long".to_vec(),
            value: vec![b'v'; 300],
            sensitive: false,
        };
        let mut out = Vec::new();
        encode_literal(&field, &mut out);
        let mut d = Decoder::new(4096);
        assert_eq!(d.decode(&out).unwrap(), [field]);
        assert!(d.table.is_empty());
    }

    #[test]
    fn truncated_blocks_are_refused() {
        let mut d = Decoder::new(4096);
        assert_eq!(d.decode(&hex("418cf1e3c2")), Err(DecodeError::Truncated));
        let mut d = Decoder::new(4096);
        assert_eq!(
            d.decode(&hex("4181ff")),
            Err(DecodeError::Huffman(HuffmanError::Padding))
        );
    }
}
