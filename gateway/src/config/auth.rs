//! The `auth` and `authorization` sections: how callers are identified (JWT, API keys, client
//! certificates), what of their identity backends receive, and who may call what.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::HumanDuration;

/// How callers are identified. Credentials that do not check out are refused (401), whatever
/// the method; a caller without credentials is anonymous, and `authorization` decides.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// JWT bearer tokens (`Authorization: Bearer ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
    /// API keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<ApiKeysConfig>,
    /// Client certificates verified by the listener (`tls.client_ca`) identify their holder:
    /// the subject's common name (else the first DNS name) is the caller.
    #[serde(default)]
    pub client_certificates: bool,
    /// What of the caller's identity backends receive, as gRPC metadata.
    #[serde(default)]
    pub forward: ForwardConfig,
}

/// JWT bearer tokens.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The audiences accepted: a token's `aud` must name one.
    pub audiences: Vec<String>,
    /// The signature algorithms accepted (an explicit allowlist): RS256, RS384, RS512, PS256,
    /// PS384, PS512, ES256, ES384, EdDSA. Shared-secret (HS*) and `none` are never accepted.
    pub algorithms: Vec<String>,
    /// Where the signing keys are published (a JWKS document), fetched at start, cached, and
    /// fetched again when a token names an unknown key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// A JWKS document on disk, instead of `jwks_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "d_leeway")]
    pub leeway: HumanDuration,
    /// The shortest time between two fetches of `jwks_url` (an attacker sending unknown key
    /// ids cannot make the gateway hammer the identity provider).
    #[serde(default = "d_refresh")]
    pub min_refresh_interval: HumanDuration,
    /// How often the keys are fetched again anyway (rotation without unknown key ids).
    #[serde(default = "d_max_age")]
    pub refresh_interval: HumanDuration,
    /// How long a fetch of `jwks_url` may take.
    #[serde(default = "d_fetch_timeout")]
    pub fetch_timeout: HumanDuration,
    /// Claims whose values are the caller's scopes (a space-separated string or a list):
    /// `scope` then `scp` by default.
    #[serde(default = "d_scope_claims")]
    pub scope_claims: Vec<String>,
    /// How many verified tokens are remembered (a token seen again skips the signature
    /// check; its expiry is checked every time). 0 turns the cache off.
    #[serde(default = "d_cache_size")]
    pub cache_size: u64,
}

fn d_cache_size() -> u64 {
    10_000
}

fn d_leeway() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn d_refresh() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn d_max_age() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}
fn d_fetch_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn d_scope_claims() -> Vec<String> {
    vec!["scope".into(), "scp".into()]
}

/// The algorithms a JWT may be signed with.
pub const JWT_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// API keys: where a caller sends one, and the keys (stored hashed).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysConfig {
    /// The header carrying the key (default `x-api-key`).
    #[serde(default = "d_key_header")]
    pub header: String,
    /// A query parameter carrying the key too (off by default: URLs end up in logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The keys.
    pub keys: Vec<ApiKeyConfig>,
}

fn d_key_header() -> String {
    "x-api-key".into()
}

/// One API key.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Its name: the caller's identity (and what logs and backends see, never the key).
    pub id: String,
    /// The lowercase hex SHA-256 of the key (`printf %s KEY | sha256sum`).
    pub sha256: String,
    /// Its plan (rate limits and quotas by plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Its scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Which parts of the identity go to backends as gRPC metadata (by header name). The same
/// headers sent by a client are removed first, whatever `headers.forward` says, so nobody
/// can pass for someone else.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// The caller (JWT `sub`, API key id, certificate subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The caller's scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
    /// The API key's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The API key's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// JWT claims, by header name: `{ x-user-email: email }`.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// Forward the client's `Authorization` header as well (off: backends get the identity,
    /// not the credentials).
    #[serde(default)]
    pub authorization: bool,
}

/// Who may call what. Rules attach to gRPC methods (every door that reaches a method inherits
/// them: REST routes, GraphQL root and link fields, operation endpoints) and to named
/// operations.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationConfig {
    /// The rule of every method no entry names: `authenticated` (default once `auth` is
    /// configured) or `anonymous`.
    #[serde(default)]
    pub default: Option<DefaultRule>,
    /// Rules by method (`package.Service.Method`).
    #[serde(default)]
    pub methods: BTreeMap<String, Rule>,
    /// Rules by operation name (the BFF's operations, and any operation of that name).
    #[serde(default)]
    pub operations: BTreeMap<String, Rule>,
    /// Who may read the schema by introspection (`__schema`, `__type`); default: as
    /// `default`. (`graphql.introspection: false` turns it off for everyone.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection: Option<Rule>,
    /// Who may load the GraphiQL page; default: anyone (the page holds no data; the queries
    /// it sends are authorized as any other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphiql: Option<Rule>,
}

/// The rule of everything not listed.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DefaultRule {
    /// Any identified caller.
    Authenticated,
    /// Anyone, identified or not.
    Anonymous,
}

/// One rule: anyone, or an identified caller with every scope listed and a value listed for
/// every claim named.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Anyone may call, identified or not.
    #[serde(default)]
    pub anonymous: bool,
    /// Scopes the caller must all have.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claims the caller's token must carry, each with one of these values
    /// (`{ role: [admin, support] }`).
    #[serde(default)]
    pub claims: BTreeMap<String, Vec<String>>,
}

impl AuthConfig {
    /// Checks the section; the error is (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        if let Some(jwt) = &self.jwt {
            if jwt.jwks_url.is_some() == jwt.jwks_file.is_some() {
                return Err((
                    "jwt".into(),
                    "give the signing keys as exactly one of jwks_url or jwks_file".into(),
                ));
            }
            if jwt.algorithms.is_empty() {
                return Err((
                    "jwt.algorithms".into(),
                    "list at least one algorithm".into(),
                ));
            }
            for (i, a) in jwt.algorithms.iter().enumerate() {
                if !JWT_ALGORITHMS.contains(&a.as_str()) {
                    return Err((
                        format!("jwt.algorithms[{i}]"),
                        format!(
                            "{a:?} is not accepted: use {} (shared secrets and `none` never are)",
                            JWT_ALGORITHMS.join(", ")
                        ),
                    ));
                }
            }
            if jwt.audiences.is_empty() {
                return Err((
                    "jwt.audiences".into(),
                    "list the audiences accepted (a token's `aud` must name one)".into(),
                ));
            }
        }
        if self.jwt.is_none() && self.api_keys.is_none() && !self.client_certificates {
            return Err((
                "auth".into(),
                "say how callers are identified: jwt, api_keys or client_certificates".into(),
            ));
        }
        let f = &self.forward;
        let names = [
            ("subject", f.subject.as_ref()),
            ("scopes", f.scopes.as_ref()),
            ("key_id", f.key_id.as_ref()),
            ("plan", f.plan.as_ref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((format!("forward.{k}"), v?)))
        .chain(f.claims.keys().map(|h| (format!("forward.claims.{h}"), h)));
        for (key, name) in names {
            let n = name.to_ascii_lowercase();
            let valid = !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if !valid || n.starts_with("grpc-") || n.ends_with("-bin") {
                return Err((
                    key,
                    format!(
                        "{name:?} is not a metadata name the gateway can set: use letters, digits, '-', '_' or '.', not grpc-* or *-bin"
                    ),
                ));
            }
        }
        if let Some(keys) = &self.api_keys {
            for (i, k) in keys.keys.iter().enumerate() {
                if k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err((
                        format!("api_keys.keys[{i}].sha256"),
                        "the 64 hex digits of the key's SHA-256 (printf %s KEY | sha256sum)".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}
