//! Client streams: the request messages of client-streaming and bidirectional methods sent as
//! they arrive, over a WebSocket or an NDJSON body read line by line.

use serde::{Deserialize, Serialize};

use super::{ByteSize, HumanDuration};

/// Limits and switches of client streams (`streams:`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsConfig {
    /// Serve streaming methods over WebSocket (`GET /{package.Service}/{Method}` with
    /// `Upgrade: websocket`); on by default: it reaches the methods gRPC-Web and the REST
    /// default routes reach, through the same ingress and policies.
    #[serde(default = "yes")]
    pub websocket: bool,
    /// Most request messages in one call (WebSocket frames or NDJSON lines); past it the call
    /// ends with RESOURCE_EXHAUSTED (WebSocket) or 413 (NDJSON).
    #[serde(default = "d_messages")]
    pub max_messages: u64,
    /// Largest request message, as JSON (a WebSocket frame or an NDJSON line).
    #[serde(default = "d_message_bytes")]
    pub max_message_bytes: ByteSize,
    /// A WebSocket call during which neither side sent a message for this long ends with
    /// DEADLINE_EXCEEDED.
    #[serde(default = "d_idle")]
    pub idle_timeout: HumanDuration,
}

fn yes() -> bool {
    true
}
fn d_messages() -> u64 {
    10_000
}
fn d_message_bytes() -> ByteSize {
    ByteSize(1 << 20)
}
fn d_idle() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            websocket: yes(),
            max_messages: d_messages(),
            max_message_bytes: d_message_bytes(),
            idle_timeout: d_idle(),
        }
    }
}

impl StreamsConfig {
    /// Checks the limits; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.max_messages == 0 {
            return Err(("streams.max_messages".into(), "must be at least 1".into()));
        }
        if self.max_message_bytes.bytes() == 0 {
            return Err((
                "streams.max_message_bytes".into(),
                "must be at least 1 byte".into(),
            ));
        }
        if self.idle_timeout.get().is_zero() {
            return Err((
                "streams.idle_timeout".into(),
                "must be longer than zero".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_on_and_bad_limits_name_their_key() {
        let cfg = StreamsConfig::default();
        assert!(cfg.websocket);
        assert!(cfg.validate().is_ok());
        let zero = StreamsConfig {
            max_messages: 0,
            ..StreamsConfig::default()
        };
        assert_eq!(zero.validate().unwrap_err().0, "streams.max_messages");
        let zero = StreamsConfig {
            max_message_bytes: ByteSize(0),
            ..StreamsConfig::default()
        };
        assert_eq!(zero.validate().unwrap_err().0, "streams.max_message_bytes");
        let unknown: Result<StreamsConfig, _> = yaml_serde::from_str("max_frames: 3");
        assert!(unknown.is_err());
    }
}
