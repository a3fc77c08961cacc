//! Container logs in the CRI format kubelets read: one record per line,
//! `<RFC 3339 timestamp, nanoseconds> <stdout|stderr> <F|P> <content>`, where `P` marks a part
//! of a line longer than the buffer (the next record continues it) and `F` a full line.

use std::fs::File;
use std::io::Write;

/// The longest record content; longer lines are split into `P` parts.
pub const MAX_LINE: usize = 16 * 1024;

/// The two streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The container's stdout.
    Stdout,
    /// The container's stderr.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Turns a stream's bytes into records.
pub struct LineBuffer {
    stream: Stream,
    pending: Vec<u8>,
}

impl LineBuffer {
    /// A buffer for `stream`.
    pub fn new(stream: Stream) -> Self {
        LineBuffer {
            stream,
            pending: Vec::new(),
        }
    }

    /// Adds bytes read from the stream; writes every complete record to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut File) -> std::io::Result<()> {
        self.pending.extend_from_slice(bytes);
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            write_record(out, self.stream, true, &line[..line.len() - 1])?;
        }
        while self.pending.len() >= MAX_LINE {
            let part: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
            write_record(out, self.stream, false, &part)?;
        }
        Ok(())
    }

    /// The stream ended: a last line without a newline is written as a full one.
    pub fn finish(&mut self, out: &mut File) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            write_record(out, self.stream, true, &rest)?;
        }
        Ok(())
    }
}

fn write_record(out: &mut File, stream: Stream, full: bool, content: &[u8]) -> std::io::Result<()> {
    let now = jiff::Timestamp::now();
    let mut record = format!(
        "{now:.9} {} {} ",
        stream.name(),
        if full { 'F' } else { 'P' }
    )
    .into_bytes();
    record.extend_from_slice(content);
    record.push(b'\n');
    out.write_all(&record)
}

/// One parsed record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the line was read.
    pub time: &'a str,
    /// Which stream.
    pub stream: Stream,
    /// Whether it ends a line.
    pub full: bool,
    /// The bytes.
    pub content: &'a [u8],
}

/// Parses one record (without its newline).
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let full = match parts.next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    Some(Record {
        time,
        stream,
        full,
        content: parts.next().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    #[test]
    fn splits_lines_and_marks_partial_records() {
        let mut file = tempfile::tempfile().unwrap();
        let mut buf = LineBuffer::new(Stream::Stderr);
        buf.push(b"one\ntw", &mut file).unwrap();
        buf.push(b"o\n", &mut file).unwrap();
        buf.push(&vec![b'x'; MAX_LINE + 3], &mut file).unwrap();
        buf.finish(&mut file).unwrap();
        file.rewind().unwrap();
        let mut text = Vec::new();
        file.read_to_end(&mut text).unwrap();
        let records: Vec<_> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| parse(l).unwrap())
            .collect();
        assert_eq!(records.len(), 4);
        assert_eq!((records[0].content, records[0].full), (&b"one"[..], true));
        assert_eq!(records[1].content, b"two");
        assert_eq!(
            (records[2].content.len(), records[2].full),
            (MAX_LINE, false)
        );
        assert_eq!((records[3].content, records[3].full), (&b"xxx"[..], true));
        assert!(records.iter().all(|r| r.stream == Stream::Stderr));
        assert!(records[0].time.parse::<jiff::Timestamp>().is_ok());
    }
}
