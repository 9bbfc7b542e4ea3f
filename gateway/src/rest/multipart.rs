//! Reading a `multipart/form-data` request body into its parts (multer), under
//! `rest.multipart`: at most `max_parts` parts, each at most `max_part_bytes`. The body itself
//! was already read under `limits.max_body_bytes` by the ingress; [`crate::transcode`] maps
//! the parts onto the request message.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, header};

use crate::config::MultipartConfig;
use crate::error::{ErrorKind, GatewayError};
use crate::transcode::FormPart;

/// Whether the request declares a `multipart/form-data` body.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Splits a `multipart/form-data` body into its parts, in order. A missing boundary, a
/// malformed body or a part without a name is a 400 saying which; too many parts or a part
/// too large a 413 naming the limit (and the part).
pub(crate) async fn read_form(
    headers: &HeaderMap,
    body: Bytes,
    cfg: &MultipartConfig,
    body_limit: u64,
) -> Result<Vec<FormPart>, GatewayError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        GatewayError::bad_request(
            None,
            "a multipart/form-data body needs a boundary: Content-Type: multipart/form-data; boundary=...",
        )
    })?;
    let max_part = cfg
        .max_part_bytes
        .map_or(body_limit, |b| b.bytes())
        .min(body_limit);
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().per_field(max_part));
    let stream = futures::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut parts = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(form_error(e, max_part)),
        };
        if parts.len() >= cfg.max_parts {
            return Err(GatewayError::rejected(
                ErrorKind::PayloadTooLarge,
                format!(
                    "the multipart body has more than {} parts (rest.multipart.max_parts)",
                    cfg.max_parts
                ),
            ));
        }
        let Some(name) = field.name().map(str::to_owned) else {
            return Err(GatewayError::bad_request(
                None,
                format!(
                    "multipart part {} has no name (Content-Disposition: form-data; name=\"...\")",
                    parts.len() + 1
                ),
            ));
        };
        let filename = field.file_name().map(str::to_owned);
        let content_type = field
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let data = field.bytes().await.map_err(|e| form_error(e, max_part))?;
        parts.push(FormPart {
            name,
            filename,
            content_type,
            data,
        });
    }
    Ok(parts)
}

/// The client's error for what multer found.
fn form_error(e: multer::Error, max_part: u64) -> GatewayError {
    match e {
        multer::Error::FieldSizeExceeded { field_name, .. } => GatewayError::rejected(
            ErrorKind::PayloadTooLarge,
            format!(
                "multipart part {} is larger than {max_part} bytes (rest.multipart.max_part_bytes)",
                field_name.map_or_else(|| "(unnamed)".to_owned(), |n| format!("\"{n}\""))
            ),
        ),
        other => GatewayError::bad_request(None, format!("malformed multipart body: {other}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::config::ByteSize;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn body(parts: &[(&str, Option<&str>, &[u8])]) -> Bytes {
        let mut out = Vec::new();
        for (name, filename, data) in parts {
            out.extend_from_slice(b"--XyZ\r\n");
            let disposition = match filename {
                Some(f) => format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: image/png\r\n"
                ),
                None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n"),
            };
            out.extend_from_slice(disposition.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        out.into()
    }

    fn cfg(max_parts: usize, max_part: Option<u64>) -> MultipartConfig {
        MultipartConfig {
            enabled: true,
            max_parts,
            max_part_bytes: max_part.map(|b| ByteSize::parse(&b.to_string()).unwrap()),
        }
    }

    #[test]
    fn form_content_types() {
        assert!(is_form(&headers(CT)));
        assert!(is_form(&headers("Multipart/Form-Data")));
        assert!(!is_form(&headers("application/json")));
        assert!(!is_form(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn parts_come_out_in_order_with_names_and_files() {
        let png: &[u8] = &[0x89, 0, 0xFF, b'\r', b'\n', 1];
        let parts = read_form(
            &headers(CT),
            body(&[("photo", Some("a.png"), png), ("note", None, b"hi")]),
            &cfg(4, None),
            1 << 20,
        )
        .await
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "photo");
        assert_eq!(parts[0].filename.as_deref(), Some("a.png"));
        assert_eq!(parts[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[0].data.as_ref(), png);
        assert_eq!(
            (parts[1].name.as_str(), parts[1].data.as_ref()),
            ("note", &b"hi"[..])
        );
    }

    #[tokio::test]
    async fn limits_and_malformed_bodies() {
        let status = |e: GatewayError| e.kind().http_status().as_u16();
        let many = body(&[("a", None, b"1"), ("b", None, b"2"), ("c", None, b"3")]);
        let e = read_form(&headers(CT), many, &cfg(2, None), 1 << 20)
            .await
            .unwrap_err();
        assert_eq!(status(e.clone()), 413);
        assert!(e.to_string().contains("more than 2 parts"), "{e}");
        let big = body(&[("photo", Some("a.png"), &[7u8; 64])]);
        let e = read_form(&headers(CT), big, &cfg(2, Some(10)), 1 << 20)
            .await
            .unwrap_err();
        assert_eq!(status(e.clone()), 413);
        assert!(e.to_string().contains("\"photo\""), "{e}");
        let e = read_form(
            &headers("multipart/form-data"),
            body(&[]),
            &cfg(2, None),
            1 << 20,
        )
        .await
        .unwrap_err();
        assert_eq!(status(e.clone()), 400);
        assert!(e.to_string().contains("boundary"), "{e}");
        let cut =
            Bytes::from_static(b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabc");
        let e = read_form(&headers(CT), cut, &cfg(2, None), 1 << 20)
            .await
            .unwrap_err();
        assert_eq!(status(e.clone()), 400);
        assert!(e.to_string().starts_with("malformed multipart body"), "{e}");
    }
}
