//! etcd's key ranges: `[key, range_end)`, where an empty `range_end` means the single key `key` and
//! `range_end = "\0"` means every key from `key` on.

/// A range of keys as etcd requests name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRange {
    /// Exactly one key.
    Single(Vec<u8>),
    /// `[start, end)`; `end = None` is unbounded.
    Span {
        /// The first key.
        start: Vec<u8>,
        /// The first key after the range, or unbounded.
        end: Option<Vec<u8>>,
    },
}

impl KeyRange {
    /// The range an etcd request's `key` and `range_end` name.
    pub fn new(key: &[u8], range_end: &[u8]) -> KeyRange {
        match range_end {
            [] => KeyRange::Single(key.to_vec()),
            [0] => KeyRange::Span {
                start: key.to_vec(),
                end: None,
            },
            end => KeyRange::Span {
                start: key.to_vec(),
                end: Some(end.to_vec()),
            },
        }
    }

    /// The first key of the range.
    pub fn start(&self) -> &[u8] {
        match self {
            KeyRange::Single(k) => k,
            KeyRange::Span { start, .. } => start,
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Single(k) => k == key,
            KeyRange::Span { start, end } => {
                key >= start.as_slice() && end.as_deref().is_none_or(|e| key < e)
            }
        }
    }

    /// Whether the range can hold no key at all (`range_end <= key`).
    pub fn is_empty(&self) -> bool {
        matches!(self, KeyRange::Span { start, end: Some(end) } if end <= start)
    }

    /// Whether two ranges share a key.
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        match (self, other) {
            (KeyRange::Single(k), r) | (r, KeyRange::Single(k)) => r.contains(k),
            (KeyRange::Span { start: s1, end: e1 }, KeyRange::Span { start: s2, end: e2 }) => {
                let before = |s: &Vec<u8>, e: &Option<Vec<u8>>| e.as_ref().is_some_and(|e| e <= s);
                !(self.is_empty() || other.is_empty() || before(s2, e1) || before(s1, e2))
            }
        }
    }
}

/// The `range_end` that selects every key with the given prefix.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_etcd() {
        assert!(KeyRange::new(b"a", b"").contains(b"a"));
        assert!(!KeyRange::new(b"a", b"").contains(b"ab"));
        let all_from_b = KeyRange::new(b"b", b"\0");
        assert!(all_from_b.contains(b"zzz") && !all_from_b.contains(b"a"));
        let span = KeyRange::new(b"b", b"d");
        assert!(span.contains(b"c") && !span.contains(b"d"));
        assert!(KeyRange::new(b"d", b"b").is_empty());
        assert_eq!(prefix_end(b"ab"), b"ac");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }

    #[test]
    fn overlaps() {
        let r = |a: &[u8], b: &[u8]| KeyRange::new(a, b);
        assert!(r(b"a", b"c").overlaps(&r(b"b", b"")));
        assert!(!r(b"a", b"c").overlaps(&r(b"c", b"")));
        assert!(r(b"a", b"c").overlaps(&r(b"b", b"z")));
        assert!(!r(b"a", b"c").overlaps(&r(b"c", b"z")));
        assert!(r(b"a", b"\0").overlaps(&r(b"x", b"y")));
    }
}
