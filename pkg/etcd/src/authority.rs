//! Normalises the `:authority` of HTTP/2 requests before the HTTP/2 server reads them.
//!
//! etcdctl 3.4 (grpc-go of its time) sends `:authority: http://127.0.0.1:2379`, a URL rather
//! than `host:port`, when it dials a single endpoint (`endpoint status`, `endpoint hashkv`,
//! `defrag`, `snapshot save`). etcd's Go server ignores the authority; h2 refuses the request
//! as malformed (RST_STREAM PROTOCOL_ERROR, hyperium/h2#525) before any service sees it.
//! [`AuthorityRewriter`] sits between the accepted socket and the server and rewrites such an
//! authority to what follows the `://`, up to any path.
//!
//! The client-to-server byte stream is parsed frame by frame: every frame passes untouched but
//! HEADERS and their CONTINUATIONs, whose header block is decoded with this connection's own
//! HPACK table and re-encoded as literals that are never indexed. Re-encoding every block, not
//! only those that change, keeps the server's HPACK table empty and unused, so it never
//! disagrees with the client's. The server-to-client direction is not touched. Anything that
//! does not parse (not HTTP/2 with prior knowledge, e.g. TLS; a malformed frame or block) is
//! passed on unchanged from there on, for the server to accept or refuse as it would have.
//!
//! What this module does not do: TLS (a TLS stream passes through unchanged, so this only helps
//! plaintext listeners), or any other leniency towards malformed requests.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use crate::hpack::{self, DecodeError, Field};

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A frame header: length (24 bits), type, flags, stream id (31 bits).
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame every HTTP/2 peer accepts (SETTINGS_MAX_FRAME_SIZE's least value), the
/// size the re-encoded blocks are cut into.
const MAX_FRAME: usize = 16_384;
/// The HPACK table size the server allows the client (SETTINGS_HEADER_TABLE_SIZE): neither
/// tonic nor hyper change the default.
const HEADER_TABLE_SIZE: usize = 4096;
/// The most header block kept while its frames arrive; a larger block is passed on unchanged,
/// for the server to refuse under its own header list limit.
const MAX_BLOCK: usize = 1 << 20;
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// An accepted connection whose requests' `:authority` is normalised on the way in.
#[derive(Debug)]
pub(crate) struct AuthorityRewriter<IO> {
    io: IO,
    rewriter: Rewriter,
    scratch: Box<[u8]>,
    /// Rewritten bytes not yet read, from `taken` on.
    output: Vec<u8>,
    taken: usize,
}

impl<IO> AuthorityRewriter<IO> {
    /// Wraps a freshly accepted connection, before any byte was read from it.
    pub(crate) fn new(io: IO) -> Self {
        AuthorityRewriter {
            io,
            rewriter: Rewriter::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            output: Vec::new(),
            taken: 0,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for AuthorityRewriter<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.taken < this.output.len() {
                let n = buf.remaining().min(this.output.len() - this.taken);
                buf.put_slice(&this.output[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.output.len() {
                    this.output.clear();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.rewriter.is_passthrough() {
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            let mut chunk = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut chunk))?;
            if chunk.filled().is_empty() {
                // End of stream: whatever was held back goes on as it came.
                this.rewriter.finish(&mut this.output);
                if this.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
            } else {
                this.rewriter.feed(chunk.filled(), &mut this.output);
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for AuthorityRewriter<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for AuthorityRewriter<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Why a connection is passed through unchanged from some point on.
#[derive(Debug)]
enum Malformed {
    /// The connection does not start with the HTTP/2 preface.
    NoPreface,
    /// A header block frame is out of place: a CONTINUATION without a block open, another
    /// frame inside one, or padding longer than the frame.
    Framing,
    /// The header block is larger than this module keeps.
    TooLarge,
    /// The header block does not decode.
    Hpack(DecodeError),
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::NoPreface => f.write_str("no HTTP/2 preface"),
            Malformed::Framing => f.write_str("a header block frame out of place"),
            Malformed::TooLarge => f.write_str("a header block too large to keep"),
            Malformed::Hpack(e) => write!(f, "a header block that does not decode: {e:?}"),
        }
    }
}

/// Where the parser is in the client's byte stream.
#[derive(Debug)]
enum Phase {
    /// This many octets of the preface have arrived.
    Preface(usize),
    /// Between frames; `head` holds the part of the next frame header that has arrived.
    Head,
    /// Inside a frame that passes untouched: this many payload octets are still to come.
    Forward(usize),
    /// Inside a HEADERS or CONTINUATION frame, kept in `held` until it is complete.
    Collect {
        kind: u8,
        flags: u8,
        /// Where the frame's payload starts in `held`.
        start: usize,
        left: usize,
    },
    /// Everything passes untouched.
    Passthrough,
}

/// The header block of one stream, while its frames arrive.
#[derive(Debug)]
struct OpenBlock {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragments: Vec<u8>,
}

/// The client-to-server half of one HTTP/2 connection, rewritten as it arrives: bytes in, bytes
/// out, no IO.
#[derive(Debug)]
struct Rewriter {
    phase: Phase,
    head: [u8; FRAME_HEADER_LEN],
    head_len: usize,
    /// The raw frames of the header block being collected, passed on as they are if it fails.
    held: Vec<u8>,
    open: Option<OpenBlock>,
    decoder: hpack::Decoder,
}

impl Rewriter {
    fn new() -> Rewriter {
        Rewriter {
            phase: Phase::Preface(0),
            head: [0; FRAME_HEADER_LEN],
            head_len: 0,
            held: Vec::new(),
            open: None,
            decoder: hpack::Decoder::new(HEADER_TABLE_SIZE),
        }
    }

    fn is_passthrough(&self) -> bool {
        matches!(self.phase, Phase::Passthrough)
    }

    /// Takes the next bytes from the client, appending what the server should read to `out`.
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match self.phase {
                Phase::Passthrough => {
                    out.extend_from_slice(input);
                    return;
                }
                Phase::Preface(seen) => {
                    let n = input.len().min(PREFACE.len() - seen);
                    if input[..n] != PREFACE[seen..seen + n] {
                        out.extend_from_slice(&PREFACE[..seen]);
                        self.give_up(Malformed::NoPreface, input, out);
                        return;
                    }
                    input = &input[n..];
                    if seen + n == PREFACE.len() {
                        out.extend_from_slice(PREFACE);
                        self.phase = Phase::Head;
                    } else {
                        self.phase = Phase::Preface(seen + n);
                    }
                }
                Phase::Head => {
                    let n = input.len().min(FRAME_HEADER_LEN - self.head_len);
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&input[..n]);
                    self.head_len += n;
                    input = &input[n..];
                    if self.head_len == FRAME_HEADER_LEN {
                        self.head_len = 0;
                        if let Err(why) = self.frame_header(out) {
                            self.give_up(why, input, out);
                            return;
                        }
                    }
                }
                Phase::Forward(left) => {
                    let n = input.len().min(left);
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.phase = if n == left {
                        Phase::Head
                    } else {
                        Phase::Forward(left - n)
                    };
                }
                Phase::Collect {
                    kind,
                    flags,
                    start,
                    left,
                } => {
                    let n = input.len().min(left);
                    self.held.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if n < left {
                        self.phase = Phase::Collect {
                            kind,
                            flags,
                            start,
                            left: left - n,
                        };
                    } else {
                        self.phase = Phase::Head;
                        if let Err(why) = self.block_frame(kind, flags, start, out) {
                            self.give_up(why, input, out);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The client closed its side: anything held back goes on unchanged.
    fn finish(&mut self, out: &mut Vec<u8>) {
        match self.phase {
            Phase::Preface(seen) => out.extend_from_slice(&PREFACE[..seen]),
            Phase::Head => out.extend_from_slice(&self.head[..self.head_len]),
            _ => {}
        }
        out.append(&mut self.held);
        self.phase = Phase::Passthrough;
    }

    /// From here on everything passes unchanged, starting with the held frames and `rest`.
    fn give_up(&mut self, why: Malformed, rest: &[u8], out: &mut Vec<u8>) {
        tracing::debug!(reason = %why, "passing an etcd API connection on unchanged");
        out.append(&mut self.held);
        out.extend_from_slice(rest);
        self.open = None;
        self.phase = Phase::Passthrough;
    }

    /// A complete frame header is in `head`: decides what happens to the frame.
    fn frame_header(&mut self, out: &mut Vec<u8>) -> Result<(), Malformed> {
        let h = self.head;
        let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        let (kind, flags) = (h[3], h[4]);
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        if self.open.is_none() && kind != HEADERS && kind != CONTINUATION {
            out.extend_from_slice(&h);
            self.phase = if len == 0 {
                Phase::Head
            } else {
                Phase::Forward(len)
            };
            return Ok(());
        }
        self.held.extend_from_slice(&h);
        // RFC 9113 §6.10: a block's CONTINUATIONs follow it directly, on its stream.
        let in_place = match (kind, &self.open) {
            (CONTINUATION, Some(block)) => block.stream == stream,
            (HEADERS, None) => true,
            _ => false,
        };
        if !in_place {
            return Err(Malformed::Framing);
        }
        if self.held.len() + len > MAX_BLOCK {
            return Err(Malformed::TooLarge);
        }
        if kind == HEADERS {
            self.open = Some(OpenBlock {
                stream,
                end_stream: flags & END_STREAM != 0,
                priority: None,
                fragments: Vec::new(),
            });
        }
        let start = self.held.len();
        self.phase = Phase::Collect {
            kind,
            flags,
            start,
            left: len,
        };
        if len == 0 {
            self.phase = Phase::Head;
            return self.block_frame(kind, flags, start, out);
        }
        Ok(())
    }

    /// A HEADERS or CONTINUATION frame is complete in `held` from `start`.
    fn block_frame(
        &mut self,
        kind: u8,
        flags: u8,
        start: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Malformed> {
        let Some(block) = self.open.as_mut() else {
            return Err(Malformed::Framing);
        };
        let mut payload = &self.held[start..];
        if kind == HEADERS {
            let mut pad = 0;
            if flags & PADDED != 0 {
                let (&p, rest) = payload.split_first().ok_or(Malformed::Framing)?;
                pad = usize::from(p);
                payload = rest;
            }
            if flags & PRIORITY != 0 {
                let (priority, rest) = payload.split_first_chunk().ok_or(Malformed::Framing)?;
                block.priority = Some(*priority);
                payload = rest;
            }
            payload = payload
                .get(..payload.len().checked_sub(pad).ok_or(Malformed::Framing)?)
                .ok_or(Malformed::Framing)?;
        }
        block.fragments.extend_from_slice(payload);
        if flags & END_HEADERS == 0 {
            return Ok(());
        }
        let block = self.open.take().ok_or(Malformed::Framing)?;
        let mut fields = self
            .decoder
            .decode(&block.fragments)
            .map_err(Malformed::Hpack)?;
        for field in &mut fields {
            normalise(field);
        }
        let mut encoded = Vec::with_capacity(block.fragments.len() * 2);
        for field in &fields {
            hpack::encode_literal(field, &mut encoded);
        }
        write_block(&block, &encoded, out);
        self.held.clear();
        Ok(())
    }
}

/// Rewrites an `:authority` that is a URL (`scheme://host:port[/path]`) to its `host:port`.
fn normalise(field: &mut Field) {
    if field.name != b":authority" {
        return;
    }
    let Some(at) = field.value.windows(3).position(|w| w == b"://") else {
        return;
    };
    let rest = &field.value[at + 3..];
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    field.value = rest[..end].to_vec();
}

/// Writes `encoded` as `block`'s HEADERS frame and as many CONTINUATIONs as it takes, without
/// padding.
fn write_block(block: &OpenBlock, encoded: &[u8], out: &mut Vec<u8>) {
    let mut flags = if block.end_stream { END_STREAM } else { 0 };
    let mut room = MAX_FRAME;
    if block.priority.is_some() {
        flags |= PRIORITY;
        room -= 5;
    }
    let (first, mut rest) = encoded.split_at(encoded.len().min(room));
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    let priority_len = if block.priority.is_some() { 5 } else { 0 };
    frame_header(
        first.len() + priority_len,
        HEADERS,
        flags,
        block.stream,
        out,
    );
    if let Some(priority) = &block.priority {
        out.extend_from_slice(priority);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(rest.len().min(MAX_FRAME));
        rest = after;
        let flags = if rest.is_empty() { END_HEADERS } else { 0 };
        frame_header(chunk.len(), CONTINUATION, flags, block.stream, out);
        out.extend_from_slice(chunk);
    }
}

fn frame_header(len: usize, kind: u8, flags: u8, stream: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SETTINGS: &[u8] = &[0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x3, 0, 0, 0, 100];

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame_header(payload.len(), kind, flags, stream, &mut out);
        out.extend_from_slice(payload);
        out
    }

    /// A literal with incremental indexing and a Huffman-coded value, name from the static
    /// table at `name_index`.
    fn indexed_literal(name_index: u8, value: &str) -> Vec<u8> {
        let coded = hpack::huffman_encode(value.as_bytes());
        let mut out = vec![0x40 | name_index, 0x80 | coded.len() as u8];
        out.extend_from_slice(&coded);
        out
    }

    /// What a client like etcdctl 3.4 sends: GET-less gRPC request headers whose authority is
    /// a URL, indexed so that the second request refers to it as dynamic entry 62.
    fn request_block(first: bool) -> Vec<u8> {
        // :method POST, :scheme http.
        let mut block = vec![0x83, 0x86];
        // :path, literal without indexing.
        block.push(0x04);
        let path = b"/etcdserverpb.Maintenance/Status";
        block.push(path.len() as u8);
        block.extend_from_slice(path);
        if first {
            block.extend(indexed_literal(1, "http://127.0.0.1:2379"));
        } else {
            block.push(0x80 | 62);
        }
        block
    }

    fn run(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut r = Rewriter::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            r.feed(piece, &mut out);
        }
        r.finish(&mut out);
        out
    }

    /// Splits the server's view into frames, decoding header blocks with a fresh decoder that
    /// must never need a dynamic table.
    fn frames(bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        assert_eq!(&bytes[..24], PREFACE);
        let mut rest = &bytes[24..];
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
            let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
            frames.push((rest[3], rest[4], stream, rest[9..9 + len].to_vec()));
            rest = &rest[9 + len..];
        }
        frames
    }

    fn decode_fresh(block: &[u8]) -> Vec<(String, String)> {
        let mut d = hpack::Decoder::new(0);
        d.decode(block)
            .unwrap()
            .into_iter()
            .map(|f| {
                (
                    String::from_utf8(f.name).unwrap(),
                    String::from_utf8(f.value).unwrap(),
                )
            })
            .collect()
    }

    fn authority(fields: &[(String, String)]) -> &str {
        &fields.iter().find(|(n, _)| n == ":authority").unwrap().1
    }

    fn two_requests() -> Vec<u8> {
        let mut input = PREFACE.to_vec();
        input.extend_from_slice(SETTINGS);
        input.extend(frame(HEADERS, END_HEADERS, 1, &request_block(true)));
        input.extend(frame(0x0, END_STREAM, 1, &[0, 0, 0, 0, 0]));
        input.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            3,
            &request_block(false),
        ));
        input
    }

    #[test]
    fn url_authorities_become_host_and_port_in_every_block() {
        let out = run(&two_requests(), usize::MAX);
        let f = frames(&out);
        assert_eq!(f.len(), 4);
        assert_eq!((f[0].0, f[0].3.as_slice()), (0x4, &SETTINGS[9..]));
        assert_eq!((f[1].0, f[1].1, f[1].2), (HEADERS, END_HEADERS, 1));
        let first = decode_fresh(&f[1].3);
        assert_eq!(authority(&first), "127.0.0.1:2379");
        assert_eq!(first[0], (":method".into(), "POST".into()));
        assert_eq!(f[2], (0x0, END_STREAM, 1, vec![0, 0, 0, 0, 0]));
        // The second request names the authority by its dynamic index: resolved here, so the
        // server needs no table.
        assert_eq!((f[3].1, f[3].2), (END_HEADERS | END_STREAM, 3));
        assert_eq!(authority(&decode_fresh(&f[3].3)), "127.0.0.1:2379");
    }

    #[test]
    fn frames_split_across_reads_come_out_the_same() {
        let input = two_requests();
        let whole = run(&input, usize::MAX);
        for chunk in [1, 2, 5, 9, 10, 23, 24, 25, 31] {
            assert_eq!(run(&input, chunk), whole, "reads of {chunk} octets");
        }
    }

    #[test]
    fn continuation_padding_and_priority_are_handled() {
        let block = request_block(true);
        let (a, b) = block.split_at(7);
        let (b, c) = b.split_at(10);
        // PADDED (3 octets of padding) and PRIORITY (5 octets) on the HEADERS frame.
        let mut payload = vec![3];
        payload.extend_from_slice(&[0x80, 0, 0, 0, 15]);
        payload.extend_from_slice(a);
        payload.extend_from_slice(&[0, 0, 0]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 5, &payload));
        input.extend(frame(CONTINUATION, 0, 5, b));
        input.extend(frame(CONTINUATION, END_HEADERS, 5, c));
        for chunk in [1, 4, usize::MAX] {
            let f = frames(&run(&input, chunk));
            assert_eq!(f.len(), 1);
            let (kind, flags, stream, payload) = &f[0];
            assert_eq!(
                (*kind, *flags, *stream),
                (HEADERS, PRIORITY | END_STREAM | END_HEADERS, 5)
            );
            assert_eq!(payload[..5], [0x80, 0, 0, 0, 15]);
            assert_eq!(authority(&decode_fresh(&payload[5..])), "127.0.0.1:2379");
        }
    }

    #[test]
    fn large_blocks_are_cut_into_continuations() {
        // A Huffman-coded value that, re-encoded plainly, needs more than one frame.
        let mut block = request_block(true);
        block.extend([0x00, 0x01, b'x']);
        let coded = hpack::huffman_encode(&[b'a'; 40_000]);
        hpack::encode_integer(coded.len(), 7, 0x80, &mut block);
        block.extend_from_slice(&coded);
        let mut input = PREFACE.to_vec();
        for piece in block.chunks(MAX_FRAME).enumerate() {
            let (i, chunk) = piece;
            let kind = if i == 0 { HEADERS } else { CONTINUATION };
            let last = (i + 1) * MAX_FRAME >= block.len();
            input.extend(frame(kind, if last { END_HEADERS } else { 0 }, 1, chunk));
        }
        let f = frames(&run(&input, 1000));
        assert!(f.len() >= 3);
        let mut joined = Vec::new();
        for (i, (kind, flags, stream, payload)) in f.iter().enumerate() {
            assert!(payload.len() <= MAX_FRAME);
            assert_eq!(*kind, if i == 0 { HEADERS } else { CONTINUATION });
            assert_eq!(*flags & END_HEADERS != 0, i == f.len() - 1);
            assert_eq!(*stream, 1);
            joined.extend_from_slice(payload);
        }
        let fields = decode_fresh(&joined);
        assert_eq!(authority(&fields), "127.0.0.1:2379");
        assert_eq!(fields.last().unwrap().1.len(), 40_000);
    }

    #[test]
    fn other_connections_pass_unchanged() {
        for input in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..],
            &PREFACE[..10],
            &b"PRI * HTTP/2.0\r\n\r\nXX"[..],
        ] {
            for chunk in [1, 3, usize::MAX] {
                assert_eq!(run(input, chunk), input);
            }
        }
    }

    #[test]
    fn malformed_blocks_pass_unchanged_from_there_on() {
        let mut input = PREFACE.to_vec();
        input.extend_from_slice(SETTINGS);
        // Index 70 does not exist.
        input.extend(frame(HEADERS, END_HEADERS, 1, &[0x80 | 70]));
        input.extend(frame(HEADERS, END_HEADERS, 3, &request_block(true)));
        assert_eq!(run(&input, 7), input);
        // A CONTINUATION for another stream than its HEADERS.
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, 0, 1, &[0x83]));
        input.extend(frame(CONTINUATION, END_HEADERS, 3, &[0x86]));
        assert_eq!(run(&input, 5), input);
        // Padding longer than the frame.
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS | PADDED, 1, &[9, 0x83]));
        assert_eq!(run(&input, usize::MAX), input);
        // A connection cut inside a header block.
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &request_block(true)));
        input.truncate(input.len() - 4);
        assert_eq!(run(&input, 3), input);
    }

    #[test]
    fn only_url_authorities_change() {
        let f = |v: &str| {
            let mut field = Field {
                name: b":authority".to_vec(),
                value: v.as_bytes().to_vec(),
                sensitive: false,
            };
            normalise(&mut field);
            String::from_utf8(field.value).unwrap()
        };
        assert_eq!(f("http://127.0.0.1:2379"), "127.0.0.1:2379");
        assert_eq!(f("https://[::1]:2379/"), "[::1]:2379");
        assert_eq!(f("127.0.0.1:2379"), "127.0.0.1:2379");
        assert_eq!(f("localhost"), "localhost");
    }

    #[tokio::test]
    async fn the_adapter_rewrites_reads_and_passes_writes() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = AuthorityRewriter::new(server);
        let input = two_requests();
        let expected = run(&input, usize::MAX);
        let writer = tokio::spawn(async move {
            let mut client = client;
            for piece in input.chunks(13) {
                client.write_all(piece).await.unwrap();
            }
            let mut answer = [0; 5];
            client.read_exact(&mut answer).await.unwrap();
            answer
        });
        let mut seen = vec![0; expected.len()];
        server.read_exact(&mut seen).await.unwrap();
        assert_eq!(seen, expected);
        server.write_all(b"hello").await.unwrap();
        assert_eq!(&writer.await.unwrap(), b"hello");
    }
}
