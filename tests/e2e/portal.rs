//! The developer portal: server-rendered pages listing what the descriptors made available
//! (services, methods, REST routes, GraphQL fields, types with examples, operations and their
//! endpoints), read in a real headless Chromium (Debian's `chromium`), with nothing on the
//! pages that would load from elsewhere.

use portico_e2e::TestEnv;

const OPERATIONS: &str = "operations: { dir: bff-web/operations }\nendpoints:\n  - { path: \"/api/products/{id}\", operation: Product, unwrap: product }\n";

#[tokio::test]
async fn the_portal_lists_services_routes_types_and_operations() {
    let env = TestEnv::start_with(OPERATIONS).await;
    let r = env.get("/portal").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").starts_with("text/html"));
    for want in [
        "demo.v1.UserService",
        "demo.v1.CatalogService",
        "<code>/v1/users/{id}</code>",
        "<code>/v1/{name=categories/*/products/*}</code>",
        "<code>Query.user</code>",
        "<code>Mutation.createUser</code>",
        "href=\"/portal/types/demo.v1.GetUserRequest\"",
        "href=\"/openapi.json\"",
        "<code>Product</code>",
        "<code>/api/products/{id}</code>",
        "<code>$id: String!</code>",
    ] {
        assert!(
            r.text.contains(want),
            "{want} is not on the portal:\n{}",
            r.text
        );
    }
    // A type: its fields by JSON name, their types, and an example body.
    let r = env.get("/portal/types/demo.v1.User").await;
    assert_eq!(r.status, 200, "{}", r.text);
    for want in [
        "<code>displayName</code>",
        "a string in JSON",
        "<h2>Example</h2>",
        "&quot;createdAt&quot;: &quot;2024-01-02T03:04:05Z&quot;",
    ] {
        assert!(r.text.contains(want), "{want}:\n{}", r.text);
    }
    let r = env.get("/portal/types/demo.v1.Nope").await;
    assert_eq!(r.status, 404);
    assert!(r.text.contains("no message type"), "{}", r.text);
    let r = env.get("/portal/schema.graphql").await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("type Query"), "{}", r.text);

    let off = TestEnv::start_with("portal: { enabled: false }\n").await;
    assert_eq!(off.get("/portal").await.status, 404);
}

/// Chromium's rendering of `url` (the DOM after load), headless, with every name but
/// 127.0.0.1 unresolvable.
fn chromium_dom(url: &str) -> String {
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("chromium runs (Debian: apt install chromium; .ci/run installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `src`/`href` of the page and every CSS `url(...)`: none may point off the machine.
fn external_references(dom: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\"", "url("] {
        let mut rest = dom;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find(['"', ')']).unwrap_or(rest.len());
            let target = rest[..end].trim_matches('\'');
            let local = target.starts_with('/')
                || target.starts_with('#')
                || target.starts_with("http://127.0.0.1");
            if !local {
                found.push(target.to_string());
            }
        }
    }
    found
}

#[tokio::test]
async fn chromium_renders_the_portal_with_nothing_from_elsewhere() {
    let env = TestEnv::start_with(OPERATIONS).await;
    for (path, want) in [
        (
            "/portal",
            vec!["What this BFF serves", "demo.v1.OrderService", "Operations"],
        ),
        (
            "/portal/types/demo.v1.Order",
            vec!["demo.v1.Order", "Example"],
        ),
    ] {
        let url = env.url(path);
        let dom = tokio::task::spawn_blocking(move || chromium_dom(&url))
            .await
            .unwrap();
        for w in want {
            assert!(dom.contains(w), "{path}: {w} not rendered:\n{dom}");
        }
        assert!(dom.contains("<table>"), "{path}: {dom}");
        let external = external_references(&dom);
        assert!(
            external.is_empty(),
            "{path} refers off the machine: {external:?}"
        );
        assert!(
            !dom.contains("<script"),
            "{path}: the portal needs no JavaScript"
        );
    }
}
