//! The endpoints of one backend: one lazily-connecting channel each, calls in flight, health,
//! passive outlier ejection, and host names re-resolved periodically.
//!
//! An endpoint written with an IP literal is one [`Endpoint`] for good. One written with a host
//! name is resolved (`tokio::net::lookup_host`) at start and every `dns_refresh`; each address
//! gets its own endpoint (with the host name kept as the `:authority`), endpoints of addresses
//! that disappear are removed, unchanged ones keep their state. A failed or empty resolution
//! keeps the previous endpoints. Background tasks hold only a weak reference and stop when the
//! set is dropped (when its snapshot is replaced).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

use http::Uri;
use tokio::time::Instant;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use super::balance;
use super::health;
use crate::config::{BackendConfig, BalancePolicy, OutlierConfig};

/// One address of a backend.
#[derive(Debug)]
pub struct Endpoint {
    label: String,
    /// How its channels are made (address, timeouts, TLS).
    make: tonic::transport::Endpoint,
    /// One lazily-connecting channel per runtime slot ([`crate::cores`]): slot 0's made with
    /// the endpoint, a core's on its first call from that core.
    channels: Box<[OnceLock<Channel>]>,
    in_flight: AtomicUsize,
    healthy: AtomicBool,
    consecutive_failures: AtomicU32,
    ejections: AtomicU32,
    /// Milliseconds since the set's base time until which the endpoint is ejected (0 = never).
    ejected_until: AtomicU64,
}

/// Counts a call in flight on an endpoint until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Endpoint>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    /// The endpoint.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.0
    }
}

impl Endpoint {
    fn new(label: String, make: tonic::transport::Endpoint) -> Self {
        let channels: Box<[OnceLock<Channel>]> = (0..crate::cores::slots())
            .map(|_| OnceLock::new())
            .collect();
        if let Some(first) = channels.first() {
            let _ = first.set(make.connect_lazy());
        }
        Self {
            label,
            make,
            channels,
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            consecutive_failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
        }
    }

    /// The URL, e.g. `http://10.0.0.7:50051` (with the host name for resolved ones).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The endpoint's channel for the current thread's runtime (cheap clone): on a core's
    /// thread the core's own (made on its first call), else slot 0's.
    pub fn channel(&self) -> Channel {
        let slot = crate::cores::current();
        match self.channels.get(slot) {
            Some(c) if slot > 0 => c.get_or_init(|| self.make.connect_lazy()).clone(),
            _ => self
                .channels
                .first()
                .and_then(OnceLock::get)
                .cloned()
                .unwrap_or_else(|| self.make.connect_lazy()),
        }
    }

    /// How many runtimes have a channel to it so far (1 + the cores that called it; shown as
    /// `channels` in `/admin/backends`).
    pub fn channels_made(&self) -> usize {
        self.channels.iter().filter(|c| c.get().is_some()).count()
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The last active health check's verdict (true without health checks).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Sets the health verdict; returns whether it changed.
    pub(crate) fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::AcqRel) != healthy
    }

    /// Sick failures in a row.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Acquire)
    }

    pub(crate) fn ejected_until_ms(&self) -> u64 {
        self.ejected_until.load(Ordering::Acquire)
    }

    /// Starts counting a call.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }
}

/// The TLS of a backend's `https://` endpoints: its `tls` section (paths already resolved),
/// or the system's and Mozilla's roots. `None` for a plain-HTTP backend. Errors name the file.
fn client_tls(cfg: &BackendConfig) -> Result<Option<ClientTlsConfig>, String> {
    let https = cfg.endpoints.iter().any(|e| e.starts_with("https://"));
    let Some(tls) = &cfg.tls else {
        return Ok(https.then(|| ClientTlsConfig::new().with_enabled_roots()));
    };
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("tls: cannot read {}: {e}", p.display()))
    };
    let mut out = ClientTlsConfig::new();
    out = match &tls.ca {
        Some(ca) => out.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => out.with_enabled_roots(),
    };
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        out = out.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    if let Some(name) = &tls.server_name {
        out = out.domain_name(name.clone());
    }
    Ok(Some(out))
}

/// How the channels of one address are made; `origin` keeps the host name as `:authority` (and, over TLS,
/// as the name the backend's certificate must hold, unless `tls.server_name` says otherwise).
fn channel_maker(
    uri: &str,
    origin: Option<&Uri>,
    cfg: &BackendConfig,
    tls: Option<&ClientTlsConfig>,
) -> Result<tonic::transport::Endpoint, String> {
    let mut e = tonic::transport::Endpoint::from_shared(uri.to_string())
        .map_err(|e| format!("invalid endpoint {uri:?}: {e}"))?
        .connect_timeout(cfg.connect_timeout.get())
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    if let Some(o) = origin {
        e = e.origin(o.clone());
    }
    if let Some(tls) = tls {
        let mut tls = tls.clone();
        let named = cfg
            .tls
            .as_ref()
            .and_then(|t| t.server_name.as_ref())
            .is_some();
        if !named && let Some(host) = origin.and_then(Uri::host) {
            tls = tls.domain_name(host.trim_matches(['[', ']']));
        }
        e = e
            .tls_config(tls)
            .map_err(|e| format!("tls for {uri:?}: {e}"))?;
    }
    Ok(e)
}

/// A host name to resolve, and the group of endpoints it produced.
#[derive(Debug)]
struct DnsName {
    group: usize,
    uri: Uri,
    host: String,
    port: u16,
}

/// All endpoints of a backend, and how one is chosen.
#[derive(Debug)]
pub struct EndpointSet {
    backend: Arc<str>,
    cfg: BackendConfig,
    policy: BalancePolicy,
    outlier: OutlierConfig,
    /// TLS of the endpoints (`https://`), shared by the channels DNS refreshes make.
    tls: Option<ClientTlsConfig>,
    /// The flattened list calls pick from; replaced as a whole on DNS changes.
    list: RwLock<Arc<[Arc<Endpoint>]>>,
    /// One group per configured endpoint (a resolved host name may give several).
    groups: Mutex<Vec<Vec<Arc<Endpoint>>>>,
    rr: AtomicUsize,
    base: Instant,
}

impl EndpointSet {
    /// Builds the endpoints of a backend and starts its background tasks (DNS refresh for
    /// host names, active health checks when configured); must run inside a tokio runtime
    /// for those. Errors name the bad endpoint.
    pub fn new(backend: &str, cfg: &BackendConfig) -> Result<Arc<Self>, String> {
        let tls = client_tls(cfg).map_err(|e| format!("backend {backend:?}: {e}"))?;
        let mut groups = Vec::with_capacity(cfg.endpoints.len());
        let mut names = Vec::new();
        for (i, ep) in cfg.endpoints.iter().enumerate() {
            let uri: Uri = ep
                .parse()
                .map_err(|e| format!("backend {backend:?}: invalid endpoint {ep:?}: {e}"))?;
            let make = channel_maker(ep, None, cfg, tls.as_ref())
                .map_err(|e| format!("backend {backend:?}: {e}"))?;
            groups.push(vec![Arc::new(Endpoint::new(ep.clone(), make))]);
            let host = uri
                .host()
                .unwrap_or("")
                .trim_matches(['[', ']'])
                .to_string();
            if host.parse::<IpAddr>().is_err()
                && let Some(port) = uri.port_u16()
            {
                names.push(DnsName {
                    group: i,
                    uri,
                    host,
                    port,
                });
            }
        }
        let list: Arc<[Arc<Endpoint>]> = groups.iter().flatten().cloned().collect();
        let set = Arc::new(Self {
            backend: backend.into(),
            cfg: cfg.clone(),
            policy: cfg.resilience.balance,
            outlier: cfg.resilience.outlier.clone(),
            tls,
            list: RwLock::new(list),
            groups: Mutex::new(groups),
            rr: AtomicUsize::new(0),
            base: Instant::now(),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            if !names.is_empty() {
                tokio::spawn(refresh_dns(
                    Arc::downgrade(&set),
                    names,
                    cfg.resilience.dns_refresh.get(),
                ));
            }
            if let Some(hc) = &cfg.resilience.health_check {
                tokio::spawn(health::run(Arc::downgrade(&set), hc.clone()));
            }
        }
        Ok(set)
    }

    /// The backend's name.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The current endpoints.
    pub fn endpoints(&self) -> Arc<[Arc<Endpoint>]> {
        match self.list.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Milliseconds since this set was made (the time base of ejections).
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether an endpoint is ejected now, and for how much longer.
    pub fn ejected_for(&self, ep: &Endpoint) -> Option<Duration> {
        let until = ep.ejected_until_ms();
        let now = self.now_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }

    /// Chooses an endpoint for a call, avoiding `avoid` (the one a retried attempt failed
    /// on) when another is eligible. Healthy, non-ejected endpoints are preferred; when none
    /// is left, every endpoint is tried (rather than failing without trying).
    pub fn pick(&self, avoid: Option<&Arc<Endpoint>>) -> Option<Arc<Endpoint>> {
        let list = self.endpoints();
        balance::pick(&list, self.policy, &self.rr, avoid, self.now_ms())
    }

    /// Records an attempt's result on its endpoint: `sick` failures in a row eject it for
    /// `ejection_time`, doubled for each ejection in a row, at most `max_ejection_time`.
    pub fn record(&self, ep: &Endpoint, sick: bool) {
        if !sick {
            if ep.consecutive_failures.load(Ordering::Acquire) != 0 {
                ep.consecutive_failures.store(0, Ordering::Release);
            }
            if ep.ejections.load(Ordering::Acquire) != 0 && self.ejected_for(ep).is_none() {
                ep.ejections.store(0, Ordering::Release);
            }
            return;
        }
        let limit = self.outlier.consecutive_failures;
        if limit == 0 {
            return;
        }
        let n = ep.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n < limit
            || ep
                .consecutive_failures
                .compare_exchange(n, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        let ejections = ep.ejections.fetch_add(1, Ordering::AcqRel) + 1;
        let time = self
            .outlier
            .ejection_time
            .get()
            .saturating_mul(1u32 << (ejections - 1).min(20))
            .min(self.outlier.max_ejection_time.get());
        let ms = u64::try_from(time.as_millis()).unwrap_or(u64::MAX);
        ep.ejected_until
            .store(self.now_ms().saturating_add(ms), Ordering::Release);
        tracing::warn!(backend = %self.backend, endpoint = %ep.label, failures = n,
            ejections, ejected_for = %humantime::format_duration(time), "endpoint ejected");
    }

    /// Replaces the endpoints of one host name with those of `addrs`, keeping unchanged ones.
    fn update_group(&self, name: &DnsName, addrs: &[SocketAddr]) {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(group) = groups.get_mut(name.group) else {
            return;
        };
        let scheme = name.uri.scheme_str().unwrap_or("http");
        let mut next = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let label = format!("{scheme}://{}:{} ({addr})", name.host, name.port);
            if let Some(old) = group.iter().find(|e| e.label == label) {
                next.push(old.clone());
                continue;
            }
            match channel_maker(
                &format!("{scheme}://{addr}"),
                Some(&name.uri),
                &self.cfg,
                self.tls.as_ref(),
            ) {
                Ok(make) => next.push(Arc::new(Endpoint::new(label, make))),
                Err(e) => {
                    tracing::warn!(backend = %self.backend, error = %e, "bad resolved address")
                }
            }
        }
        let same = next.len() == group.len()
            && next.iter().all(|n| group.iter().any(|o| Arc::ptr_eq(n, o)));
        if same || next.is_empty() {
            return;
        }
        let labels: Vec<&str> = next.iter().map(|e| e.label.as_str()).collect();
        tracing::info!(backend = %self.backend, host = %name.host, endpoints = ?labels, "endpoints re-resolved");
        *group = next;
        let list: Arc<[Arc<Endpoint>]> = groups.iter().flatten().cloned().collect();
        match self.list.write() {
            Ok(mut g) => *g = list,
            Err(p) => *p.into_inner() = list,
        }
    }
}

/// Resolves the host names now and every `every`, until the set is dropped.
async fn refresh_dns(set: Weak<EndpointSet>, names: Vec<DnsName>, every: Duration) {
    loop {
        for name in &names {
            let resolved = tokio::net::lookup_host((name.host.as_str(), name.port)).await;
            let Some(set) = set.upgrade() else { return };
            match resolved {
                Ok(addrs) => {
                    let mut addrs: Vec<SocketAddr> = addrs.collect();
                    addrs.sort();
                    addrs.dedup();
                    set.update_group(name, &addrs);
                }
                Err(e) => tracing::warn!(backend = %set.backend, host = %name.host, error = %e,
                    "cannot resolve; keeping the previous endpoints"),
            }
        }
        tokio::time::sleep(every).await;
        if set.strong_count() == 0 {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(endpoints: &[&str]) -> BackendConfig {
        let yaml = format!(
            "endpoints: [{}]\nresilience: {{ outlier: {{ consecutive_failures: 2, ejection_time: 10s, max_ejection_time: 15s }} }}",
            endpoints.join(", ")
        );
        yaml_serde::from_str(&yaml).unwrap()
    }

    #[tokio::test]
    async fn sick_endpoints_are_ejected_for_growing_times() {
        let set =
            EndpointSet::new("users", &cfg(&["http://127.0.0.1:1", "http://127.0.0.1:2"])).unwrap();
        let list = set.endpoints();
        let a = &list[0];
        set.record(a, true);
        assert!(set.ejected_for(a).is_none());
        set.record(a, false);
        set.record(a, true);
        assert!(set.ejected_for(a).is_none(), "a success reset the streak");
        set.record(a, true);
        let t = set.ejected_for(a).unwrap();
        assert!(
            t > Duration::from_secs(9) && t <= Duration::from_secs(10),
            "{t:?}"
        );
        // While ejected, calls go to the other endpoint.
        for _ in 0..10 {
            assert_eq!(set.pick(None).unwrap().label(), "http://127.0.0.1:2");
        }
        set.record(a, true);
        set.record(a, true);
        let t = set.ejected_for(a).unwrap();
        assert!(
            t > Duration::from_secs(14) && t <= Duration::from_secs(15),
            "doubled, capped: {t:?}"
        );
    }

    #[tokio::test]
    async fn host_names_are_resolved_into_endpoints() {
        // An IP literal starts no resolver task, so the test drives the updates alone.
        let set = EndpointSet::new("users", &cfg(&["http://127.0.0.1:7"])).unwrap();
        let name = DnsName {
            group: 0,
            uri: "http://localhost:7".parse().unwrap(),
            host: "localhost".into(),
            port: 7,
        };
        let a: SocketAddr = "127.0.0.1:7".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:7".parse().unwrap();
        set.update_group(&name, &[a, b]);
        let labels: Vec<String> = set
            .endpoints()
            .iter()
            .map(|e| e.label().to_string())
            .collect();
        assert_eq!(
            labels,
            [
                "http://localhost:7 (127.0.0.1:7)",
                "http://localhost:7 (127.0.0.2:7)"
            ]
        );
        let kept = set.endpoints()[1].clone();
        set.update_group(&name, &[b]);
        assert_eq!(set.endpoints().len(), 1);
        assert!(
            Arc::ptr_eq(&set.endpoints()[0], &kept),
            "unchanged endpoints keep their state"
        );
        set.update_group(&name, &[]);
        assert_eq!(
            set.endpoints().len(),
            1,
            "an empty answer keeps the endpoints"
        );
    }
}
