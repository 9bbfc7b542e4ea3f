//! Fetching a backend's descriptors over gRPC server reflection (v1, falling back to v1alpha).
//!
//! One bidi stream per attempt: ListServices, then FileContainingSymbol for every service,
//! then FileByFilename for every import not received yet. Servers that send the imports along
//! (grpc-go) and servers that send only the defining file (tonic) both work; each file is kept
//! once, as the raw bytes the server sent.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;

use super::error::{ReflectionFailure, RegistryError};
use super::source::{FileLite, RawFile, SourceFiles};

/// How long [`fetch_reflection`] waits for the whole exchange.
pub const DEFAULT_REFLECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest reflection answer accepted (one file, or one file and its imports).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// What a backend's reflection service provided.
#[derive(Debug, Clone)]
pub struct Reflected {
    /// The files, each once, as received.
    pub files: SourceFiles,
    /// The services the server lists, minus `grpc.reflection.*` and `grpc.health.*`.
    pub services: Vec<String>,
}

/// Fetches a backend's services and descriptors, with the default 10 s overall timeout.
///
/// `origin` names the backend in every message, e.g.
/// `reflection from backend "users" (http://127.0.0.1:50051)`.
pub async fn fetch_reflection(
    channel: Channel,
    origin: String,
) -> Result<Reflected, RegistryError> {
    fetch_reflection_with_timeout(channel, origin, DEFAULT_REFLECTION_TIMEOUT).await
}

/// [`fetch_reflection`] with an explicit overall timeout (both protocol versions included).
pub async fn fetch_reflection_with_timeout(
    channel: Channel,
    origin: String,
    timeout: Duration,
) -> Result<Reflected, RegistryError> {
    let outcome = tokio::time::timeout(timeout, fetch_any_version(channel, &origin)).await;
    let fail = |failure| RegistryError::Reflection {
        origin: origin.clone(),
        failure,
    };
    let (files, services) = match outcome {
        Err(_elapsed) => return Err(fail(ReflectionFailure::Timeout(timeout))),
        Ok(Err(failure)) => return Err(fail(failure)),
        Ok(Ok(found)) => found,
    };
    Ok(Reflected {
        files: SourceFiles { origin, files },
        services,
    })
}

async fn fetch_any_version(
    channel: Channel,
    origin: &str,
) -> Result<(Vec<RawFile>, Vec<String>), ReflectionFailure> {
    match exchange(Version::V1, channel.clone()).await {
        Err(Failure::Unimplemented) => {
            tracing::debug!(%origin, "reflection v1 unimplemented, trying v1alpha");
        }
        other => return other.map_err(Failure::into_public),
    }
    exchange(Version::V1Alpha, channel)
        .await
        .map_err(Failure::into_public)
}

#[derive(Debug, Clone, Copy)]
enum Version {
    V1,
    V1Alpha,
}

/// A request, independent of the protocol version.
#[derive(Debug, Clone)]
enum Request {
    ListServices,
    FileContainingSymbol(String),
    FileByFilename(String),
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::ListServices => f.write_str("ListServices"),
            Request::FileContainingSymbol(symbol) => write!(f, "FileContainingSymbol \"{symbol}\""),
            Request::FileByFilename(file) => write!(f, "FileByFilename \"{file}\""),
        }
    }
}

/// An answer, independent of the protocol version.
enum Answer {
    Files(Vec<Vec<u8>>),
    Services(Vec<String>),
    Error { code: i32, message: String },
    Other,
}

/// Internal failure; `Unimplemented` triggers the v1alpha fallback.
enum Failure {
    Unimplemented,
    Public(ReflectionFailure),
}

impl Failure {
    fn status(request: &Request, status: &tonic::Status) -> Failure {
        match status.code() {
            tonic::Code::Unimplemented => Failure::Unimplemented,
            code => Failure::Public(ReflectionFailure::Status {
                request: request.to_string(),
                code,
                message: status_message(status),
            }),
        }
    }

    fn into_public(self) -> ReflectionFailure {
        match self {
            Failure::Unimplemented => ReflectionFailure::Unimplemented,
            Failure::Public(failure) => failure,
        }
    }
}

/// The status message followed by its source chain (where tonic puts "tcp connect error" etc.).
fn status_message(status: &tonic::Status) -> String {
    let mut message = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        let text = err.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = err.source();
    }
    message
}

type Answers = BoxStream<'static, Result<Answer, tonic::Status>>;

/// Converts between the version-independent types and one protocol version's types.
macro_rules! open_stream {
    ($pb:path, $channel:expr, $requests:expr) => {{
        use pb::server_reflection_request::MessageRequest;
        use pb::server_reflection_response::MessageResponse;
        use $pb as pb;
        let requests = $requests.map(|request: Request| pb::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(match request {
                Request::ListServices => MessageRequest::ListServices(String::new()),
                Request::FileContainingSymbol(symbol) => {
                    MessageRequest::FileContainingSymbol(symbol)
                }
                Request::FileByFilename(file) => MessageRequest::FileByFilename(file),
            }),
        });
        let mut client = pb::server_reflection_client::ServerReflectionClient::new($channel)
            .max_decoding_message_size(MAX_ANSWER_BYTES);
        client
            .server_reflection_info(requests)
            .await
            .map(|response| {
                let answers = response.into_inner().map(|item| {
                    item.map(|answer| match answer.message_response {
                        Some(MessageResponse::FileDescriptorResponse(files)) => {
                            Answer::Files(files.file_descriptor_proto)
                        }
                        Some(MessageResponse::ListServicesResponse(list)) => {
                            Answer::Services(list.service.into_iter().map(|s| s.name).collect())
                        }
                        Some(MessageResponse::ErrorResponse(error)) => Answer::Error {
                            code: error.error_code,
                            message: error.error_message,
                        },
                        _ => Answer::Other,
                    })
                });
                Box::pin(answers) as Answers
            })
    }};
}

async fn open(
    version: Version,
    channel: Channel,
    requests: impl Stream<Item = Request> + Send + 'static,
) -> Result<Answers, tonic::Status> {
    match version {
        Version::V1 => open_stream!(tonic_reflection::pb::v1, channel, requests),
        Version::V1Alpha => open_stream!(tonic_reflection::pb::v1alpha, channel, requests),
    }
}

/// One attempt over one bidi stream.
async fn exchange(
    version: Version,
    channel: Channel,
) -> Result<(Vec<RawFile>, Vec<String>), Failure> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let mut walk = Walk {
        sender,
        in_flight: VecDeque::new(),
    };
    // Queued before opening: some servers send headers only with the first answer.
    walk.send(Request::ListServices)?;
    let mut answers = open(version, channel, UnboundedReceiverStream::new(receiver))
        .await
        .map_err(|status| match status.code() {
            tonic::Code::Unimplemented => Failure::Unimplemented,
            tonic::Code::Unavailable => {
                Failure::Public(ReflectionFailure::Connect(status_message(&status)))
            }
            _ => Failure::status(&Request::ListServices, &status),
        })?;

    let (request, answer) = walk.next(&mut answers).await?;
    let services: Vec<String> = match answer {
        Answer::Services(names) => names
            .into_iter()
            .filter(|name| {
                !name.starts_with("grpc.reflection.") && !name.starts_with("grpc.health.")
            })
            .collect(),
        other => return Err(unexpected(&request, other)),
    };
    for service in &services {
        walk.send(Request::FileContainingSymbol(service.clone()))?;
    }

    let mut files: Vec<RawFile> = Vec::new();
    let mut received: HashSet<String> = HashSet::new();
    let mut requested: HashSet<String> = HashSet::new();
    while !walk.in_flight.is_empty() {
        let (request, answer) = walk.next(&mut answers).await?;
        let Answer::Files(raw_files) = answer else {
            return Err(unexpected(&request, answer));
        };
        // Register everything in the answer first: grpc-go sends the imports along.
        let mut new_files = Vec::new();
        for raw in raw_files {
            let bytes = Bytes::from(raw);
            let lite = FileLite::decode_raw(&bytes).map_err(|err| {
                protocol(format!(
                    "{request}: the answer is not a FileDescriptorProto: {err}"
                ))
            })?;
            let name = lite.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(protocol(format!(
                    "{request}: a file in the answer has no name"
                )));
            }
            if received.insert(name.clone()) {
                files.push(RawFile { name, bytes });
                new_files.push(lite);
            }
        }
        for lite in new_files {
            for import in lite.dependency {
                if !received.contains(&import) && requested.insert(import.clone()) {
                    walk.send(Request::FileByFilename(import))?;
                }
            }
        }
    }
    Ok((files, services))
}

/// The request side of the stream and the requests still waiting for an answer, in order.
struct Walk {
    sender: mpsc::UnboundedSender<Request>,
    in_flight: VecDeque<Request>,
}

impl Walk {
    fn send(&mut self, request: Request) -> Result<(), Failure> {
        self.sender
            .send(request.clone())
            .map_err(|_closed| protocol("the reflection stream closed".to_owned()))?;
        self.in_flight.push_back(request);
        Ok(())
    }

    /// The next answer, paired with the request it answers; server errors become failures.
    async fn next(&mut self, answers: &mut Answers) -> Result<(Request, Answer), Failure> {
        let request = self.in_flight.pop_front().unwrap_or(Request::ListServices);
        match answers.next().await {
            None => Err(protocol(format!(
                "{request}: the server closed the stream without answering"
            ))),
            Some(Err(status)) => Err(Failure::status(&request, &status)),
            Some(Ok(Answer::Error { code, message })) => {
                Err(Failure::Public(ReflectionFailure::ErrorResponse {
                    request: request.to_string(),
                    code,
                    message,
                }))
            }
            Some(Ok(answer)) => Ok((request, answer)),
        }
    }
}

fn protocol(message: String) -> Failure {
    Failure::Public(ReflectionFailure::Protocol(message))
}

fn unexpected(request: &Request, answer: Answer) -> Failure {
    let kind = match answer {
        Answer::Files(_) => "files",
        Answer::Services(_) => "a service list",
        Answer::Error { .. } => "an error",
        Answer::Other => "an unexpected kind of answer",
    };
    protocol(format!("{request}: the server answered with {kind}"))
}

#[cfg(test)]
#[path = "reflection_tests.rs"]
mod tests;
