//! `demo.v1.ChatService`: a bidirectional stream that echoes, served by the users backend.
//!
//! Each message is answered with an echo (`flood N SIZE` with N lines of SIZE characters).
//! The knobs count the messages each way and notice a client that leaves mid-call
//! ([`Knobs::cancelled`]); `fail_stream_after(n)` ends the conversation with the injected
//! failure in place of the server's line `n + 1`.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::knobs::Knobs;
use crate::pb::ChatMessage;
use crate::pb::chat_service_server::ChatService;

/// The largest `flood` answer, in characters (N x SIZE).
const MAX_FLOOD: u64 = 256 << 20;

/// The chat service over its knobs.
#[derive(Debug, Clone)]
pub struct ChatApi {
    knobs: Knobs,
}

impl ChatApi {
    /// A chat over `knobs`.
    pub fn new(knobs: Knobs) -> Self {
        Self { knobs }
    }
}

/// The server's lines, as they are handed to the transport; on drop before the end (the
/// client reset the call), the knobs count a cancellation.
struct Lines {
    inner: ReceiverStream<Result<ChatMessage, Status>>,
    knobs: Knobs,
    ended: bool,
}

impl Stream for Lines {
    type Item = Result<ChatMessage, Status>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = Pin::new(&mut this.inner).poll_next(cx);
        match &next {
            Poll::Ready(None | Some(Err(_))) => this.ended = true,
            Poll::Ready(Some(Ok(_))) => this.knobs.count_sent("Chat"),
            Poll::Pending => {}
        }
        next
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.ended {
            self.knobs.count_cancelled("Chat");
        }
    }
}

/// The answer to one message: `flood N SIZE`, or the echo.
fn answers(msg: &ChatMessage) -> Vec<String> {
    let flood = msg.text.strip_prefix("flood ").and_then(|rest| {
        let mut it = rest.split_whitespace().map(str::parse::<u64>);
        match (it.next(), it.next()) {
            (Some(Ok(n)), Some(Ok(size))) if n.saturating_mul(size) <= MAX_FLOOD => Some((n, size)),
            _ => None,
        }
    });
    match flood {
        Some((n, size)) => (0..n).map(|_| "x".repeat(size as usize)).collect(),
        None => vec![msg.text.clone()],
    }
}

#[tonic::async_trait]
impl ChatService for ChatApi {
    type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatMessage, Status>> + Send>>;

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        self.knobs.on_call("Chat", request.metadata()).await?;
        let knobs = self.knobs.clone();
        let fail_after = knobs.stream_failure_after();
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            let mut seq: i64 = 0;
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => return,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                knobs.count_received("Chat");
                for text in answers(&msg) {
                    seq += 1;
                    if fail_after.is_some_and(|n| seq > i64::from(n)) {
                        let _ = tx.send(Err(knobs.injected_status("Chat"))).await;
                        return;
                    }
                    let line = ChatMessage {
                        user: "server".into(),
                        text,
                        seq,
                    };
                    if tx.send(Ok(line)).await.is_err() {
                        return;
                    }
                }
            }
        });
        let lines = Lines {
            inner: ReceiverStream::new(rx),
            knobs: self.knobs.clone(),
            ended: false,
        };
        Ok(Response::new(Box::pin(lines)))
    }
}
