//! The gRPC connection's byte stream, with the writes of one answer gathered into one
//! system call.
//!
//! h2 (under tonic and hyper) writes every DATA frame of 256 bytes or more with its own
//! `writev`, the payload chained after the frame header, and flushes before it takes the
//! next frame; the trailers follow in a write of their own. A 28 kB QueryData answer (two
//! 16 KiB DATA frames at the HTTP/2 default `SETTINGS_MAX_FRAME_SIZE`, RFC 9113 §6.5.2,
//! which Grafana's Go client keeps) cost three system calls and three wake-ups of the
//! reader: 2.9 `writev` per QueryData on the `hit` load test (`perf stat -e
//! syscalls:sys_enter_writev`). A write buffer alone does not help, because h2 flushes
//! after every chained frame.
//!
//! [`Gathered`] copies the writes into a buffer and follows the HTTP/2 frames going through
//! it (RFC 9113 §4.1: a 9-byte header with a 24-bit length, the type and the flags). A
//! flush while the last frame is a DATA frame without END_STREAM (a stream's answer is not
//! complete: the next DATA frame or the trailers follow in the same round of h2's writing)
//! is answered "done" without writing, at most [`MAX_HELD_FLUSHES`] times in a row, and
//! wakes the connection's task each time, so that a stream that stops there (its flow-control
//! window used up, say) is written out at the latest on the task's next polls. Any other
//! flush writes everything buffered: one `write` per answer. A shutdown writes what is
//! buffered first, a write larger than the buffer goes out directly (tokio's `BufWriter`),
//! and reads pass through untouched.
//!
//! Under load, answers also share writes. Measured (docs/benchmarks-load.md, "Gathered
//! writes" and "A lean load client"): with a load client lighter than the plugin, a cached
//! QueryData costs ~6 µs less plugin CPU (median 38.2 vs 44.8 µs) and throughput at
//! concurrency 16 rises ~17 %; one query at a time and the cold path stay within the host's
//! noise. The price is one copy of each answer into the 64 KiB buffer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf};
use tonic::transport::server::Connected;

/// Bytes gathered per connection before a write goes out without waiting for a flush:
/// 64 KiB, two 28 kB answers (1,000 rows of three fields each).
pub const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Flushes in a row that may be held while a stream's answer is incomplete: two, so that
/// an answer of up to three 16 KiB DATA frames goes out in one write.
pub const MAX_HELD_FLUSHES: u8 = 2;

/// Follows the HTTP/2 frames of a byte stream written in pieces (RFC 9113 §4.1).
#[derive(Debug, Default)]
struct Frames {
    /// The header being read, and how many of its 9 bytes have been seen.
    head: [u8; 9],
    have: usize,
    /// Payload bytes of the current frame still to come.
    left: usize,
    /// The last frame whose header was seen is DATA (type 0x0) without END_STREAM (0x1).
    open_data: bool,
}

impl Frames {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.left > 0 {
                let k = self.left.min(bytes.len());
                self.left -= k;
                bytes = &bytes[k..];
                continue;
            }
            let k = (9 - self.have).min(bytes.len());
            self.head[self.have..self.have + k].copy_from_slice(&bytes[..k]);
            self.have += k;
            bytes = &bytes[k..];
            if self.have == 9 {
                let h = self.head;
                self.left = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                self.open_data = h[3] == 0 && h[4] & 1 == 0;
                self.have = 0;
            }
        }
    }

    /// Feeds the first `n` bytes of `bufs`.
    fn feed_slices(&mut self, bufs: &[io::IoSlice<'_>], mut n: usize) {
        for b in bufs {
            if n == 0 {
                break;
            }
            let k = n.min(b.len());
            self.feed(&b[..k]);
            n -= k;
        }
    }
}

/// A connection (`S`: a unix or TCP stream) whose writes are held while an answer is
/// incomplete (module docs), or until [`WRITE_BUFFER_BYTES`] are waiting.
#[derive(Debug)]
pub struct Gathered<S> {
    io: BufWriter<S>,
    frames: Frames,
    /// Flushes answered without writing since the last real one.
    held: u8,
}

impl<S: AsyncWrite> Gathered<S> {
    /// Wraps an accepted connection.
    pub fn new(stream: S) -> Gathered<S> {
        Gathered {
            io: BufWriter::with_capacity(WRITE_BUFFER_BYTES, stream),
            frames: Frames::default(),
            held: 0,
        }
    }
}

impl<S: Connected + AsyncWrite> Connected for Gathered<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.get_ref().connect_info()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Gathered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gathered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, buf))?;
        self.frames.feed(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = std::task::ready!(Pin::new(&mut self.io).poll_write_vectored(cx, bufs))?;
        self.frames.feed_slices(bufs, n);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    /// Held (answered at once, the task woken) while the last frame is a DATA frame without
    /// END_STREAM, at most [`MAX_HELD_FLUSHES`] times in a row; otherwise writes everything
    /// buffered.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.frames.open_data && self.held < MAX_HELD_FLUSHES && !self.io.buffer().is_empty() {
            self.held += 1;
            cx.waker().wake_by_ref();
            return Poll::Ready(Ok(()));
        }
        let r = std::task::ready!(Pin::new(&mut self.io).poll_flush(cx));
        self.held = 0;
        Poll::Ready(r)
    }

    /// Writes what is buffered, then shuts the stream's write side down.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DATA: u8 = 0x0;
    const HEADERS: u8 = 0x1;
    const END_STREAM: u8 = 0x1;
    const END_HEADERS: u8 = 0x4;

    /// One HTTP/2 frame (RFC 9113 §4.1) with a payload of `len` bytes of `fill`.
    fn frame(ty: u8, flags: u8, stream: u32, len: usize, fill: u8) -> Vec<u8> {
        let l = u32::try_from(len).expect("frame length");
        let mut f = vec![(l >> 16) as u8, (l >> 8) as u8, l as u8, ty, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.resize(9 + len, fill);
        f
    }

    struct CountWakes(AtomicUsize);

    impl std::task::Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Bytes readable on `b` right now, without waiting.
    fn readable_now(b: &std::os::unix::net::UnixStream) -> usize {
        let mut buf = [0u8; 256];
        match (&*b).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("read: {e}"),
        }
    }

    #[test]
    fn frames_are_followed_across_any_split() {
        let stream: Vec<u8> = [
            frame(HEADERS, END_HEADERS, 1, 40, 1),
            frame(DATA, 0, 1, 16_384, 2),
            frame(DATA, 0, 1, 11_650, 3),
            frame(HEADERS, END_HEADERS | END_STREAM, 1, 12, 4),
            frame(DATA, END_STREAM, 3, 10, 5),
        ]
        .concat();
        // Where each frame starts, and whether it is an open DATA frame.
        let mut heads = Vec::new();
        let mut p = 0;
        while p < stream.len() {
            heads.push((p, stream[p + 3] == DATA && stream[p + 4] & END_STREAM == 0));
            p += 9
                + (usize::from(stream[p]) << 16
                    | usize::from(stream[p + 1]) << 8
                    | usize::from(stream[p + 2]));
        }
        assert_eq!(heads.len(), 5);
        for piece in [1, 2, 5, 9, 10, 4_096, stream.len()] {
            let mut f = Frames::default();
            let mut at = 0;
            for chunk in stream.chunks(piece) {
                f.feed(chunk);
                at += chunk.len();
                // The last frame whose 9-byte header is complete decides.
                let want = heads
                    .iter()
                    .rev()
                    .find(|(start, _)| start + 9 <= at)
                    .is_some_and(|&(_, open)| open);
                assert_eq!(f.open_data, want, "pieces of {piece}, {at} bytes in");
            }
            assert!(!f.open_data, "pieces of {piece}");
            assert_eq!((f.have, f.left), (0, 0), "pieces of {piece}");
        }
        // Vectored writes feed only what was accepted.
        let mut f = Frames::default();
        let head = frame(DATA, 0, 1, 0, 0);
        let parts = [io::IoSlice::new(&head[..4]), io::IoSlice::new(&head[4..])];
        f.feed_slices(&parts, 6);
        assert_eq!(f.have, 6);
        f.feed(&head[6..]);
        assert!(f.open_data);
    }

    /// An answer of HEADERS, two DATA frames and trailers: the flushes after the DATA frames
    /// are held (each wakes the task once), the one after the trailers writes it all.
    #[test]
    fn an_answer_goes_out_in_one_write_and_holds_are_bounded() {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socket pair");
        a.set_nonblocking(true).expect("nonblocking");
        b.set_nonblocking(true).expect("nonblocking");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let mut g = Gathered::new(tokio::net::UnixStream::from_std(a).expect("tokio stream"));
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut write = |g: &mut Gathered<tokio::net::UnixStream>, bytes: &[u8]| {
            let w = Pin::new(g).poll_write(&mut cx, bytes);
            assert!(matches!(w, Poll::Ready(Ok(n)) if n == bytes.len()), "{w:?}");
        };
        let flush = |g: &mut Gathered<tokio::net::UnixStream>| {
            rt.block_on(std::future::poll_fn(|cx| Pin::new(&mut *g).poll_flush(cx)))
                .expect("flush");
        };

        let answer = [
            frame(HEADERS, END_HEADERS, 1, 40, 1),
            frame(DATA, 0, 1, 16_384, 2),
            frame(DATA, 0, 1, 11_650, 3),
            frame(HEADERS, END_HEADERS | END_STREAM, 1, 12, 4),
        ];
        write(&mut g, &[answer[0].clone(), answer[1].clone()].concat());
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            Pin::new(&mut g).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "a held flush must wake its task"
        );
        assert_eq!(readable_now(&b), 0, "the held flush wrote");
        let mut write = |g: &mut Gathered<tokio::net::UnixStream>, bytes: &[u8]| {
            let w = Pin::new(g).poll_write(&mut cx, bytes);
            assert!(matches!(w, Poll::Ready(Ok(n)) if n == bytes.len()), "{w:?}");
        };
        write(&mut g, &answer[2]);
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            Pin::new(&mut g).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
        assert_eq!(readable_now(&b), 0, "the held flush wrote");
        let mut cx = Context::from_waker(&waker);
        let w = Pin::new(&mut g).poll_write(&mut cx, &answer[3]);
        assert!(
            matches!(w, Poll::Ready(Ok(n)) if n == answer[3].len()),
            "{w:?}"
        );
        flush(&mut g);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
        b.set_nonblocking(false).expect("blocking");
        let whole = answer.concat();
        let mut got = vec![0u8; whole.len()];
        (&b).read_exact(&mut got).expect("read");
        assert!(got == whole, "bytes changed or reordered");
        b.set_nonblocking(true).expect("nonblocking");
        assert_eq!(readable_now(&b), 0);

        // A stream that stops after a DATA frame (no window left, say) is held at most
        // MAX_HELD_FLUSHES times; the next flush writes it.
        let stalled = frame(DATA, 0, 3, 100, 6);
        let mut cx = Context::from_waker(&waker);
        let w = Pin::new(&mut g).poll_write(&mut cx, &stalled);
        assert!(matches!(w, Poll::Ready(Ok(_))), "{w:?}");
        for held in 1..=MAX_HELD_FLUSHES {
            assert!(matches!(
                Pin::new(&mut g).poll_flush(&mut cx),
                Poll::Ready(Ok(()))
            ));
            assert_eq!(wakes.0.load(Ordering::SeqCst), 2 + usize::from(held));
            assert_eq!(readable_now(&b), 0);
        }
        flush(&mut g);
        b.set_nonblocking(false).expect("blocking");
        let mut got = vec![0u8; stalled.len()];
        (&b).read_exact(&mut got).expect("read the stalled frame");
        assert_eq!(got, stalled);
    }

    /// Through async code, bytes that are not HTTP/2 at all arrive whole and in order, also
    /// when a write is larger than the buffer, and a shutdown writes what is buffered
    /// first. Reads pass through.
    #[tokio::test]
    async fn any_bytes_arrive_whole_and_in_order() {
        let (a, mut b) = tokio::net::UnixStream::pair().expect("socket pair");
        let mut g = Gathered::new(a);
        g.write_all(b"head").await.expect("write");
        g.flush().await.expect("flush");
        let mut got = [0u8; 4];
        b.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"head");

        let big: Vec<u8> = (0..3 * WRITE_BUFFER_BYTES)
            .map(|i| (i % 251) as u8)
            .collect();
        let sent = big.clone();
        let writer = tokio::spawn(async move {
            g.write_all(b"<").await?;
            g.write_all(&sent).await?;
            g.write_all(b">").await?;
            g.flush().await?;
            g.write_all(b"end").await?;
            g.shutdown().await.map(|()| g)
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.expect("read to the shutdown");
        assert_eq!(got.len(), big.len() + 5);
        assert_eq!(got[0], b'<');
        assert!(got[1..=big.len()] == big[..], "bytes changed or reordered");
        assert_eq!(&got[big.len() + 1..], b">end");
        let mut g = writer.await.expect("join").expect("write big");

        b.write_all(b"ping").await.expect("write back");
        let mut got = [0u8; 4];
        g.read_exact(&mut got).await.expect("read through");
        assert_eq!(&got, b"ping");
    }
}
