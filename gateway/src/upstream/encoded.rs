//! A codec whose requests are already encoded: a call's request is encoded once, and each
//! attempt (retries included) sends the same bytes without copying the message again.

use bytes::{BufMut, Bytes};
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::Status;
use tonic::codec::{Codec, EncodeBuf, Encoder};

use super::codec::{DynamicCodec, DynamicDecoder};

/// Sends pre-encoded request bytes, decodes replies of one message type.
#[derive(Clone, Debug)]
pub struct EncodedCodec(DynamicCodec);

impl EncodedCodec {
    /// A codec whose decoder produces messages of type `response`.
    pub fn new(response: MessageDescriptor) -> Self {
        Self(DynamicCodec::new(response))
    }
}

impl Codec for EncodedCodec {
    type Encode = Bytes;
    type Decode = DynamicMessage;
    type Encoder = BytesEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.0.decoder()
    }
}

/// Writes bytes as they are.
#[derive(Debug)]
pub struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}
