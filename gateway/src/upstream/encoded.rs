//! A codec whose requests are already encoded: a call's request is encoded once, and each
//! attempt (retries included) sends the same bytes without copying the message again. Replies
//! come back in the form the call asked for ([`ReplyForm`]).

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};
use prost_reflect::MessageDescriptor;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use super::call::{Payload, ReplyForm, decode_reply};
use super::codec::DynamicDecoder;

/// Sends pre-encoded request bytes; reads replies with a copy of its decoder `D`.
#[derive(Clone, Debug)]
pub struct EncodedCodec<D>(D);

impl EncodedCodec<PayloadDecoder> {
    /// A codec for unary replies of type `response`, handed back in `form`.
    pub fn unary(response: MessageDescriptor, form: ReplyForm) -> Self {
        Self(PayloadDecoder { response, form })
    }
}

impl EncodedCodec<DynamicDecoder> {
    /// A codec for a stream of replies of type `response`, each decoded.
    pub fn stream(response: MessageDescriptor) -> Self {
        Self(DynamicDecoder::new(response))
    }
}

impl<D> Codec for EncodedCodec<D>
where
    D: Decoder<Error = Status> + Clone + Send + 'static,
    D::Item: Send + 'static,
{
    type Encode = Bytes;
    type Decode = D::Item;
    type Encoder = BytesEncoder;
    type Decoder = D;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.0.clone()
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

/// Reads a reply: decodes it, or keeps its bytes (without copying them).
#[derive(Clone, Debug)]
pub struct PayloadDecoder {
    response: MessageDescriptor,
    form: ReplyForm,
}

impl Decoder for PayloadDecoder {
    type Item = Payload;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Payload>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(match self.form {
            ReplyForm::Decoded => Payload::Decoded(Arc::new(decode_reply(&self.response, bytes)?)),
            ReplyForm::Wire => Payload::Wire(bytes),
        }))
    }
}
