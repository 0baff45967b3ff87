//! An output pipe that keeps the first N bytes and counts the rest.
//!
//! wasmtime-wasi's `MemoryOutputPipe` makes a guest's write fail once its capacity is reached,
//! which turns an output flood into a crash inside the guest (a `BrokenPipe` traceback that hides
//! the program's real behaviour). This pipe accepts every write, keeps the first `cap` bytes and
//! remembers that it dropped some, so the result can say "stdout was truncated" and the program
//! still runs to its end (or to another limit).

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Default)]
struct Inner {
    buf: Vec<u8>,
    cap: usize,
    dropped: u64,
}

/// A capped in-memory stdout/stderr; clones share the same buffer.
#[derive(Clone)]
pub struct CappedPipe(Arc<Mutex<Inner>>);

impl CappedPipe {
    /// A pipe keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self(Arc::new(Mutex::new(Inner { buf: Vec::new(), cap, dropped: 0 })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a writer panicked mid-append; the bytes are still valid.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, bytes: &[u8]) {
        let mut i = self.lock();
        let room = i.cap.saturating_sub(i.buf.len());
        let keep = room.min(bytes.len());
        i.buf.extend_from_slice(&bytes[..keep]);
        i.dropped += (bytes.len() - keep) as u64;
    }

    /// Whether bytes were dropped since the last reset.
    pub fn truncated(&self) -> bool {
        self.lock().dropped > 0
    }

    /// The kept bytes as text (invalid UTF-8 replaced), emptying the buffer.
    pub fn take(&self) -> String {
        let buf = std::mem::take(&mut self.lock().buf);
        String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Empties the pipe and sets a new cap (a session's next turn).
    pub fn reset(&self, cap: usize) {
        let mut i = self.lock();
        i.buf.clear();
        i.cap = cap;
        i.dropped = 0;
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        // Always room: what does not fit is dropped, not refused.
        Ok(1 << 20)
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_reports_the_rest() {
        let p = CappedPipe::new(5);
        p.push(b"abc");
        assert!(!p.truncated());
        p.push(b"defgh");
        assert!(p.truncated());
        assert_eq!(p.take(), "abcde");
        p.reset(2);
        assert!(!p.truncated());
        p.push(b"xyz");
        assert_eq!((p.take(), p.truncated()), ("xy".to_string(), true));
    }
}
