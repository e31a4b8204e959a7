//! Response bodies: whole ones, and streamed ones for the size and stall faults.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use tokio::sync::mpsc;

pub type SimBody = BoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> SimBody {
    Full::new(bytes.into()).boxed()
}

pub fn empty() -> SimBody {
    Empty::new().boxed()
}

/// A body fed chunk by chunk from a task; it ends when the sender is dropped.
struct ChannelBody {
    chunks: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.chunks
            .poll_recv(cx)
            .map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// A streamed body and the sender that feeds it. When the client goes
/// away, sends fail and the feeding task stops.
pub fn channel() -> (mpsc::Sender<Bytes>, SimBody) {
    let (tx, rx) = mpsc::channel(4);
    (tx, ChannelBody { chunks: rx }.boxed())
}

const CHUNK: usize = 64 * 1024;

/// A valid JSON SIEM response of exactly `bytes` bytes (at least the size
/// of its fixed frame), padded with a long string, written in 64 KiB chunks
/// so a huge body never sits in memory.
pub fn oversized_json(bytes: u64, query_end: &str) -> SimBody {
    let head =
        format!("{{\"queryEndTime\":\"{query_end}\",\"messagesDelivered\":[],\"padding\":\"");
    let tail = "\"}";
    let frame = (head.len() + tail.len()) as u64;
    let mut padding = bytes.saturating_sub(frame);
    let (tx, body) = channel();
    tokio::spawn(async move {
        if tx.send(Bytes::from(head)).await.is_err() {
            return;
        }
        let chunk = Bytes::from(vec![b'x'; CHUNK]);
        while padding > 0 {
            let n = padding.min(CHUNK as u64) as usize;
            if tx.send(chunk.slice(..n)).await.is_err() {
                return;
            }
            padding -= n as u64;
        }
        let _client_may_have_left = tx.send(Bytes::from_static(tail.as_bytes())).await;
    });
    body
}

/// Sends the first half of `content`, waits `stall`, then the rest.
pub fn stalled(content: Bytes, stall: std::time::Duration) -> SimBody {
    let (tx, body) = channel();
    tokio::spawn(async move {
        let half = content.len() / 2;
        if tx.send(content.slice(..half)).await.is_err() {
            return;
        }
        tokio::time::sleep(stall).await;
        let _client_may_have_left = tx.send(content.slice(half..)).await;
    });
    body
}
