//! HPACK's static Huffman code (RFC 7541 §5.2 and Appendix B), decoding only: header blocks
//! are re-encoded without it.
//!
//! The code is canonical (codes of one length are consecutive numbers, ordered by symbol, and
//! shorter codes come first), so a decoder needs, per length, the first code and the symbols in
//! code order: the bits read so far name a symbol once they fall in their length's range.

use std::sync::OnceLock;

/// The longest code, in bits (EOS and a few control characters).
const MAX_LEN: usize = 30;

/// The end-of-string symbol: never part of a string, its prefix pads the last octet.
const EOS: u16 = 256;

/// Why a Huffman-coded string does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HuffmanError {
    /// The string contains the EOS symbol.
    Eos,
    /// The last octet is padded with more than 7 bits, or with anything but ones.
    Padding,
}

/// Decodes a Huffman-coded string literal.
pub(crate) fn decode(src: &[u8]) -> Result<Vec<u8>, HuffmanError> {
    let t = tables();
    let mut out = Vec::with_capacity(src.len() * 8 / 5 + 1);
    let mut code: u32 = 0;
    let mut len = 0usize;
    for &byte in src {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let index = code.wrapping_sub(t.first[len]);
            if index < t.count[len] {
                let symbol = t.symbols[t.offset[len] + index as usize];
                if symbol == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(symbol as u8);
                code = 0;
                len = 0;
            } else if len == MAX_LEN {
                // Unreachable for a complete code; kept so that a bad table cannot overflow.
                return Err(HuffmanError::Eos);
            }
        }
    }
    if len > 7 || code != (1 << len) - 1 {
        return Err(HuffmanError::Padding);
    }
    Ok(out)
}

/// Per code length: the first code, how many codes have it, and where their symbols start.
struct Tables {
    first: [u32; MAX_LEN + 1],
    count: [u32; MAX_LEN + 1],
    offset: [usize; MAX_LEN + 1],
    /// Every symbol, ordered by (length, code).
    symbols: Vec<u16>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut symbols: Vec<u16> = (0..=EOS).collect();
        symbols.sort_by_key(|&s| {
            let (code, len) = CODES[usize::from(s)];
            (len, code)
        });
        let mut t = Tables {
            first: [0; MAX_LEN + 1],
            count: [0; MAX_LEN + 1],
            offset: [0; MAX_LEN + 1],
            symbols,
        };
        for (i, &s) in t.symbols.iter().enumerate() {
            let (code, len) = CODES[usize::from(s)];
            let len = usize::from(len);
            if t.count[len] == 0 {
                t.first[len] = code;
                t.offset[len] = i;
            }
            t.count[len] += 1;
        }
        t
    })
}

