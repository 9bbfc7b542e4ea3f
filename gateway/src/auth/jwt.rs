//! JWT bearer tokens, verified with jsonwebtoken (aws-lc-rs) against keys from a JWKS.
//!
//! - The token's `alg` must be in the configured allowlist (RS*, PS*, ES*, EdDSA; never a
//!   shared secret, never `none`), and fit the key's type: an HS256 token "signed" with an RSA
//!   public key is refused.
//! - `iss` must be the configured issuer, `aud` one of the audiences, `exp` and `sub` present,
//!   `exp` and `nbf` within the leeway.
//! - Keys come from `jwks_url` (fetched at start, cached; fetched again when a token names an
//!   unknown key id, at most once per `min_refresh_interval`, and every `refresh_interval`) or
//!   from `jwks_file`. A failing JWKS endpoint never blocks tokens signed with keys already
//!   known: the cached keys stay until a fetch succeeds.
//!
//! - A token verified once is remembered (by its SHA-256, up to `cache_size` tokens, for at
//!   most five minutes, forgotten whenever the keys are fetched again): a client sending the
//!   same token again costs a hash and a lookup, not a signature check. Its `exp` and `nbf`
//!   are checked again on every use.
//!
//! Why a token failed goes to the log, never to the client.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::JwtConfig;
use crate::request::{Identity, IdentityKind};

/// Where the keys come from.
#[derive(Clone, Debug)]
enum KeySource {
    Url(String),
    File(PathBuf),
}

/// The keys known now, by key id (`""` for a key without one).
#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, Vec<DecodingKey>>,
}

/// Verifies tokens of one issuer.
pub struct JwtVerifier {
    config: JwtConfig,
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    scope_claims: Vec<String>,
    source: KeySource,
    min_refresh: Duration,
    max_age: Duration,
    fetch_timeout: Duration,
    keys: RwLock<Arc<Keys>>,
    /// When keys were last fetched (or tried); held while fetching, so fetches never overlap.
    last_fetch: Mutex<Option<Instant>>,
    http: reqwest::Client,
    /// Tokens verified recently, by their SHA-256.
    verified: moka::future::Cache<[u8; 32], Arc<Verified>>,
}

/// A token that checked out: who it names, and when it stops (or starts) being valid.
struct Verified {
    identity: Arc<Identity>,
    exp: u64,
    nbf: Option<u64>,
}

/// How long a verified token is remembered at most (its `exp` may end that sooner).
const VERIFIED_TTL: Duration = Duration::from_secs(300);

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused (for the log; the client only learns that it was).
#[derive(Debug, thiserror::Error)]
pub enum JwtFailure {
    /// Not a JWT, or its header does not decode.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The algorithm is not in the allowlist.
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    /// No known key has the token's key id (even after fetching the keys again).
    #[error("no key {0:?} among the issuer's keys")]
    UnknownKey(String),
    /// The signature or a claim did not check out.
    #[error("{0}")]
    Invalid(String),
}

fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

impl JwtVerifier {
    /// A verifier for the `auth.jwt` section (`jwks_file` relative to `base`). A `jwks_file`
    /// must load; a `jwks_url` is fetched now, and a failure is logged (tokens are refused
    /// until a fetch succeeds).
    pub async fn new(cfg: &JwtConfig, base: &std::path::Path) -> Result<Arc<Self>, String> {
        let source = match (&cfg.jwks_url, &cfg.jwks_file) {
            (Some(url), _) => KeySource::Url(url.clone()),
            (None, Some(file)) => KeySource::File(base.join(file)),
            (None, None) => return Err("no jwks_url or jwks_file".into()),
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.fetch_timeout.get())
            .build()
            .map_err(|e| format!("cannot build the JWKS client: {e}"))?;
        let this = Arc::new(Self {
            config: cfg.clone(),
            issuer: cfg.issuer.clone(),
            audiences: cfg.audiences.clone(),
            algorithms: cfg.algorithms.iter().filter_map(|a| algorithm(a)).collect(),
            leeway: cfg.leeway.get(),
            scope_claims: cfg.scope_claims.clone(),
            source: source.clone(),
            min_refresh: cfg.min_refresh_interval.get(),
            max_age: cfg.refresh_interval.get(),
            fetch_timeout: cfg.fetch_timeout.get(),
            keys: RwLock::new(Arc::new(Keys::default())),
            last_fetch: Mutex::new(None),
            http,
            verified: moka::future::Cache::builder()
                .max_capacity(cfg.cache_size)
                .time_to_live(VERIFIED_TTL)
                .build(),
        });
        match (&source, this.fetch().await) {
            (_, Ok(())) => {}
            (KeySource::File(p), Err(e)) => {
                return Err(format!("{}: {e}", p.display()));
            }
            (KeySource::Url(url), Err(e)) => {
                tracing::error!(jwks_url = %url, error = %e, "cannot fetch the JWT signing keys; tokens are refused until a fetch succeeds");
            }
        }
        Ok(this)
    }

    /// The section it was built from.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// How many signing keys are known now.
    pub fn key_count(&self) -> usize {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        keys.by_kid.values().map(Vec::len).sum()
    }

    /// Fetches the keys every `refresh_interval` (for `jwks_url`) while the verifier lives.
    pub fn refresh_periodically(self: &Arc<Self>) {
        if matches!(self.source, KeySource::File(_)) || self.max_age.is_zero() {
            return;
        }
        let this = Arc::downgrade(self);
        let every = self.max_age;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(v) = this.upgrade() else { return };
                if let Err(e) = v.fetch().await {
                    tracing::warn!(error = %e, "JWKS refresh failed; the cached keys stay");
                }
            }
        });
    }

    /// Fetches (or reads) the key set now and replaces the cached keys; on failure the cache
    /// is untouched.
    async fn fetch(&self) -> Result<(), String> {
        let mut last = self.last_fetch.lock().await;
        *last = Some(Instant::now());
        let text = match &self.source {
            KeySource::File(p) => std::fs::read(p).map_err(|e| e.to_string())?,
            KeySource::Url(url) => {
                let resp = tokio::time::timeout(self.fetch_timeout, self.http.get(url).send())
                    .await
                    .map_err(|_| "timed out".to_string())?
                    .map_err(|e| e.to_string())?;
                if !resp.status().is_success() {
                    return Err(format!("HTTP {}", resp.status()));
                }
                resp.bytes().await.map_err(|e| e.to_string())?.to_vec()
            }
        };
        let set: JwkSet =
            serde_json::from_slice(&text).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Keys::default();
        for jwk in &set.keys {
            if let Some(key) = self.usable(jwk) {
                let kid = jwk.common.key_id.clone().unwrap_or_default();
                keys.by_kid.entry(kid).or_default().push(key);
            }
        }
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        // A key may have been withdrawn: tokens are verified afresh.
        self.verified.invalidate_all();
        Ok(())
    }

    /// A JWK usable for signatures with an accepted algorithm.
    fn usable(&self, jwk: &Jwk) -> Option<DecodingKey> {
        if matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            return None;
        }
        if let Some(alg) = jwk.common.key_algorithm
            && !self
                .algorithms
                .iter()
                .any(|a| format!("{a:?}") == format!("{alg:?}"))
        {
            return None;
        }
        DecodingKey::from_jwk(jwk).ok()
    }

    /// Fetches the keys again for a token naming an unknown key id, unless that was done less
    /// than `min_refresh_interval` ago (for `jwks_url` only).
    async fn refresh_for_unknown_key(&self) {
        if matches!(self.source, KeySource::File(_)) {
            return;
        }
        {
            let last = self.last_fetch.lock().await;
            if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
                return;
            }
        }
        if let Err(e) = self.fetch().await {
            tracing::warn!(error = %e, "JWKS fetch for an unknown key id failed; the cached keys stay");
        }
    }

    /// The keys that may have signed a token naming `kid` (every key, for a token naming
    /// none).
    fn candidates(&self, kid: &str) -> Vec<DecodingKey> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if kid.is_empty() {
            return keys.by_kid.values().flatten().cloned().collect();
        }
        keys.by_kid.get(kid).cloned().unwrap_or_default()
    }

    /// Verifies `token`; on success, the caller it identifies.
    pub async fn verify(&self, token: &str) -> Result<Arc<Identity>, JwtFailure> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(v) = self.verified.get(&digest).await {
            let now = jsonwebtoken::get_current_timestamp();
            let leeway = self.leeway.as_secs();
            if v.exp.saturating_add(leeway) >= now
                && v.nbf.is_none_or(|nbf| nbf <= now.saturating_add(leeway))
            {
                return Ok(v.identity.clone());
            }
        }
        let (identity, exp, nbf) = self.verify_signed(token).await?;
        let identity = Arc::new(identity);
        if self.verified.policy().max_capacity() != Some(0) {
            let v = Verified {
                identity: identity.clone(),
                exp,
                nbf,
            };
            self.verified.insert(digest, Arc::new(v)).await;
        }
        Ok(identity)
    }

    /// The full check: header, key, signature, claims. Returns the identity, `exp`, `nbf`.
    async fn verify_signed(&self, token: &str) -> Result<(Identity, u64, Option<u64>), JwtFailure> {
        let header = decode_header(token).map_err(|e| JwtFailure::Malformed(e.to_string()))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(JwtFailure::Algorithm(header.alg));
        }
        let kid = header.kid.clone().unwrap_or_default();
        let mut keys = self.candidates(&kid);
        if keys.is_empty() {
            self.refresh_for_unknown_key().await;
            keys = self.candidates(&kid);
        }
        if keys.is_empty() {
            return Err(JwtFailure::UnknownKey(kid));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let mut last = String::new();
        for key in &keys {
            match decode::<Map<String, Value>>(token, key, &validation) {
                Ok(data) => {
                    let time = |name: &str| data.claims.get(name).and_then(Value::as_u64);
                    let (exp, nbf) = (time("exp").unwrap_or(0), time("nbf"));
                    return Ok((self.identity(data.claims), exp, nbf));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(JwtFailure::Invalid(last))
    }

    fn identity(&self, claims: Map<String, Value>) -> Identity {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut scopes = Vec::new();
        for name in &self.scope_claims {
            match claims.get(name) {
                Some(Value::String(s)) => {
                    scopes.extend(s.split_whitespace().map(str::to_owned));
                }
                Some(Value::Array(items)) => {
                    scopes.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                _ => {}
            }
        }
        Identity {
            subject,
            kind: IdentityKind::Jwt,
            scopes,
            claims,
            plan: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    /// A verifier over a one-key JWKS file, and a function signing claims with that key.
    async fn verifier(dir: &std::path::Path) -> (Arc<JwtVerifier>, impl Fn(Value) -> String) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = EncodingKey::from_ec_der(&pair.serialize_der());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some("k".into());
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("jwks.json"),
            serde_json::to_vec(&JwkSet { keys: vec![jwk] }).unwrap(),
        )
        .unwrap();
        let cfg: JwtConfig = yaml_serde::from_str(
            "{ issuer: i, audiences: [a], algorithms: [ES256], jwks_file: jwks.json, leeway: 0s }",
        )
        .unwrap();
        let v = JwtVerifier::new(&cfg, dir).await.unwrap();
        let sign = move |claims: Value| {
            let mut h = Header::new(Algorithm::ES256);
            h.kid = Some("k".into());
            jsonwebtoken::encode(&h, &claims, &key).unwrap()
        };
        (v, sign)
    }

    #[tokio::test]
    async fn a_remembered_token_is_still_refused_once_expired() {
        let dir = std::env::temp_dir().join(format!("portico-jwt-{}", std::process::id()));
        let (v, sign) = verifier(&dir).await;
        let now = jsonwebtoken::get_current_timestamp();
        let token =
            sign(json!({"iss": "i", "aud": "a", "sub": "s", "exp": now + 600, "scope": "x y"}));
        let id = v.verify(&token).await.unwrap();
        assert_eq!(id.subject, "s");
        assert_eq!(id.scopes, ["x", "y"]);
        // Remembered: the same identity comes back.
        assert!(Arc::ptr_eq(&id, &v.verify(&token).await.unwrap()));
        // The entry says it expired: the token is checked in full again, and refused.
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let stale = Verified {
            identity: id.clone(),
            exp: now - 10,
            nbf: None,
        };
        v.verified.insert(digest, Arc::new(stale)).await;
        let again = v.verify(&token).await.unwrap();
        assert!(
            !Arc::ptr_eq(&id, &again),
            "verified afresh, not taken from the cache"
        );
        let expired = sign(json!({"iss": "i", "aud": "a", "sub": "s", "exp": now - 10}));
        let stale = Verified {
            identity: id,
            exp: now + 600,
            nbf: Some(now + 600),
        };
        let digest: [u8; 32] = Sha256::digest(expired.as_bytes()).into();
        v.verified.insert(digest, Arc::new(stale)).await;
        assert!(matches!(
            v.verify(&expired).await,
            Err(JwtFailure::Invalid(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
