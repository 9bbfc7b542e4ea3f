//! The taxonomy table: every kind of failure with its origin, retryability, machine code,
//! gRPC code and HTTP status, in one place. Renderers read this table; nothing else decides a
//! status.

use http::StatusCode;
use tonic::Code;

/// Who caused a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The request is wrong (malformed, too big, too slow, not allowed): 4xx.
    Client,
    /// The gateway failed (a bug, a configuration gap): 5xx, logged in full.
    Gateway,
    /// A backend failed, or is unwell enough that the gateway did not call it.
    Upstream,
}

impl Origin {
    /// `client`, `gateway` or `upstream`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Client => "client",
            Origin::Gateway => "gateway",
            Origin::Upstream => "upstream",
        }
    }
}

/// One kind of failure. [`ErrorKind::code`] is the machine-readable code clients see (GraphQL
/// `extensions.code`); [`ErrorKind::http_status`] and [`ErrorKind::grpc_code`] are how every
/// door writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    // --- the request itself ---
    /// No route or endpoint matches the path.
    NotFound,
    /// The path exists under other HTTP methods.
    MethodNotAllowed,
    /// Malformed input: JSON, path, query, parameters, headers.
    BadRequest,
    /// The body is over `limits.max_body_bytes` (after decompression).
    PayloadTooLarge,
    /// The body's `Content-Type` or `Content-Encoding` is not one the door takes.
    UnsupportedMediaType,
    /// None of the media types the client accepts can be produced.
    NotAcceptable,
    /// The client took too long to send its body.
    RequestTimeout,
    /// Too many request headers, or too large ones.
    HeadersTooLarge,
    /// A method the door does not serve: unknown to the gateway, or of a streaming kind the
    /// door cannot carry (a gRPC-Web client stream).
    Unimplemented,
    /// The caller is not identified, or its credentials are not valid.
    Unauthenticated,
    /// The caller is identified but not allowed to do this.
    PermissionDenied,
    /// The caller is over a rate limit or quota (`rate_limits`).
    RateLimited,
    /// The shared rate-limit store (Redis) cannot decide and `on_error: deny` is set.
    LimiterUnavailable,
    /// A GraphQL document that does not parse.
    GraphqlParseFailed,
    /// A GraphQL operation that does not validate against the schema.
    GraphqlValidationFailed,
    /// The GraphQL operation to run cannot be chosen from the document.
    OperationResolutionFailure,
    /// A GraphQL argument or variable the gateway cannot turn into a request message.
    BadUserInput,
    /// A GraphQL document over `graphql.limits.max_tokens`.
    TooManyTokens,
    /// A GraphQL operation nested deeper than `graphql.limits.max_depth`.
    QueryTooDeep,
    /// A GraphQL operation with more aliases than `graphql.limits.max_aliases`.
    TooManyAliases,
    /// A GraphQL operation with more root fields than `graphql.limits.max_root_fields`.
    TooManyRootFields,
    /// A GraphQL operation whose estimated cost is over `graphql.limits.max_cost`.
    QueryTooCostly,
    /// GraphQL fragments that spread each other in a cycle.
    FragmentCycle,
    /// A persisted-operation id this gateway does not know.
    PersistedQueryNotFound,
    /// An APQ id not registered yet: the client resends it with the document (200, as
    /// Apollo's protocol has it).
    PersistedQueryNotRegistered,
    /// A document sent with an id it does not hash to.
    PersistedQueryHashMismatch,
    /// A document sent where only persisted operations are run.
    PersistedQueryRequired,
    /// A malformed persisted-operation id.
    PersistedQueryBadRequest,
    /// GraphQL is off in this gateway's configuration.
    GraphqlDisabled,
    /// A method of a retired API version (`versions`): 410 Gone, naming its replacement.
    Gone,
    // --- the gateway ---
    /// A bug or an unexpected state: the detail is logged, never sent.
    Internal,
    /// No backend serves the method's service.
    NoBackend,
    // --- the backends ---
    /// A backend answered with this non-OK gRPC status.
    Upstream(Code),
    /// A backend could not be reached.
    Unavailable,
    /// The call's deadline passed.
    DeadlineExceeded,
    /// A backend's reply was over `limits.max_response_bytes`.
    ResponseTooLarge,
    /// The backend's circuit breaker is open: the call was not made.
    CircuitOpen,
    /// The backend's bulkhead is full: the call was not made.
    Overloaded,
}

/// Every kind but `Upstream`, for lookups by code.
const NAMED: &[ErrorKind] = &[
    ErrorKind::NotFound,
    ErrorKind::MethodNotAllowed,
    ErrorKind::BadRequest,
    ErrorKind::PayloadTooLarge,
    ErrorKind::UnsupportedMediaType,
    ErrorKind::NotAcceptable,
    ErrorKind::RequestTimeout,
    ErrorKind::HeadersTooLarge,
    ErrorKind::Unimplemented,
    ErrorKind::Unauthenticated,
    ErrorKind::PermissionDenied,
    ErrorKind::RateLimited,
    ErrorKind::GraphqlParseFailed,
    ErrorKind::GraphqlValidationFailed,
    ErrorKind::OperationResolutionFailure,
    ErrorKind::BadUserInput,
    ErrorKind::TooManyTokens,
    ErrorKind::QueryTooDeep,
    ErrorKind::TooManyAliases,
    ErrorKind::TooManyRootFields,
    ErrorKind::QueryTooCostly,
    ErrorKind::FragmentCycle,
    ErrorKind::PersistedQueryNotFound,
    ErrorKind::PersistedQueryHashMismatch,
    ErrorKind::PersistedQueryRequired,
    ErrorKind::PersistedQueryBadRequest,
    ErrorKind::GraphqlDisabled,
    ErrorKind::Gone,
    ErrorKind::Internal,
    ErrorKind::NoBackend,
    ErrorKind::Unavailable,
    ErrorKind::DeadlineExceeded,
    ErrorKind::ResponseTooLarge,
    ErrorKind::CircuitOpen,
    ErrorKind::Overloaded,
];

impl ErrorKind {
    /// Who caused it.
    pub fn origin(self) -> Origin {
        use ErrorKind::*;
        match self {
            Internal | NoBackend | LimiterUnavailable => Origin::Gateway,
            Upstream(_) | Unavailable | DeadlineExceeded | ResponseTooLarge | CircuitOpen
            | Overloaded => Origin::Upstream,
            _ => Origin::Client,
        }
    }

    /// Whether the same request may succeed if the client sends it again later (after
    /// `Retry-After` when there is one): the failure is transient and says nothing about the
    /// request.
    pub fn retryable(self) -> bool {
        use ErrorKind::*;
        match self {
            Unavailable | DeadlineExceeded | CircuitOpen | Overloaded | RequestTimeout
            | RateLimited | LimiterUnavailable => true,
            Upstream(code) => matches!(
                code,
                Code::Unavailable | Code::Aborted | Code::DeadlineExceeded
            ),
            _ => false,
        }
    }

    /// The machine-readable code (SCREAMING_SNAKE_CASE): the gRPC code's name for backend
    /// answers, the gateway's own name otherwise.
    pub const fn code(self) -> &'static str {
        use ErrorKind::*;
        match self {
            NotFound => "NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            BadRequest => "BAD_REQUEST",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            NotAcceptable => "NOT_ACCEPTABLE",
            RequestTimeout => "REQUEST_TIMEOUT",
            HeadersTooLarge => "REQUEST_HEADER_FIELDS_TOO_LARGE",
            Unimplemented => "UNIMPLEMENTED",
            Unauthenticated => "UNAUTHENTICATED",
            PermissionDenied => "PERMISSION_DENIED",
            RateLimited => "RATE_LIMITED",
            // To the client, a limiter that cannot decide is a gateway that is not available.
            LimiterUnavailable => "UNAVAILABLE",
            GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            OperationResolutionFailure => "OPERATION_RESOLUTION_FAILURE",
            BadUserInput => "BAD_USER_INPUT",
            TooManyTokens => "TOO_MANY_TOKENS",
            QueryTooDeep => "QUERY_TOO_DEEP",
            TooManyAliases => "TOO_MANY_ALIASES",
            TooManyRootFields => "TOO_MANY_ROOT_FIELDS",
            QueryTooCostly => "QUERY_TOO_COSTLY",
            FragmentCycle => "FRAGMENT_CYCLE",
            PersistedQueryNotFound | PersistedQueryNotRegistered => "PERSISTED_QUERY_NOT_FOUND",
            PersistedQueryHashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            PersistedQueryRequired => "PERSISTED_QUERY_REQUIRED",
            PersistedQueryBadRequest => "PERSISTED_QUERY_BAD_REQUEST",
            GraphqlDisabled => "GRAPHQL_DISABLED",
            Gone => "GONE",
            Internal => "INTERNAL",
            // A service without a backend is, to the client, a backend that is not there.
            NoBackend => "UNAVAILABLE",
            Upstream(code) => code_name(code),
            Unavailable => "UNAVAILABLE",
            DeadlineExceeded => "DEADLINE_EXCEEDED",
            ResponseTooLarge => "RESPONSE_TOO_LARGE",
            CircuitOpen => "CIRCUIT_OPEN",
            Overloaded => "OVERLOADED",
        }
    }

    /// The kind a code names (the inverse of [`ErrorKind::code`]; a gRPC code name gives
    /// `Upstream(code)` unless the gateway has its own kind of that name).
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        NAMED
            .iter()
            .copied()
            .find(|k| k.code() == code)
            .or_else(|| {
                (0..=16)
                    .map(Code::from_i32)
                    .find(|c| code_name(*c) == code)
                    .map(ErrorKind::Upstream)
            })
    }

    /// The gRPC code that classifies it (the `code` of a `google.rpc.Status` body).
    pub fn grpc_code(self) -> Code {
        use ErrorKind::*;
        match self {
            NotFound | PersistedQueryNotFound | PersistedQueryNotRegistered | GraphqlDisabled => {
                Code::NotFound
            }
            // A retired method is, to a gRPC client, a method the server no longer has.
            MethodNotAllowed | Unimplemented | Gone => Code::Unimplemented,
            Unauthenticated => Code::Unauthenticated,
            PermissionDenied => Code::PermissionDenied,
            RateLimited => Code::ResourceExhausted,
            LimiterUnavailable => Code::Unavailable,
            BadRequest
            | UnsupportedMediaType
            | NotAcceptable
            | GraphqlParseFailed
            | GraphqlValidationFailed
            | OperationResolutionFailure
            | BadUserInput
            | PersistedQueryHashMismatch
            | PersistedQueryBadRequest => Code::InvalidArgument,
            PersistedQueryRequired => Code::FailedPrecondition,
            PayloadTooLarge | HeadersTooLarge | TooManyTokens | QueryTooDeep | TooManyAliases
            | TooManyRootFields | QueryTooCostly | FragmentCycle => Code::ResourceExhausted,
            RequestTimeout | DeadlineExceeded => Code::DeadlineExceeded,
            Internal | ResponseTooLarge => Code::Internal,
            NoBackend | Unavailable | CircuitOpen | Overloaded => Code::Unavailable,
            Upstream(code) => code,
        }
    }

    /// The HTTP status of a response that fails with it.
    pub fn http_status(self) -> StatusCode {
        use ErrorKind::*;
        match self {
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GraphqlParseFailed
            | GraphqlValidationFailed
            | OperationResolutionFailure
            | TooManyTokens
            | QueryTooDeep
            | TooManyAliases
            | TooManyRootFields
            | QueryTooCostly
            | FragmentCycle
            | PersistedQueryRequired => StatusCode::BAD_REQUEST,
            PersistedQueryNotRegistered => StatusCode::OK,
            Gone => StatusCode::GONE,
            ResponseTooLarge => StatusCode::BAD_GATEWAY,
            other => http_status_of(other.grpc_code()),
        }
    }
}

/// The standard gRPC code -> HTTP status table (as grpc-gateway and Envoy use it).
pub fn http_status_of(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// The SCREAMING_SNAKE_CASE name of a gRPC code, as error codes are written.
pub const fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_status_table() {
        for (code, http) in [
            (Code::NotFound, 404),
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::AlreadyExists, 409),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Cancelled, 499),
        ] {
            assert_eq!(http_status_of(code).as_u16(), http, "{code:?}");
            assert_eq!(ErrorKind::Upstream(code).http_status().as_u16(), http);
        }
    }

    #[test]
    fn every_code_names_one_kind_and_back() {
        for kind in NAMED {
            let back = ErrorKind::from_code(kind.code());
            // Kinds that share a code with another come back as the first of them.
            let first = NAMED.iter().find(|k| k.code() == kind.code()).copied();
            assert_eq!(back, first, "{kind:?}");
        }
        assert_eq!(
            ErrorKind::from_code("ALREADY_EXISTS"),
            Some(ErrorKind::Upstream(Code::AlreadyExists))
        );
        // A status the gateway decides has the same name and status as a backend's.
        assert_eq!(
            ErrorKind::from_code("PERMISSION_DENIED").map(ErrorKind::http_status),
            Some(ErrorKind::Upstream(Code::PermissionDenied).http_status())
        );
        // The gateway's own DEADLINE_EXCEEDED and UNAVAILABLE win over the gRPC names.
        assert_eq!(
            ErrorKind::from_code("DEADLINE_EXCEEDED"),
            Some(ErrorKind::DeadlineExceeded)
        );
        assert_eq!(ErrorKind::from_code("NO_SUCH_CODE"), None);
    }

    #[test]
    fn statuses_of_the_gateway_kinds() {
        for (kind, http) in [
            (ErrorKind::NotFound, 404),
            (ErrorKind::MethodNotAllowed, 405),
            (ErrorKind::BadRequest, 400),
            (ErrorKind::PayloadTooLarge, 413),
            (ErrorKind::UnsupportedMediaType, 415),
            (ErrorKind::NotAcceptable, 406),
            (ErrorKind::RequestTimeout, 408),
            (ErrorKind::HeadersTooLarge, 431),
            (ErrorKind::Unimplemented, 501),
            (ErrorKind::Gone, 410),
            (ErrorKind::Unauthenticated, 401),
            (ErrorKind::PermissionDenied, 403),
            (ErrorKind::RateLimited, 429),
            (ErrorKind::LimiterUnavailable, 503),
            (ErrorKind::QueryTooDeep, 400),
            (ErrorKind::PersistedQueryNotFound, 404),
            (ErrorKind::PersistedQueryNotRegistered, 200),
            (ErrorKind::Internal, 500),
            (ErrorKind::NoBackend, 503),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::DeadlineExceeded, 504),
            (ErrorKind::ResponseTooLarge, 502),
            (ErrorKind::CircuitOpen, 503),
            (ErrorKind::Overloaded, 503),
            (ErrorKind::BadUserInput, 400),
        ] {
            assert_eq!(kind.http_status().as_u16(), http, "{kind:?}");
        }
    }

    #[test]
    fn origins_and_retryability() {
        assert_eq!(ErrorKind::BadRequest.origin(), Origin::Client);
        assert_eq!(ErrorKind::Internal.origin(), Origin::Gateway);
        assert_eq!(ErrorKind::CircuitOpen.origin(), Origin::Upstream);
        assert_eq!(
            ErrorKind::Upstream(Code::NotFound).origin(),
            Origin::Upstream
        );
        assert!(ErrorKind::Overloaded.retryable());
        assert!(ErrorKind::Upstream(Code::Unavailable).retryable());
        assert!(!ErrorKind::Upstream(Code::NotFound).retryable());
        assert!(!ErrorKind::BadRequest.retryable());
        assert!(!ErrorKind::Internal.retryable());
    }
}
