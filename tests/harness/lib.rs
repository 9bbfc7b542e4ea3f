//! The end-to-end test harness: real demo backends and a real gateway on ephemeral ports.
//!
//! [`TestEnv::start`] spawns the three demo services in-process (each a real tonic server on
//! 127.0.0.1:0), builds a gateway snapshot from a YAML config pointing at them, and serves it on
//! another ephemeral port. Everything stops when the `TestEnv` is dropped. [`faults`] puts a
//! fault-injecting proxy between the gateway and a backend; [`grpc_web`] is a gRPC-Web client.

pub mod faults;
pub mod grpc_web;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portico::app::{Gateway, router};
use portico::snapshot::{LoadError, Snapshot};
use portico_demo::{DemoCluster, DemoService};
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The cross-service links of the example BFF configs: `User.orders`, `Order.user` and the
/// batched `OrderItem.product` (a YAML list for `graphql.links`).
pub const DEMO_LINKS: &str = portico_demo::GRAPHQL_LINKS_YAML;

/// The arguments that bound list sizes in the demo APIs (`graphql.limits.size_args`, as the
/// example BFF configs have it: the usual page sizes plus the demo's `maxEvents` and `ids`).
pub const DEMO_SIZE_ARGS: &str = "[pageSize, first, last, limit, maxEvents, ids]";

/// A config over the demo cluster; `extra` is appended (top-level YAML keys). Unless `extra`
/// has its own `graphql:` section, the demo links and [`DEMO_SIZE_ARGS`] are configured.
pub fn demo_config(demo: &DemoCluster, extra: &str) -> String {
    format!(
        r#"
listen: 127.0.0.1:0
descriptors:
  - file: descriptors/demo.binpb
backends:
  users:
    endpoints: [{users}]
    services: [demo.v1.UserService]
  orders:
    endpoints: [{orders}]
    services: [demo.v1.OrderService]
  catalog:
    endpoints: [{catalog}]
    services: [demo.v1.CatalogService]
{graphql}{extra}
"#,
        graphql = if extra.contains("graphql:") {
            String::new()
        } else {
            format!("graphql:\n  limits: {{ size_args: {DEMO_SIZE_ARGS} }}\n  links:{DEMO_LINKS}")
        },
        users = demo.users.endpoint(),
        orders = demo.orders.endpoint(),
        catalog = demo.catalog.endpoint(),
    )
}

/// Builds a snapshot from config text (relative paths against the repo root).
pub async fn build_snapshot(yaml: &str) -> Result<Snapshot, LoadError> {
    let cfg = portico::config::parse(yaml, "test.yaml", &repo_root())?;
    Snapshot::build(cfg).await
}

/// A running gateway over running demo backends.
pub struct TestEnv {
    /// The demo backends (their knobs inject faults and count calls).
    pub demo: DemoCluster,
    /// `http://127.0.0.1:PORT` of the gateway.
    pub base: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The gateway (its current snapshot).
    pub gateway: Arc<Gateway>,
    /// `http://127.0.0.1:PORT` of the admin listener, when the config has an `admin` section
    /// (served on a free port, whatever `admin.listen` says).
    pub admin: Option<String>,
    /// The reloader, for a gateway started from a config file ([`TestEnv::serve_source`]).
    pub reloader: Option<Arc<portico::reload::Reloader>>,
    stop: Option<oneshot::Sender<()>>,
}

/// Serves the admin router of `gateway` on a free port when its config asks for one.
async fn admin_listener(
    gateway: &Arc<Gateway>,
    reloader: Option<Arc<portico::reload::Reloader>>,
) -> Option<String> {
    let snapshot = gateway.snapshot();
    let admin = snapshot.config.admin.as_ref()?;
    let tls = admin.tls.as_ref().map(|cfg| {
        portico::server::ServerTls::load(cfg, &snapshot.config.base_dir).expect("admin TLS loads")
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://{}", listener.local_addr().expect("addr"));
    let app = portico::admin::router(gateway.clone(), reloader);
    let limits = snapshot.config.limits.clone();
    tokio::spawn(async move {
        let _ = portico::server::serve_tls(
            listener,
            app,
            &limits,
            std::future::pending(),
            portico::server::Drain::default(),
            tls,
        )
        .await;
    });
    Some(base)
}

/// Where a test gateway listens: one listener, or one per core.
enum Bound {
    One(TcpListener),
    Cores(portico::server::Cores),
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub text: String,
}

impl Reply {
    /// The body parsed as JSON (panics with the text if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl TestEnv {
    /// Demo backends + a gateway with the default test config.
    pub async fn start() -> TestEnv {
        Self::start_with("").await
    }

    /// Demo backends + a gateway whose config gets `extra` appended.
    pub async fn start_with(extra: &str) -> TestEnv {
        let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
            .await
            .expect("demo backends start");
        let yaml = demo_config(&demo, extra);
        Self::start_config(demo, &yaml).await
    }

    /// A gateway with exactly this config over `demo`.
    pub async fn start_config(demo: DemoCluster, yaml: &str) -> TestEnv {
        let snapshot = build_snapshot(yaml)
            .await
            .unwrap_or_else(|e| panic!("snapshot builds: {e}"));
        Self::serve(demo, snapshot).await
    }

    /// A BFF's shipped example config (`bff-web`, `bff-mobile`), unchanged but for its backend
    /// endpoints, which point at `demo`.
    pub async fn start_example(bff: &str) -> TestEnv {
        let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
            .await
            .expect("demo backends start");
        let dir = repo_root().join(bff);
        let text = std::fs::read_to_string(dir.join("config.yaml")).expect("example config");
        let text = text
            .replace("http://127.0.0.1:50051", &demo.users.endpoint())
            .replace("http://127.0.0.1:50052", &demo.orders.endpoint())
            .replace("http://127.0.0.1:50053", &demo.catalog.endpoint());
        let cfg = portico::config::parse(&text, &format!("{bff}/config.yaml"), &dir)
            .unwrap_or_else(|e| panic!("{e}"));
        let snapshot = Snapshot::build(cfg)
            .await
            .unwrap_or_else(|e| panic!("snapshot builds: {e}"));
        Self::serve(demo, snapshot).await
    }

    /// A gateway serving `snapshot` over `demo` with TLS (`base` is `https://127.0.0.1:PORT`;
    /// `client` does not trust the server: build one that does).
    pub async fn serve_tls(
        demo: DemoCluster,
        snapshot: Snapshot,
        tls: Arc<portico::server::ServerTls>,
    ) -> TestEnv {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gateway = Gateway::new(snapshot);
        Self::serve_bound(demo, gateway, None, Bound::One(listener), Some(tls)).await
    }

    /// [`TestEnv::serve_tls`] with one runtime per core on `cores` cores (each core calls the
    /// backends over its own channels when `portico::cores::reserve` ran before the snapshot
    /// was built, else over the control plane's).
    pub async fn serve_tls_cores(
        demo: DemoCluster,
        snapshot: Snapshot,
        tls: Arc<portico::server::ServerTls>,
        cores: usize,
    ) -> TestEnv {
        let bound = portico::server::Cores::bind("127.0.0.1:0".parse().expect("addr"), cores)
            .await
            .expect("the cores bind");
        let gateway = Gateway::new(snapshot);
        Self::serve_bound(demo, gateway, None, Bound::Cores(bound), Some(tls)).await
    }

    /// A gateway serving `snapshot` over `demo`.
    pub async fn serve(demo: DemoCluster, snapshot: Snapshot) -> TestEnv {
        Self::serve_with(demo, Gateway::new(snapshot), None).await
    }

    /// A gateway built from the config file of `source` over `demo`, with its reloader
    /// (`env.reloader`: `POST /admin/reload` and the reload history work; call `start` on it
    /// to watch the files too).
    pub async fn serve_source(demo: DemoCluster, source: portico::reload::ConfigSource) -> TestEnv {
        let snapshot = source
            .build()
            .await
            .unwrap_or_else(|e| panic!("snapshot builds: {e}"));
        let gateway = Gateway::new(snapshot);
        let reloader = portico::reload::Reloader::new(gateway.clone(), source, None);
        Self::serve_with(demo, gateway, Some(reloader)).await
    }

    /// Demo backends + a gateway whose config gets `extra` appended, served with one
    /// runtime per core (`runtime.mode: per_core`) on `cores` cores.
    pub async fn start_cores(extra: &str, cores: usize) -> TestEnv {
        let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
            .await
            .expect("demo backends start");
        // Bound first: that reserves the cores' slots in the backend channels built next.
        let bound = portico::server::Cores::bind("127.0.0.1:0".parse().expect("addr"), cores)
            .await
            .expect("the cores bind");
        let snapshot = build_snapshot(&demo_config(&demo, extra))
            .await
            .unwrap_or_else(|e| panic!("snapshot builds: {e}"));
        Self::serve_bound(
            demo,
            Gateway::new(snapshot),
            None,
            Bound::Cores(bound),
            None,
        )
        .await
    }

    async fn serve_with(
        demo: DemoCluster,
        gateway: Arc<Gateway>,
        reloader: Option<Arc<portico::reload::Reloader>>,
    ) -> TestEnv {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve_bound(demo, gateway, reloader, Bound::One(listener), None).await
    }

    async fn serve_bound(
        demo: DemoCluster,
        gateway: Arc<Gateway>,
        reloader: Option<Arc<portico::reload::Reloader>>,
        bound: Bound,
        tls: Option<Arc<portico::server::ServerTls>>,
    ) -> TestEnv {
        let snapshot = gateway.snapshot();
        let limits = snapshot.config.limits.clone();
        let local = match &bound {
            Bound::One(listener) => listener.local_addr().expect("addr"),
            Bound::Cores(cores) => cores.local_addr(),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{local}");
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(gateway.clone());
        // The gateway's readiness: the server counts its connections there.
        let drain = portico::server::Drain {
            readiness: gateway.readiness().clone(),
            ..Default::default()
        };
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            let _ = match bound {
                Bound::One(listener) => {
                    portico::server::serve_tls(listener, app, &limits, shutdown, drain, tls).await
                }
                Bound::Cores(cores) => cores.serve(app, &limits, shutdown, drain, tls).await,
            };
        });
        let admin = admin_listener(&gateway, reloader.clone()).await;
        TestEnv {
            demo,
            base,
            client: reqwest::Client::new(),
            gateway,
            admin,
            reloader,
            stop: Some(stop),
        }
    }

    /// The knobs of one demo backend.
    pub fn knobs(&self, s: DemoService) -> &portico_demo::Knobs {
        &self.demo.get(s).knobs
    }

    /// The absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request and reads the whole response.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        Reply {
            status,
            headers,
            text,
        }
    }

    /// POSTs a GraphQL operation to `/graphql` and returns the JSON response.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let r = self
            .json(
                "POST",
                "/graphql",
                &serde_json::json!({"query": query, "variables": variables}),
            )
            .await;
        r.json()
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    /// Sends `method path` with a JSON body.
    pub async fn json(&self, method: &str, path: &str, body: &Value) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.send(
            self.client
                .request(m, self.url(path))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// Sends `method path` with a raw body and content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.send(
            self.client
                .request(m, self.url(path))
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// Starts the gateway's shutdown (as SIGTERM would): the drain begins.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs the `graphql-http` conformance audit (npm package, in `tests/graphql-http`) against
/// `url`, installing it first when `node_modules` is missing; returns (success, output).
pub async fn run_graphql_http_audit(url: &str) -> (bool, String) {
    let dir = repo_root().join("tests/graphql-http");
    if !dir.join("node_modules").exists() {
        let out = tokio::process::Command::new("npm")
            .arg("ci")
            .arg("--prefix")
            .arg(&dir)
            .args(["--no-audit", "--no-fund"])
            .output()
            .await
            .expect("npm runs (Node.js 18+ is needed for the graphql-http audit)");
        assert!(
            out.status.success(),
            "npm ci failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = tokio::process::Command::new("node")
        .arg(dir.join("audit.mjs"))
        .arg(url)
        .output()
        .await
        .expect("node runs (Node.js 18+ is needed for the graphql-http audit)");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Asserts a `google.rpc.Status` error body: HTTP status, gRPC code and a message fragment.
pub fn assert_error(reply: &Reply, http: u16, code: i64, fragment: &str) {
    assert_eq!(reply.status, http, "status of {}", reply.text);
    let body = reply.json();
    assert_eq!(body["code"], code, "code in {body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(fragment),
        "message {msg:?} should contain {fragment:?}"
    );
    assert!(body["details"].is_array(), "details in {body}");
}

/// The next JSON text message of a GraphQL WebSocket (10 seconds at most).
pub async fn next_ws_json<S>(ws: &mut S) -> Value
where
    S: futures::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures::StreamExt;
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10s")
            .expect("stream open")
            .expect("no ws error");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).expect("a JSON message");
        }
    }
}

/// A `redis-server` of the test's own, on a free port of 127.0.0.1, keeping nothing on disk;
/// killed when dropped. Never the machine's shared one: outage tests stop and pause it.
pub struct RedisServer {
    child: std::process::Child,
    /// Its port.
    pub port: u16,
}

impl RedisServer {
    /// Starts one and waits until it accepts connections (it says so on stdout). Needs the
    /// `redis-server` binary (Debian: `apt install redis-server`).
    pub fn start() -> RedisServer {
        use std::io::{BufRead, BufReader};
        let mut last = String::new();
        // A port found free can be taken before redis binds it: try a few.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("redis-server runs (install it: apt install redis-server)");
            let stdout = child.stdout.take().expect("stdout");
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines.by_ref().map_while(Result::ok).any(|l| {
                last = l.clone();
                l.contains("Ready to accept connections")
            });
            if ready {
                // Keep reading, so redis never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return RedisServer { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start: {last}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} redis-server");
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing answers, as with a hung host.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Stops it for good (connections refused from now on).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server must be thawed to die cleanly.
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        self.stop();
    }
}

/// A parsed `/metrics` answer (Prometheus text format).
pub type Scrape = openmetrics_parser::MetricsExposition<
    openmetrics_parser::PrometheusType,
    openmetrics_parser::PrometheusValue,
>;

impl TestEnv {
    /// Scrapes `/metrics` of the admin listener (the config needs an `admin` section) and parses
    /// it as the Prometheus text format.
    pub async fn scrape(&self) -> Scrape {
        let url = format!(
            "{}/metrics",
            self.admin.as_ref().expect("an admin listener")
        );
        let r = self.send(self.client.get(url)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            r.header("content-type")
                .starts_with("text/plain; version=0.0.4")
        );
        openmetrics_parser::prometheus::parse_prometheus(&r.text)
            .unwrap_or_else(|e| panic!("not the Prometheus text format ({e:?}):\n{}", r.text))
    }
}

/// A histogram series' count or a counter's or gauge's value, summed over the series of
/// `family` whose labels include `labels`; 0 when none.
pub fn metric(s: &Scrape, family: &str, labels: &[(&str, &str)]) -> f64 {
    use openmetrics_parser::PrometheusValue;
    let Some(f) = s.families.get(family) else {
        return 0.0;
    };
    f.iter_samples()
        .filter(|x| {
            let set = x.get_labelset().expect("labels");
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|x| match &x.value {
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(v) | PrometheusValue::Unknown(v) => v.as_f64(),
            _ => 0.0,
        })
        .fold(0.0, |a, b| a + b)
}

/// A GraphQL-over-WebSocket connection (`graphql-transport-ws`) to a test gateway.
pub type GraphqlWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestEnv {
    /// Opens a `graphql-transport-ws` connection to `/graphql`, sends `connection_init` with
    /// `payload` (when given) and waits for its `connection_ack`.
    pub async fn graphql_ws(&self, payload: Option<Value>) -> GraphqlWs {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = self
            .url("/graphql")
            .replace("http://", "ws://")
            .into_client_request()
            .expect("a ws request");
        req.headers_mut().insert(
            "sec-websocket-protocol",
            http::HeaderValue::from_static("graphql-transport-ws"),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("the WebSocket upgrade");
        let mut init = serde_json::json!({"type": "connection_init"});
        if let Some(p) = payload {
            init["payload"] = p;
        }
        ws.send(Message::text(init.to_string()))
            .await
            .expect("connection_init sent");
        assert_eq!(next_ws_json(&mut ws).await["type"], "connection_ack");
        ws
    }
}

/// Every log line the gateways of this test binary write, as JSON, in one buffer: a global
/// subscriber installed by the first call to [`logs`] (a subscriber per test, set as the
/// thread's default, loses events when tests run in parallel: tracing caches whether a
/// call site is enabled across threads). Tests pick their own lines by request id.
pub struct Logs(std::sync::Mutex<Vec<u8>>);

/// The buffer of [`Logs`], capturing from the first call on.
pub fn logs() -> &'static Logs {
    static LOGS: std::sync::OnceLock<&'static Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Logs = Box::leak(Box::new(Logs(std::sync::Mutex::new(Vec::new()))));
        // The gateway's own JSON lines (`--log-format json`).
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(portico::telemetry::json_log::JsonMembers)
            .event_format(portico::telemetry::json_log::JsonLines)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(logs))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
}

struct LogWriter(&'static Logs);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// The lines written so far whose request span has an id starting with `prefix`.
    pub fn of_requests(&self, prefix: &str) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v["span"]["request_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(prefix))
            })
            .collect()
    }

    /// The access lines (target `portico::access`) of the requests with ids starting with
    /// `prefix`.
    pub fn access_lines(&self, prefix: &str) -> Vec<Value> {
        self.of_requests(prefix)
            .into_iter()
            .filter(|v| v["target"] == "portico::access")
            .collect()
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

/// An OTLP trace collector on a free port (a real tonic `TraceService`), keeping every span
/// it receives with its resource's `service.name`.
pub struct OtlpCollector {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    spans: Arc<CollectedSpans>,
    _stop: oneshot::Sender<()>,
}

/// The collector's service: hands what it receives to the shared [`CollectedSpans`].
struct Collect(Arc<CollectedSpans>);

#[derive(Default)]
struct CollectedSpans {
    spans: std::sync::Mutex<Vec<(String, opentelemetry_proto::tonic::trace::v1::Span)>>,
    arrived: tokio::sync::Notify,
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Collect
{
    async fn export(
        &self,
        req: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let mut spans = self
            .0
            .spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for rs in req.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                    ) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    spans.push((service.clone(), span));
                }
            }
        }
        drop(spans);
        self.0.arrived.notify_waiters();
        Ok(tonic::Response::new(Default::default()))
    }
}

impl OtlpCollector {
    /// Starts one on 127.0.0.1:0.
    pub async fn start() -> OtlpCollector {
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind collector");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let spans = Arc::new(CollectedSpans::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let service = TraceServiceServer::new(Collect(spans.clone()));
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        OtlpCollector {
            endpoint,
            spans,
            _stop: stop,
        }
    }

    /// Waits (up to 10 s) until `ready` holds for the spans received (each with its
    /// `service.name`), and returns them.
    pub async fn wait_for(
        &self,
        ready: impl Fn(&[(String, opentelemetry_proto::tonic::trace::v1::Span)]) -> bool,
    ) -> Vec<(String, opentelemetry_proto::tonic::trace::v1::Span)> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let arrived = self.spans.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let spans = self
                .spans
                .spans
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            if ready(&spans) {
                return spans;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("the collector never got the spans expected; it has {spans:#?}");
            }
        }
    }

    /// How many spans arrived so far.
    pub fn count(&self) -> usize {
        self.spans
            .spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// Validates an OpenAPI document as OpenAPI 3.1 (openapi-spec-validator) and checks
/// `samples` (a list of `{"method", "path", "status", "body"}`) against the answer schemas it
/// gives (`tests/openapi/validate.py`). The validator is installed the first time into a
/// virtualenv under `target/openapi-validator` (needs `python3` with `venv` and PyPI).
/// Returns whether everything passed, and the validator's report.
pub async fn validate_openapi(doc: &Value, samples: &Value) -> (bool, String) {
    static INSTALL: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    let root = repo_root();
    let python = INSTALL
        .get_or_init(|| async {
            let venv = root.join("target/openapi-validator");
            let python = venv.join("bin/python");
            let ready = venv.join(".installed");
            if !ready.exists() {
                let run = |cmd: &mut tokio::process::Command| {
                    let fut = cmd.output();
                    async move {
                        let out = fut.await.expect("python3 runs (the OpenAPI tests need it)");
                        assert!(
                            out.status.success(),
                            "installing the OpenAPI validator failed:\n{}\n{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                };
                run(tokio::process::Command::new("python3")
                    .args(["-m", "venv", "--clear"])
                    .arg(&venv))
                .await;
                run(tokio::process::Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "-q",
                        "--disable-pip-version-check",
                        "-r",
                    ])
                    .arg(root.join("tests/openapi/requirements.txt")))
                .await;
                std::fs::write(&ready, b"").expect("mark the validator installed");
            }
            python
        })
        .await;
    let dir = std::env::temp_dir().join(format!(
        "portico-openapi-{}-{}",
        std::process::id(),
        NEXT_FILE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let (doc_file, samples_file) = (dir.join("openapi.json"), dir.join("samples.json"));
    std::fs::write(&doc_file, serde_json::to_vec(doc).unwrap()).unwrap();
    std::fs::write(&samples_file, serde_json::to_vec(samples).unwrap()).unwrap();
    let out = tokio::process::Command::new(python)
        .arg(repo_root().join("tests/openapi/validate.py"))
        .arg(&doc_file)
        .arg(&samples_file)
        .output()
        .await
        .expect("the validator runs");
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

static NEXT_FILE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
