//! A tonic codec for prost-reflect's `DynamicMessage`: no generated code on either side.

use bytes::{Buf, BufMut};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};

use super::call::decode_reply;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Encodes any `DynamicMessage` and decodes replies of one message type.
#[derive(Clone, Debug)]
pub struct DynamicCodec {
    response: MessageDescriptor,
}

impl DynamicCodec {
    /// A codec whose decoder produces messages of type `response`.
    pub fn new(response: MessageDescriptor) -> Self {
        Self { response }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder::new(self.response.clone())
    }
}

/// Writes a `DynamicMessage` in the protobuf binary format.
#[derive(Debug)]
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        if dst.remaining_mut() < item.encoded_len() {
            dst.reserve(item.encoded_len());
        }
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the request: {e}")))
    }
}

/// Reads a `DynamicMessage` of a known type from the protobuf binary format.
#[derive(Clone, Debug)]
pub struct DynamicDecoder(MessageDescriptor);

impl DynamicDecoder {
    /// A decoder of messages of type `desc`.
    pub fn new(desc: MessageDescriptor) -> Self {
        Self(desc)
    }
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        decode_reply(&self.0, src.copy_to_bytes(src.remaining())).map(Some)
    }
}
