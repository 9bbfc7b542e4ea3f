//! The headers of a deprecated version's answers: `Deprecation` (RFC 9745, a structured-field
//! date `@<unix seconds>`), `Sunset` (RFC 8594, an HTTP-date) and
//! `Link: <url>; rel="deprecation"`.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue};

use crate::calendar::civil_from_days;
use crate::config::DeprecatedConfig;

/// The headers every answer of a deprecated version carries, in this order: `Deprecation`,
/// then `Sunset` and `Link` when configured.
pub fn deprecation_headers(d: &DeprecatedConfig) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    let mut push = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.push((HeaderName::from_static(name), v));
        }
    };
    push("deprecation", structured_date(d.since.0));
    if let Some(s) = &d.sunset {
        push("sunset", http_date(s.0));
    }
    if let Some(l) = &d.link {
        push("link", format!("<{l}>; rel=\"deprecation\""));
    }
    out
}

/// The note OpenAPI and the SDL give a deprecated version's operations and fields.
pub fn deprecation_note(version: &str, d: &DeprecatedConfig) -> String {
    let mut note = format!(
        "API version {version} is deprecated since {}",
        humantime::format_rfc3339_seconds(d.since.0)
    );
    if let Some(s) = &d.sunset {
        note.push_str(&format!(
            " and will be retired on {}",
            humantime::format_rfc3339_seconds(s.0)
        ));
    }
    note.push('.');
    if let Some(l) = &d.link {
        note.push_str(&format!(" See {l}"));
    }
    note
}

/// An RFC 9651 structured-field date, as RFC 9745's `Deprecation` takes it: `@1790812800`.
pub fn structured_date(t: SystemTime) -> String {
    format!("@{}", unix_seconds(t))
}

/// An HTTP-date (RFC 9110 IMF-fixdate), as RFC 8594's `Sunset` takes it:
/// `Wed, 31 Mar 2027 00:00:00 GMT`.
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = unix_seconds(t);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    format!(
        "{weekday}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(m - 1) as usize],
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Rfc3339;

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn deprecation_is_a_structured_date_in_unix_seconds() {
        assert_eq!(structured_date(at("2026-10-01T00:00:00Z")), "@1790812800");
        assert_eq!(structured_date(UNIX_EPOCH), "@0");
        // RFC 9745's own example.
        assert_eq!(structured_date(at("2022-09-25T00:00:00Z")), "@1664064000");
    }

    #[test]
    fn sunset_is_an_imf_fixdate() {
        assert_eq!(
            http_date(at("2027-03-31T00:00:00Z")),
            "Wed, 31 Mar 2027 00:00:00 GMT"
        );
        // RFC 9110's example date.
        assert_eq!(
            http_date(at("1994-11-06T08:49:37Z")),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(at("2024-02-29T23:59:59Z")),
            "Thu, 29 Feb 2024 23:59:59 GMT"
        );
        assert_eq!(
            http_date(at("2000-03-01T12:00:00Z") + Duration::from_millis(900)),
            "Wed, 01 Mar 2000 12:00:00 GMT"
        );
    }

    #[test]
    fn headers_in_order_with_the_link() {
        let d = DeprecatedConfig {
            since: Rfc3339(at("2026-10-01T00:00:00Z")),
            sunset: Some(Rfc3339(at("2027-03-31T00:00:00Z"))),
            link: Some("https://example.com/migrate".into()),
        };
        let h: Vec<(String, String)> = deprecation_headers(&d)
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            h,
            [
                ("deprecation".to_string(), "@1790812800".to_string()),
                (
                    "sunset".to_string(),
                    "Wed, 31 Mar 2027 00:00:00 GMT".to_string()
                ),
                (
                    "link".to_string(),
                    "<https://example.com/migrate>; rel=\"deprecation\"".to_string()
                ),
            ]
        );
        assert_eq!(
            deprecation_note("v1", &d),
            "API version v1 is deprecated since 2026-10-01T00:00:00Z and will be retired on 2027-03-31T00:00:00Z. See https://example.com/migrate"
        );
        let bare = DeprecatedConfig {
            sunset: None,
            link: None,
            ..d
        };
        assert_eq!(deprecation_headers(&bare).len(), 1);
    }
}
