//! Client connections whose HTTP/2 `:authority` Rust's HTTP/2 server would refuse, repaired.
//!
//! etcd's Go clients dial some endpoints "passthrough", sending the endpoint as given, scheme
//! included (`:authority: http://127.0.0.1:2379`, e.g. `etcdctl --endpoints=http://… endpoint
//! status`). Go's server ignores it; the `h2` crate resets the stream with PROTOCOL_ERROR. This
//! wrapper reads the client's side of a connection frame by frame until the first request's
//! header block: if its `:authority` is valid (every well-behaved client), the connection is passed
//! through untouched from then on. If not, every later header block on that connection is decoded
//! and re-encoded with the `:authority` repaired (scheme and path stripped; dropped if still
//! invalid). A connection is one client, and a client sends one authority, so deciding on the
//! first block is enough.
//!
//! It works on the plaintext of a connection: over a bare TCP stream for `http://` client URLs,
//! over the decrypted TLS stream for `https://` ones (it is generic over the inner stream).
//!
//! Invariant: bytes are handed on only in whole frames while inspecting or rewriting, in order;
//! anything that does not parse as HTTP/2 is passed through for the server to judge.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_BYTES: usize = 9;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// The frame size every HTTP/2 peer must accept.
const FRAME_PAYLOAD_BYTES_MAX: usize = 16_384;
/// Header blocks larger than this are not inspected (the server will refuse them anyway).
const HEADER_BLOCK_BYTES_MAX: usize = 1 << 20;
const READ_CHUNK_BYTES: usize = 16 * 1024;

enum Mode {
    /// Reading the preface and the frames before the first header block.
    Inspecting,
    /// Every header block is re-encoded with a valid `:authority`.
    Rewriting,
    /// Bytes flow untouched.
    Passthrough,
}

pub struct AuthorityStream<S> {
    inner: S,
    mode: Mode,
    preface_checked: bool,
    /// Bytes read from the client and not yet handed on.
    input: Vec<u8>,
    /// Bytes ready for the server.
    output: Vec<u8>,
    output_position: usize,
    /// A header block being collected: the stream id, the HEADERS flags, the raw frames, the
    /// block fragment.
    pending_block: Option<(u32, u8, Vec<u8>, Vec<u8>)>,
    decoder: loona_hpack::Decoder<'static>,
    encoder: loona_hpack::Encoder<'static>,
    client_closed: bool,
}

impl<S> AuthorityStream<S> {
    pub fn new(inner: S) -> AuthorityStream<S> {
        AuthorityStream {
            inner,
            mode: Mode::Inspecting,
            preface_checked: false,
            input: Vec::new(),
            output: Vec::new(),
            output_position: 0,
            pending_block: None,
            decoder: loona_hpack::Decoder::new(),
            encoder: loona_hpack::Encoder::new(),
            client_closed: false,
        }
    }

    /// Moves what can be decided from `input` to `output`.
    fn process(&mut self) {
        if !self.preface_checked {
            let seen = self.input.len().min(PREFACE.len());
            if self.input[..seen] != PREFACE[..seen] {
                return self.pass_through(); // HTTP/1.1 (curl /health) or garbage: the server judges
            }
            if seen < PREFACE.len() {
                return;
            }
            self.output.extend_from_slice(PREFACE);
            self.input.drain(..PREFACE.len());
            self.preface_checked = true;
        }
        while matches!(self.mode, Mode::Inspecting | Mode::Rewriting) {
            if self.input.len() < FRAME_HEADER_BYTES {
                return;
            }
            let length = usize::from(self.input[0]) << 16 | usize::from(self.input[1]) << 8 | usize::from(self.input[2]);
            let total = FRAME_HEADER_BYTES + length;
            if self.input.len() < total {
                return;
            }
            let frame: Vec<u8> = self.input.drain(..total).collect();
            self.frame(frame);
        }
        if matches!(self.mode, Mode::Passthrough) {
            self.pass_through();
        }
    }

    fn pass_through(&mut self) {
        self.mode = Mode::Passthrough;
        if let Some((_, _, raw, _)) = self.pending_block.take() {
            self.output.extend_from_slice(&raw);
        }
        self.output.append(&mut self.input);
    }

    fn frame(&mut self, frame: Vec<u8>) {
        let kind = frame[3];
        let flags = frame[4];
        let stream = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
        let payload = &frame[FRAME_HEADER_BYTES..];
        match (kind, self.pending_block.as_mut()) {
            (FRAME_HEADERS, None) => {
                let Some(fragment) = header_fragment(flags, payload) else { return self.give_up(frame) };
                self.pending_block = Some((stream, flags, frame.clone(), fragment.to_vec()));
            }
            (FRAME_CONTINUATION, Some((pending_stream, _, raw, block))) if *pending_stream == stream => {
                raw.extend_from_slice(&frame);
                block.extend_from_slice(payload);
                if block.len() > HEADER_BLOCK_BYTES_MAX {
                    return self.give_up(Vec::new());
                }
            }
            (_, Some(_)) => return self.give_up(frame), // not allowed by HTTP/2: let the server say so
            (_, None) => {
                self.output.extend_from_slice(&frame);
                return;
            }
        }
        let complete = frame[4] & FLAG_END_HEADERS != 0;
        if complete {
            let (stream, flags, raw, block) = self.pending_block.take().expect("collected above");
            self.header_block(stream, flags, raw, block);
        }
    }

    fn give_up(&mut self, frame: Vec<u8>) {
        if let Some((_, _, raw, _)) = self.pending_block.take() {
            self.output.extend_from_slice(&raw);
        }
        self.output.extend_from_slice(&frame);
        self.mode = Mode::Passthrough;
    }

    fn header_block(&mut self, stream: u32, flags: u8, raw: Vec<u8>, block: Vec<u8>) {
        let Ok(headers) = self.decoder.decode(&block) else {
            self.output.extend_from_slice(&raw);
            self.mode = Mode::Passthrough;
            return;
        };
        if matches!(self.mode, Mode::Inspecting) {
            let valid = headers.iter().all(|(name, value)| name != b":authority" || authority_is_valid(value));
            if valid {
                self.output.extend_from_slice(&raw);
                self.mode = Mode::Passthrough;
                return;
            }
            self.mode = Mode::Rewriting;
        }
        let repaired: Vec<(Vec<u8>, Vec<u8>)> = headers
            .into_iter()
            .filter_map(|(name, value)| {
                if name != b":authority" || authority_is_valid(&value) {
                    return Some((name, value));
                }
                repair_authority(&value).map(|value| (name, value))
            })
            .collect();
        let encoded = self.encoder.encode(repaired.iter().map(|(name, value)| (name.as_slice(), value.as_slice())));
        let mut chunks = encoded.chunks(FRAME_PAYLOAD_BYTES_MAX).peekable();
        let mut first = true;
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let (kind, mut frame_flags) = if first { (FRAME_HEADERS, flags & FLAG_END_STREAM) } else { (FRAME_CONTINUATION, 0) };
            if last {
                frame_flags |= FLAG_END_HEADERS;
            }
            let length = chunk.len() as u32;
            self.output.extend_from_slice(&length.to_be_bytes()[1..]);
            self.output.extend_from_slice(&[kind, frame_flags]);
            self.output.extend_from_slice(&stream.to_be_bytes());
            self.output.extend_from_slice(chunk);
            first = false;
        }
        if encoded.is_empty() {
            self.output.extend_from_slice(&[0, 0, 0, FRAME_HEADERS, (flags & FLAG_END_STREAM) | FLAG_END_HEADERS]);
            self.output.extend_from_slice(&stream.to_be_bytes());
        }
    }
}

/// The header block fragment of a HEADERS frame's payload, without padding and priority.
fn header_fragment(flags: u8, payload: &[u8]) -> Option<&[u8]> {
    let mut start = 0;
    let mut padding = 0;
    if flags & FLAG_PADDED != 0 {
        padding = usize::from(*payload.first()?);
        start = 1;
    }
    if flags & FLAG_PRIORITY != 0 {
        start += 5;
    }
    payload.get(start..payload.len().checked_sub(padding)?)
}

fn authority_is_valid(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

/// `http://host:port/path` → `host:port`; `None` if nothing valid is left.
fn repair_authority(value: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(value).ok()?;
    let without_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
    let host = without_scheme.split('/').next().unwrap_or_default();
    authority_is_valid(host.as_bytes()).then(|| host.as_bytes().to_vec())
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, context: &mut Context<'_>, buffer: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.output_position < this.output.len() {
                let available = &this.output[this.output_position..];
                let count = available.len().min(buffer.remaining());
                buffer.put_slice(&available[..count]);
                this.output_position += count;
                if this.output_position == this.output.len() {
                    this.output.clear();
                    this.output_position = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if matches!(this.mode, Mode::Passthrough) && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(context, buffer);
            }
            if this.client_closed {
                // The client went away mid-frame: hand on what is left for the server to judge.
                this.output.append(&mut this.input);
                if this.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut chunk = [0u8; READ_CHUNK_BYTES];
            let mut chunk_buffer = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(context, &mut chunk_buffer))?;
            if chunk_buffer.filled().is_empty() {
                this.client_closed = true;
                continue;
            }
            this.input.extend_from_slice(chunk_buffer.filled());
            this.process();
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, context: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, context: &mut Context<'_>, buffers: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for AuthorityStream<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_a_url_into_an_authority() {
        assert!(!authority_is_valid(b"http://127.0.0.1:2379"));
        assert_eq!(repair_authority(b"http://127.0.0.1:2379").unwrap(), b"127.0.0.1:2379");
        assert_eq!(repair_authority(b"https://example.com:2379/x/y").unwrap(), b"example.com:2379");
        assert_eq!(repair_authority(b"http://bad host"), None);
    }

    #[test]
    fn header_fragments_skip_padding_and_priority() {
        assert_eq!(header_fragment(0, b"abc"), Some(&b"abc"[..]));
        assert_eq!(header_fragment(FLAG_PADDED, b"\x02abcXX"), Some(&b"abc"[..]));
        assert_eq!(header_fragment(FLAG_PRIORITY, b"12345abc"), Some(&b"abc"[..]));
        assert_eq!(header_fragment(FLAG_PADDED, b"\x09abc"), None);
    }
}
