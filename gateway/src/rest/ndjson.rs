//! Client streaming from an NDJSON body, read line by line while the call runs: each line is
//! one request message, handed to the call as soon as it is transcoded, through a small
//! bounded channel (a backend that does not take messages stops the body being read).
//!
//! The lines of each piece of the body that arrives are all transcoded before any of them is
//! sent, and the call starts with the first piece: a body that arrives at once is checked
//! whole before the backend sees anything. A bad line later cancels the call; the answer is
//! then a 400 naming the line (nothing was answered yet: the reply of a client stream comes
//! after its last message).

use bytes::{Bytes, BytesMut};
use prost_reflect::MessageDescriptor;
use tokio::sync::{mpsc, oneshot};

use crate::error::GatewayError;
use crate::ingress::body::BodyReader;
use crate::snapshot::Snapshot;
use crate::transcode::direct::TypePlan;
use crate::transcode::{self, BodyTarget, HttpRequestParts};

/// Request messages transcoded ahead of the backend taking them.
pub(crate) const REQUEST_BUFFER: usize = 4;

/// Reads `reader` to its end, sending each line's message into `tx`; `start` fires when the
/// first piece's lines are ready to go (or the body ended): the call may start. Returns
/// whether every line was written by the direct decoder.
pub(crate) async fn feed(
    mut reader: BodyReader,
    input: &MessageDescriptor,
    plan: Option<&TypePlan>,
    snap: &Snapshot,
    tx: mpsc::Sender<Bytes>,
    start: oneshot::Sender<()>,
) -> Result<bool, GatewayError> {
    let limits = &snap.config.streams;
    let max_line = limits.max_message_bytes.as_usize();
    let mut start = Some(start);
    let mut pending = BytesMut::new();
    let mut line_no: u64 = 0;
    let mut messages: u64 = 0;
    let mut direct = true;
    let mut open = true;
    // How much of `pending` has been searched for a newline.
    let mut scanned = 0;
    while open {
        let piece = reader.next().await?;
        match &piece {
            Some(data) => pending.extend_from_slice(data),
            None => open = false,
        }
        let mut batch = Vec::new();
        loop {
            // Only bytes not yet searched are searched: a long line arriving in small pieces
            // is scanned once, not once per piece.
            let found = pending
                .get(scanned..)
                .and_then(|rest| rest.iter().position(|b| *b == b'\n'));
            let line = match found {
                Some(at) => {
                    let line = pending.split_to(scanned + at + 1).freeze();
                    scanned = 0;
                    line
                }
                // The last line may lack its newline.
                None if !open && !pending.is_empty() => pending.split().freeze(),
                None => {
                    scanned = pending.len();
                    // A line already over the limit is refused before the rest of it comes.
                    if scanned > max_line {
                        return Err(GatewayError::rejected(
                            crate::error::ErrorKind::PayloadTooLarge,
                            format!(
                                "line {} is more than the limit of {max_line} bytes (streams.max_message_bytes)",
                                line_no + 1
                            ),
                        ));
                    }
                    break;
                }
            };
            line_no += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            if text.len() > max_line {
                return Err(GatewayError::rejected(
                    crate::error::ErrorKind::PayloadTooLarge,
                    format!(
                        "line {line_no} is {} bytes, more than the limit of {max_line} (streams.max_message_bytes)",
                        text.len()
                    ),
                ));
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            messages += 1;
            if messages > limits.max_messages {
                return Err(GatewayError::rejected(
                    crate::error::ErrorKind::PayloadTooLarge,
                    format!(
                        "line {line_no}: more than {} messages in one call (streams.max_messages)",
                        limits.max_messages
                    ),
                ));
            }
            let parts = HttpRequestParts {
                body: text,
                body_target: &BodyTarget::Whole,
                path_bindings: &[],
                query: None,
                fill_update_mask: false,
            };
            let encoded =
                transcode::encode_request(input, plan, &parts, &snap.decode).map_err(|e| {
                    GatewayError::BadRequest {
                        field: e.field.clone(),
                        message: format!("line {line_no}: {e}"),
                    }
                })?;
            direct &= encoded.direct;
            batch.push(Bytes::from(encoded.bytes));
        }
        // A line still incomplete past the limit is refused without waiting for its end.
        if pending.len() > max_line {
            return Err(GatewayError::rejected(
                crate::error::ErrorKind::PayloadTooLarge,
                format!(
                    "line {} is more than the limit of {max_line} bytes (streams.max_message_bytes)",
                    line_no + 1
                ),
            ));
        }
        if (!batch.is_empty() || !open)
            && let Some(s) = start.take()
        {
            let _ = s.send(());
        }
        for msg in batch {
            // A call that ended takes no more: its answer is what counts.
            if tx.send(msg).await.is_err() {
                return Ok(direct);
            }
        }
    }
    Ok(direct)
}
