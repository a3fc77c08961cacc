//! The protobuf wire format, as far as decoding needs it: varints, keys, length-delimited
//! payloads and skipping fields.

/// A wire type: how a field's value is laid out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

/// Reads one message's bytes front to back.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Whether the whole message has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next field's number and wire type; `None` at the end of the message.
    pub(super) fn key(&mut self) -> Result<Option<(u32, WireType)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire_type = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            other => return Err(format!("unsupported wire type {other}")),
        };
        let tag = u32::try_from(key >> 3)
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| format!("invalid field number {}", key >> 3))?;
        Ok(Some((tag, wire_type)))
    }

    /// A base-128 varint.
    pub(super) fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for (i, byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err("truncated or overlong varint".into())
    }

    /// A length-delimited payload.
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= self.buf.len())
            .ok_or_else(|| format!("length {len} runs past the end of the message"))?;
        let (value, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(value)
    }

    /// Eight little-endian bytes.
    pub(super) fn fixed64(&mut self) -> Result<[u8; 8], String> {
        let (value, rest) = self
            .buf
            .split_first_chunk::<8>()
            .ok_or("truncated fixed64")?;
        self.buf = rest;
        Ok(*value)
    }

    /// Skips a value of this wire type.
    pub(super) fn skip(&mut self, wire_type: WireType) -> Result<(), String> {
        match wire_type {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.fixed64().map(drop),
            WireType::Len => self.bytes().map(drop),
            WireType::Fixed32 => {
                let (_, rest) = self
                    .buf
                    .split_first_chunk::<4>()
                    .ok_or("truncated fixed32")?;
                self.buf = rest;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varints_keys_and_payloads() {
        // field 1, varint 300; field 2, "hi"; field 3, fixed32 (skipped)
        let mut r = Reader::new(&[0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x1d, 1, 2, 3, 4]);
        assert_eq!(r.key().unwrap(), Some((1, WireType::Varint)));
        assert_eq!(r.varint().unwrap(), 300);
        assert_eq!(r.key().unwrap(), Some((2, WireType::Len)));
        assert_eq!(r.bytes().unwrap(), b"hi");
        assert_eq!(r.key().unwrap(), Some((3, WireType::Fixed32)));
        r.skip(WireType::Fixed32).unwrap();
        assert_eq!(r.key().unwrap(), None);
    }

    #[test]
    fn rejects_truncation() {
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert!(Reader::new(&[0x05, b'a']).bytes().is_err());
        assert!(Reader::new(&[0x0b]).key().is_err(), "wire type 3 (groups)");
        assert!(Reader::new(&[0x00]).key().is_err(), "field number 0");
    }
}
