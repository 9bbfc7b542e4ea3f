//! The errors of the descriptor registry: every message names the source (origin) it is about.

use std::io;
use std::path::PathBuf;

/// Why loading, compiling, fetching or merging descriptors failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A descriptor set file could not be read.
    #[error("cannot read descriptor set \"{}\": {source}", path.display())]
    ReadDescriptorSet {
        /// The file that was asked for.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The bytes of a source are not a FileDescriptorSet / FileDescriptorProto.
    #[error("{origin}: not a valid protobuf descriptor: {reason}")]
    InvalidDescriptor {
        /// The source the bytes came from.
        origin: String,
        /// What is wrong with them.
        reason: String,
    },
    /// A path given as proto sources is unusable (missing, unreadable, no .proto files).
    #[error("proto sources \"{}\": {reason}", path.display())]
    ProtoPath {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// protox rejected the .proto sources (the message has `file:line:column`).
    #[error("{origin}: {message}")]
    Compile {
        /// The proto sources, e.g. `proto sources "descriptors/proto"`.
        origin: String,
        /// protox's message.
        message: String,
    },
    /// Fetching descriptors over gRPC server reflection failed.
    #[error("{origin}: {failure}")]
    Reflection {
        /// The backend, e.g. `reflection from backend "users" (http://127.0.0.1:50051)`.
        origin: String,
        /// What failed.
        failure: ReflectionFailure,
    },
    /// Two sources provide a file with the same name and different content.
    #[error(
        "file \"{file}\" is provided with different content by {first_origin} and by {second_origin}"
    )]
    FileConflict {
        /// The file name.
        file: String,
        /// The source seen first.
        first_origin: String,
        /// The source seen second.
        second_origin: String,
    },
    /// Two different files define the same fully-qualified symbol.
    #[error("{0}")]
    SymbolConflict(Box<SymbolConflict>),
    /// A file imports a file that no source (nor the built-ins) provides.
    #[error("{origin}: file \"{file}\" imports \"{import}\", which no registered source provides")]
    MissingImport {
        /// Where the importing file came from.
        origin: String,
        /// The importing file.
        file: String,
        /// The import that is missing.
        import: String,
    },
    /// prost-reflect rejected the merged files (unresolved type, invalid option...).
    #[error("{origin}: invalid descriptors: {message}")]
    Pool {
        /// The source of the file the error is about (or "merged descriptors" when unknown).
        origin: String,
        /// prost-reflect's message, with `file:line:column` when known.
        message: String,
    },
    /// The embedded google protos failed to compile (a bug in Portico, not in user input).
    #[error("built-in google protos: {0}")]
    Builtin(String),
}

/// The details of [`RegistryError::SymbolConflict`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{kind} \"{symbol}\" is defined twice: in file \"{first_file}\" ({first_origin}) and in file \"{second_file}\" ({second_origin})"
)]
pub struct SymbolConflict {
    /// The fully-qualified name, e.g. `demo.v1.User`.
    pub symbol: String,
    /// message, enum, enum value, service or extension.
    pub kind: &'static str,
    /// The file seen first.
    pub first_file: String,
    /// Where the first file came from.
    pub first_origin: String,
    /// The file seen second.
    pub second_file: String,
    /// Where the second file came from.
    pub second_origin: String,
}

/// What went wrong while talking to a backend's reflection service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReflectionFailure {
    /// The backend could not be reached.
    #[error("cannot connect to the backend: {0}")]
    Connect(String),
    /// Both reflection versions answered UNIMPLEMENTED.
    #[error(
        "the backend does not serve gRPC server reflection (UNIMPLEMENTED for grpc.reflection.v1 and grpc.reflection.v1alpha)"
    )]
    Unimplemented,
    /// The reflection call failed with a gRPC status.
    #[error("{request} failed: {code:?}: {message}")]
    Status {
        /// The request being answered, e.g. `FileByFilename "a.proto"`.
        request: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// The server answered a request with an `error_response`.
    #[error("{request} failed: the server answered error {code}: {message}")]
    ErrorResponse {
        /// The request, e.g. `FileContainingSymbol "demo.v1.Users"`.
        request: String,
        /// The error code from the server (a gRPC code number).
        code: i32,
        /// The error message from the server.
        message: String,
    },
    /// The server broke the protocol (closed the stream early, unexpected answer, bad bytes).
    #[error("{0}")]
    Protocol(String),
    /// No complete answer within the deadline.
    #[error("no complete answer from the reflection service within {0:?}")]
    Timeout(std::time::Duration),
}
