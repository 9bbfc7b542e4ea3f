//! API keys: presented in a header (or a query parameter), stored as SHA-256 hashes, compared
//! in constant time against every configured key.

use http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ApiKeysConfig;
use crate::request::{Identity, IdentityKind};

/// One configured key.
#[derive(Clone, Debug)]
struct Key {
    id: String,
    sha256: [u8; 32],
    plan: Option<String>,
    scopes: Vec<String>,
}

/// The configured keys and where callers send one.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    header: String,
    query: Option<String>,
    keys: Vec<Key>,
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(s).ok()?;
    bytes.try_into().ok()
}

impl ApiKeys {
    /// The keys of the `auth.api_keys` section (validated: hashes are 64 hex digits).
    pub fn new(cfg: &ApiKeysConfig) -> Self {
        Self {
            header: cfg.header.to_ascii_lowercase(),
            query: cfg.query.clone(),
            keys: cfg
                .keys
                .iter()
                .filter_map(|k| {
                    Some(Key {
                        id: k.id.clone(),
                        sha256: unhex(&k.sha256.to_ascii_lowercase())?,
                        plan: k.plan.clone(),
                        scopes: k.scopes.clone(),
                    })
                })
                .collect(),
        }
    }

    /// The key a request presents, if any (the header first).
    pub fn presented(&self, parts: &Parts) -> Option<String> {
        if let Some(v) = parts.headers.get(self.header.as_str()) {
            return Some(v.to_str().unwrap_or("").trim().to_owned());
        }
        let name = self.query.as_deref()?;
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .ok()?
            .0
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The identity of a presented key, if it is one of the configured keys. Every key is
    /// compared, in constant time, whichever matches.
    pub fn identify(&self, presented: &str) -> Option<Identity> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found: Option<&Key> = None;
        for key in &self.keys {
            if bool::from(key.sha256.ct_eq(&hash)) {
                found = Some(key);
            }
        }
        let key = found?;
        Some(Identity {
            subject: key.id.clone(),
            kind: IdentityKind::ApiKey,
            scopes: key.scopes.clone(),
            claims: serde_json::Map::new(),
            plan: key.plan.clone(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;

    fn keys() -> ApiKeys {
        let sha = |k: &str| hex::encode(Sha256::digest(k.as_bytes()));
        ApiKeys::new(&ApiKeysConfig {
            header: "X-Api-Key".into(),
            query: Some("api_key".into()),
            keys: vec![
                ApiKeyConfig {
                    id: "partner-a".into(),
                    sha256: sha("secret-a"),
                    plan: Some("gold".into()),
                    scopes: vec!["catalog.read".into()],
                },
                ApiKeyConfig {
                    id: "partner-b".into(),
                    sha256: sha("secret-b").to_uppercase(),
                    plan: None,
                    scopes: vec![],
                },
            ],
        })
    }

    #[test]
    fn keys_are_found_by_hash() {
        let k = keys();
        let a = k.identify("secret-a").unwrap();
        assert_eq!(a.subject, "partner-a");
        assert_eq!(a.plan.as_deref(), Some("gold"));
        assert_eq!(a.scopes, ["catalog.read"]);
        assert_eq!(k.identify("secret-b").unwrap().subject, "partner-b");
        assert!(k.identify("secret-c").is_none());
        assert!(k.identify("").is_none());
    }

    #[test]
    fn keys_come_from_the_header_or_the_query() {
        let k = keys();
        let (parts, ()) = http::Request::get("/v1/x?api_key=q%20key&a=1")
            .header("x-api-key", "h-key")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(k.presented(&parts).as_deref(), Some("h-key"));
        let (parts, ()) = http::Request::get("/v1/x?a=1&api_key=q%20key")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(k.presented(&parts).as_deref(), Some("q key"));
        let (parts, ()) = http::Request::get("/v1/x").body(()).unwrap().into_parts();
        assert!(k.presented(&parts).is_none());
    }
}
