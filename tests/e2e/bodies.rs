//! Binary bodies over REST: `multipart/form-data` uploads mapped onto fields,
//! `google.api.HttpBody` replies (raw bytes, their content type) and server-streamed
//! downloads, HttpBody requests (a raw text/csv body), and the errors of each.

use portico_demo::DemoService;
use portico_e2e::{Reply, TestEnv, assert_error};

const BOUNDARY: &str = "portico-e2e-Xy9";

/// A part of a hand-built multipart body: name, optional (filename, content type), bytes.
type Part<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, file, data) in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file {
            Some((filename, ct)) => out.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ct}\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

async fn upload(env: &TestEnv, path: &str, parts: &[Part<'_>]) -> Reply {
    env.raw(
        "POST",
        path,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        multipart(parts),
    )
    .await
}

/// Bytes that are not UTF-8 and hold what a multipart parser could trip on: CR LF, dashes, a
/// boundary-like line, NUL.
fn photo_bytes() -> Vec<u8> {
    let mut data = vec![
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0xFF, 0xFE,
    ];
    data.extend_from_slice(b"\r\n--portico-e2e-Xy\r\n--\r\n");
    data.extend((0..=255u8).rev());
    data
}

#[tokio::test]
async fn an_uploaded_photo_comes_back_byte_for_byte_with_its_content_type() {
    let env = TestEnv::start().await;
    let photo = photo_bytes();
    let r = upload(
        &env,
        "/v1/products/p-3/photo",
        &[("photo", Some(("cup.webp", "image/webp")), &photo)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let info = r.json();
    assert_eq!(info["productId"], "p-3");
    assert_eq!(info["contentType"], "image/webp", "captured from the part");
    assert_eq!(info["filename"], "cup.webp", "captured from the part");
    assert_eq!(info["size"], photo.len().to_string());

    let resp = env
        .client
        .get(env.url("/v1/products/p-3/photo"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "image/webp");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.as_ref(), photo.as_slice());

    let other = env.get("/v1/products/p-4/photo").await;
    assert_eq!(other.header("content-type"), "image/png", "a generated one");
    let missing = env.get("/v1/products/p-99/photo").await;
    assert_error(&missing, 404, 5, "p-99");
}

#[tokio::test]
async fn text_parts_fill_scalar_fields_and_beat_captured_values() {
    let env = TestEnv::start().await;
    let r = upload(
        &env,
        "/v1/products/p-1/photo",
        &[
            (
                "photo",
                Some(("a.bin", "application/octet-stream")),
                b"\x00\x01",
            ),
            ("content_type", None, b"image/avif"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["contentType"], "image/avif");
    assert_eq!(r.json()["filename"], "a.bin");
    // Any route with a message body takes a form: text parts parse like query values.
    let r = upload(
        &env,
        "/v1/products:search",
        &[("query", None, b"cup"), ("pageSize", None, b"1")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let found = r.json();
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
}

#[tokio::test]
async fn the_catalog_downloads_as_chunked_csv() {
    let env = TestEnv::start().await;
    let resp = env
        .client
        .get(env.url("/v1/catalog:export?chunkSize=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        resp.headers().get("content-length").is_none(),
        "a stream, not a buffered body"
    );
    let text = String::from_utf8(resp.bytes().await.unwrap().to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 21, "{text}");
    assert_eq!(lines[0], "id,title,price_units,stock");
    assert!(lines[1].starts_with("p-1,"), "{text}");
    assert!(lines[20].starts_with("p-20,"), "{text}");
    // One call, however many chunks.
    assert_eq!(env.knobs(DemoService::Catalog).calls("ExportCatalog"), 1);
}

#[tokio::test]
async fn a_download_failing_midway_is_cut_short_and_before_it_is_a_json_error() {
    let env = TestEnv::start().await;
    env.knobs(DemoService::Catalog).fail_stream_after(Some(2));
    // Whether the status line reached the client before the cut depends on when the server
    // flushed; either way the client must never read a complete-looking answer.
    let whole = async {
        let resp = env.client.get(env.url("/v1/catalog:export")).send().await?;
        resp.bytes().await
    };
    let cut = whole.await;
    assert!(
        cut.is_err(),
        "the download must end abruptly, not look complete: {cut:?}"
    );

    env.knobs(DemoService::Catalog).fail_stream_after(Some(0));
    let r = env.get("/v1/catalog:export").await;
    assert_eq!(r.header("content-type"), "application/json");
    assert_error(&r, 503, 14, "injected failure");
}

#[tokio::test]
async fn a_raw_csv_body_becomes_the_http_body_field() {
    let env = TestEnv::start().await;
    let csv = "id,price_units\np-2,41\np-5,99\n";
    let r = env
        .raw("POST", "/v1/catalog:import?dryRun=true", "text/csv", csv)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(
        (v["rows"].as_i64(), v.get("updated")),
        (Some(2), None),
        "{v}"
    );
    assert_eq!(v["contentType"], "text/csv");

    let r = env
        .raw("POST", "/v1/catalog:import", "text/csv; charset=utf-8", csv)
        .await;
    assert_eq!(r.json()["updated"], 2, "{}", r.text);
    let export = env.get("/v1/catalog:export").await;
    assert!(
        export
            .text
            .lines()
            .any(|l| l.starts_with("p-2,") && l.contains(",41,"))
    );

    // The backend's own errors come back as usual; not UTF-8 is its call to refuse.
    let r = env
        .raw("POST", "/v1/catalog:import", "text/csv", vec![0xFFu8, 0xFE])
        .await;
    assert_error(&r, 400, 3, "UTF-8");
    // Query parameters still name real fields.
    let r = env
        .raw("POST", "/v1/catalog:import?nope=1", "text/csv", csv)
        .await;
    assert_error(&r, 400, 3, "nope");
}

#[tokio::test]
async fn the_body_limit_applies_to_raw_and_multipart_bodies() {
    let env = TestEnv::start_with("limits:\n  max_body_bytes: 1KiB\n").await;
    let big = vec![b'x'; 2048];
    let r = env
        .raw("POST", "/v1/catalog:import", "text/csv", big.clone())
        .await;
    assert_error(&r, 413, 8, "limit");
    let r = upload(
        &env,
        "/v1/products/p-1/photo",
        &[("photo", Some(("a.png", "image/png")), &big)],
    )
    .await;
    assert_error(&r, 413, 8, "limit");
}

#[tokio::test]
async fn bad_uploads_are_refused_with_the_problem_named() {
    let env =
        TestEnv::start_with("rest:\n  multipart: { max_parts: 3, max_part_bytes: 64 }\n").await;
    let path = "/v1/products/p-1/photo";

    let r = upload(
        &env,
        path,
        &[("picture", Some(("a.png", "image/png")), b"x")],
    )
    .await;
    assert_error(&r, 400, 3, "unknown multipart part \"picture\"");
    assert_eq!(
        r.json()["details"][0]["fieldViolations"][0]["field"],
        "picture"
    );

    let big = [7u8; 65];
    let r = upload(&env, path, &[("photo", Some(("a.png", "image/png")), &big)]).await;
    assert_error(
        &r,
        413,
        8,
        "multipart part \"photo\" is larger than 64 bytes",
    );

    let r = upload(
        &env,
        path,
        &[
            ("photo", None, b"1"),
            ("filename", None, b"2"),
            ("content_type", None, b"3"),
            ("product_id", None, b"p-1"),
        ],
    )
    .await;
    assert_error(&r, 413, 8, "more than 3 parts");

    let cut = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"\r\n\r\nabc");
    let r = env
        .raw(
            "POST",
            path,
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            cut,
        )
        .await;
    assert_error(&r, 400, 3, "malformed multipart body");

    let r = env
        .raw(
            "POST",
            path,
            "multipart/form-data",
            multipart(&[("photo", None, b"1")]),
        )
        .await;
    assert_error(&r, 400, 3, "boundary");

    let r = env
        .raw("POST", "/v1/products:search", "text/plain", "cup")
        .await;
    assert_error(&r, 415, 3, "application/json or multipart/form-data");

    // A part that disagrees with the path.
    let r = upload(&env, path, &[("product_id", None, b"p-2")]).await;
    assert_error(&r, 400, 3, "URL path");
}

#[tokio::test]
async fn openapi_describes_binary_bodies() {
    let env = TestEnv::start().await;
    let doc = env.get("/openapi.json").await.json();
    let paths = &doc["paths"];
    let photo = &paths["/v1/products/{product_id}/photo"];
    let get = &photo["get"]["responses"]["200"]["content"];
    assert_eq!(get["*/*"]["schema"]["format"], "binary", "{get}");
    let post = &photo["post"]["requestBody"]["content"];
    let form = &post["multipart/form-data"]["schema"];
    assert_eq!(form["properties"]["photo"]["format"], "binary", "{post}");
    assert!(post.get("application/json").is_some(), "{post}");
    let export = &paths["/v1/catalog:export"]["get"]["responses"]["200"]["content"];
    assert_eq!(export["*/*"]["schema"]["format"], "binary", "{export}");
    let import = &paths["/v1/catalog:import"]["post"]["requestBody"]["content"];
    assert_eq!(import["*/*"]["schema"]["format"], "binary", "{import}");
}

#[tokio::test]
async fn binary_replies_get_etags_and_are_cached_like_json_ones() {
    let env = TestEnv::start_with(
        "shaping:\n  etag: true\ncache:\n  methods:\n    demo.v1.CatalogService.GetProductPhoto: { ttl: 60s }\n",
    )
    .await;
    let get = |tag: Option<String>| {
        let mut req = env.client.get(env.url("/v1/products/p-6/photo"));
        if let Some(tag) = tag {
            req = req.header("if-none-match", tag);
        }
        req.send()
    };
    let first = get(None).await.unwrap();
    assert_eq!(first.status(), 200);
    let tag = first.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = first.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0x89, b'P', b'N', b'G']));
    let again = get(None).await.unwrap();
    assert_eq!(again.headers()["content-type"], "image/png");
    assert_eq!(
        again.bytes().await.unwrap(),
        bytes,
        "from the cache, the same bytes"
    );
    assert_eq!(
        env.knobs(DemoService::Catalog).calls("GetProductPhoto"),
        1,
        "the second answer came from the cache"
    );
    let not_modified = get(Some(tag)).await.unwrap();
    assert_eq!(not_modified.status(), 304);
}

#[tokio::test]
async fn forms_can_be_turned_off() {
    let env = TestEnv::start_with("rest:\n  multipart: { enabled: false }\n").await;
    let r = upload(&env, "/v1/products/p-1/photo", &[("photo", None, b"1")]).await;
    assert_error(&r, 415, 3, "multipart/form-data");
    assert!(
        !r.json()["message"]
            .as_str()
            .unwrap()
            .contains("or multipart"),
        "{}",
        r.text
    );
    let doc = env.get("/openapi.json").await.json();
    let post = &doc["paths"]["/v1/products/{product_id}/photo"]["post"]["requestBody"]["content"];
    assert!(post.get("multipart/form-data").is_none(), "{post}");
    // Raw HttpBody bodies are not forms: still taken.
    let r = env
        .raw(
            "POST",
            "/v1/catalog:import?dryRun=true",
            "text/csv",
            "id,price_units\n",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A form or a raw body is what a page of another site can send without a CORS preflight:
/// with no `cors` section only the gateway's own pages (and clients that are not pages, which
/// send no `Origin`) may; with one, its origins.
#[tokio::test]
async fn forms_and_raw_bodies_from_other_sites_are_refused() {
    let send = async |env: &TestEnv,
                      path: &str,
                      content_type: &str,
                      body: Vec<u8>,
                      origin: Option<&str>| {
        let mut req = env
            .client
            .post(env.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        env.send(req).await
    };
    let form = format!("multipart/form-data; boundary={BOUNDARY}");
    let photo = || multipart(&[("photo", Some(("a.png", "image/png")), b"png")]);
    let csv = || b"id,price_units\np-1,12\n".to_vec();
    let import = "/v1/catalog:import?dryRun=true";

    let env = TestEnv::start().await;
    let own = env.base.clone();
    for origin in [None, Some(own.as_str())] {
        let r = send(&env, "/v1/products/p-3/photo", &form, photo(), origin).await;
        assert_eq!(r.status, 200, "{origin:?}: {}", r.text);
        let r = send(&env, import, "text/csv", csv(), origin).await;
        assert_eq!(r.status, 200, "{origin:?}: {}", r.text);
    }
    let calls = env.knobs(DemoService::Catalog).total_calls();
    let r = send(
        &env,
        "/v1/products/p-3/photo",
        &form,
        photo(),
        Some("https://evil.example"),
    )
    .await;
    assert_error(&r, 403, 7, "form uploads");
    let r = send(
        &env,
        import,
        "text/csv",
        csv(),
        Some("https://evil.example"),
    )
    .await;
    assert_error(&r, 403, 7, "raw bodies");
    assert_eq!(
        env.knobs(DemoService::Catalog).total_calls(),
        calls,
        "no call made"
    );
    // JSON bodies need a preflight, which CORS answers: not refused here
    let r = env
        .send(
            env.client
                .post(env.url("/v1/users"))
                .header("origin", "https://evil.example")
                .json(&serde_json::json!({"user": {"displayName": "J", "email": "j@x.io"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // with a cors section, its origins decide
    let env = TestEnv::start_with("cors: { origins: [\"https://app.example.com\"] }\n").await;
    let r = send(
        &env,
        "/v1/products/p-3/photo",
        &form,
        photo(),
        Some("https://app.example.com"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        &env,
        "/v1/products/p-3/photo",
        &form,
        photo(),
        Some(&env.base),
    )
    .await;
    assert_error(&r, 403, 7, "cors.origins");
}
