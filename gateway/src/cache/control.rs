//! What a backend says about caching its reply: the `cache-control` response metadata
//! (`max-age=N`, `s-maxage=N`, `no-store`, `no-cache`, `private`), read as a shared cache
//! reads an HTTP response's header.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// The backend's caching directives for one reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// `no-store` or `no-cache`: the reply must not be stored (a shared cache that cannot
    /// revalidate treats `no-cache` as `no-store`).
    pub no_store: bool,
    /// `private`: the reply is the caller's own; a cache shared by callers must not keep it.
    pub private: bool,
    /// `s-maxage`, else `max-age`: how long the reply is fresh.
    pub max_age: Option<Duration>,
}

impl Directives {
    /// Reads every `cache-control` value of `metadata` (directives are case-insensitive,
    /// comma-separated; unknown ones are ignored; a malformed age counts as `no-store`, the
    /// safe reading).
    pub fn of(metadata: &MetadataMap) -> Self {
        let mut d = Directives::default();
        let mut s_maxage = None;
        for value in metadata.get_all("cache-control") {
            let Ok(text) = value.to_str() else {
                d.no_store = true;
                continue;
            };
            for part in text.split(',') {
                let (name, arg) = match part.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                    None => (part.trim(), None),
                };
                let age = || {
                    arg.and_then(|a| a.parse::<u64>().ok())
                        .map(Duration::from_secs)
                };
                if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                    d.no_store = true;
                } else if name.eq_ignore_ascii_case("private") {
                    d.private = true;
                } else if name.eq_ignore_ascii_case("max-age") {
                    match age() {
                        Some(a) => d.max_age = Some(a),
                        None => d.no_store = true,
                    }
                } else if name.eq_ignore_ascii_case("s-maxage") {
                    match age() {
                        Some(a) => s_maxage = Some(a),
                        None => d.no_store = true,
                    }
                }
            }
        }
        if s_maxage.is_some() {
            d.max_age = s_maxage;
        }
        d
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn of(values: &[&str]) -> Directives {
        let mut md = MetadataMap::new();
        for v in values {
            md.append("cache-control", v.parse().unwrap());
        }
        Directives::of(&md)
    }

    #[test]
    fn reads_the_directives_a_backend_sends() {
        assert_eq!(of(&[]), Directives::default());
        assert_eq!(of(&["max-age=30"]).max_age, Some(Duration::from_secs(30)));
        assert_eq!(
            of(&["Max-Age=30, S-MAXAGE=5"]).max_age,
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            of(&["public", "max-age=\"7\""]).max_age,
            Some(Duration::from_secs(7))
        );
        assert!(of(&["no-store"]).no_store);
        assert!(of(&["max-age=10, no-cache"]).no_store);
        assert!(of(&["private, max-age=10"]).private);
        assert!(!of(&["max-age=10"]).private);
    }

    #[test]
    fn a_malformed_age_is_read_as_no_store() {
        assert!(of(&["max-age=soon"]).no_store);
        assert!(of(&["max-age=-1"]).no_store);
        assert!(of(&["s-maxage"]).no_store);
    }
}
