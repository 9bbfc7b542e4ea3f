//! The developer portal: server-rendered pages listing what the descriptors made available
//! (services, methods, REST routes, GraphQL fields, types with examples, operations and their
//! endpoints), read in a real headless Chromium (Debian's `chromium`, driven over the DevTools
//! protocol, every host name but 127.0.0.1 unresolvable): nothing on the pages refers to
//! elsewhere and every request the browser makes (the DevTools network events) stays on this
//! machine; GraphiQL, served from the binary, mounts and runs a query the same way.

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
        "GraphQL types",
        "<code>orders: [Order!]!</code>",
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
    let mut browser = Browser::open().await;
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
        browser.navigate(&env.url(path)).await;
        let dom = browser.eval("document.documentElement.outerHTML").await;
        let dom = dom.as_str().unwrap_or_default().to_string();
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
    // What the browser fetched: the two pages, nothing from elsewhere.
    assert!(browser.requests.len() >= 2, "{:?}", browser.requests);
    assert!(
        browser.off_machine().is_empty(),
        "{:?}",
        browser.off_machine()
    );
}

/// A headless Chromium driven over the DevTools protocol: started on a page, it evaluates
/// JavaScript in it. Every host name but 127.0.0.1 is unresolvable.
struct Browser {
    child: std::process::Child,
    _profile: std::path::PathBuf,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
    /// Every URL the page asked for (the Network domain's `requestWillBeSent`).
    requests: Vec<String>,
}

impl Browser {
    async fn open() -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "portico-chromium-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let child = std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromium runs (Debian: apt install chromium; .ci/run installs it)");
        // Chromium writes its DevTools port into the profile once it listens.
        let port_file = profile.join("DevToolsActivePort");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Some(port) = text
                    .lines()
                    .next()
                    .and_then(|l| l.trim().parse::<u16>().ok())
            {
                break port;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chromium never listened"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let targets: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let (ws, _) =
            tokio_tungstenite::connect_async(page["webSocketDebuggerUrl"].as_str().unwrap())
                .await
                .unwrap();
        let mut browser = Browser {
            child,
            _profile: profile,
            ws,
            next_id: 1,
            requests: Vec::new(),
        };
        let v = browser
            .command("Network.enable", serde_json::json!({}))
            .await;
        assert!(v["error"].is_null(), "{v}");
        browser
    }

    /// Sends a DevTools command and returns its answer.
    async fn command(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let id = self.next_id;
        self.next_id += 1;
        let cmd = serde_json::json!({ "id": id, "method": method, "params": params });
        self.ws.send(Message::text(cmd.to_string())).await.unwrap();
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(30), self.ws.next())
                .await
                .expect("chromium answers")
                .expect("the DevTools socket is open")
                .unwrap();
            if let Message::Text(t) = msg {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    return v;
                }
                if v["method"] == "Network.requestWillBeSent"
                    && let Some(url) = v["params"]["request"]["url"].as_str()
                {
                    self.requests.push(url.to_string());
                }
            }
        }
    }

    /// The URLs the page asked for that are not on this machine.
    fn off_machine(&self) -> Vec<&String> {
        self.requests
            .iter()
            .filter(|u| {
                !["http://127.0.0.1", "ws://127.0.0.1", "data:", "about:"]
                    .iter()
                    .any(|p| u.starts_with(p))
            })
            .collect()
    }

    /// Loads `url` and waits until the page is complete.
    async fn navigate(&mut self, url: &str) {
        let v = self
            .command("Page.navigate", serde_json::json!({ "url": url }))
            .await;
        assert!(v["error"].is_null(), "{v}");
        for _ in 0..400 {
            // The old page's context goes away during the navigation: ask again.
            let v = self
                .command(
                    "Runtime.evaluate",
                    serde_json::json!({ "expression": "document.readyState + ' ' + location.href", "returnByValue": true }),
                )
                .await;
            if v["result"]["result"]["value"] == format!("complete {url}") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("{url} never finished loading");
    }

    /// Evaluates `expression` (awaiting a promise) and returns its value.
    async fn eval(&mut self, expression: &str) -> serde_json::Value {
        let v = self
            .command(
                "Runtime.evaluate",
                serde_json::json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        assert!(
            v["error"].is_null() && v["result"]["exceptionDetails"].is_null(),
            "{v}"
        );
        v["result"]["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

#[tokio::test]
async fn graphiql_works_without_internet_access() {
    let env = TestEnv::start().await;
    // Only the gateway's own files: the page refers to nothing off the machine.
    let page = env
        .send(
            env.client
                .get(env.url("/graphql"))
                .header("accept", "text/html"),
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.text.contains("https://"), "{}", page.text);
    let js = env.get("/graphiql/graphiql.min.js").await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert_eq!(env.get("/graphiql/nope.js").await.status, 404);

    // Chromium, with nothing but 127.0.0.1 reachable: GraphiQL mounts, and runs a query.
    let mut browser = Browser::open().await;
    browser.navigate(&env.url("/graphql")).await;
    let answer = browser
        .eval(
            r#"(async () => {
  const until = async (f) => { for (let i = 0; i < 200; i++) { const v = f(); if (v) return v; await new Promise(r => setTimeout(r, 50)); } throw new Error("timed out"); };
  const editor = await until(() => document.querySelector(".graphiql-query-editor .CodeMirror"));
  editor.CodeMirror.setValue('{ user(id: "1") { displayName } }');
  document.querySelector(".graphiql-execute-button").click();
  return await until(() => {
    const out = document.querySelector(".graphiql-response .CodeMirror");
    const text = out && out.CodeMirror.getValue();
    return text && text.includes("displayName") ? text : null;
  });
})()"#,
        )
        .await;
    let text = answer
        .as_str()
        .unwrap_or_else(|| panic!("not text: {answer}"));
    let answer: serde_json::Value = serde_json::from_str(text).unwrap();
    assert!(
        answer["data"]["user"]["displayName"].is_string(),
        "{answer}"
    );
    // Every request of the page and its query stayed on this machine.
    assert!(browser.requests.len() >= 6, "{:?}", browser.requests);
    assert!(
        browser.off_machine().is_empty(),
        "{:?}",
        browser.off_machine()
    );
}

#[tokio::test]
async fn the_portal_can_be_for_identified_callers_only() {
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"key-portal"));
    let env = TestEnv::start_with(&format!(
        "auth:\n  api_keys:\n    keys:\n      - {{ id: frontend, sha256: {sha} }}\nportal: {{ access: identified }}\n"
    ))
    .await;
    let r = env.get("/portal").await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.text.contains("identified callers"), "{}", r.text);
    assert!(!r.header("www-authenticate").is_empty());
    let r = env
        .send(
            env.client
                .get(env.url("/portal"))
                .header("x-api-key", "wrong"),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = env
        .send(
            env.client
                .get(env.url("/portal"))
                .header("x-api-key", "key-portal"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("demo.v1.UserService"));

    // Without an auth section nobody could be identified: the config says so.
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = portico_e2e::demo_config(&demo, "portal: { access: identified }\n");
    let e = match portico_e2e::build_snapshot(&yaml).await {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("portal.access") && e.contains("auth section"),
        "{e}"
    );
}
