//! How the gateway is operated: `reload` (watching files, re-polling reflection), `log`
//! (format, the access log and its sampling), `telemetry` (exporting spans over OTLP) and
//! `runtime` (one multi-threaded runtime, or one single-threaded runtime per core).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// Live reloads besides SIGHUP and `POST /admin/reload`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// Reload when the config file, a descriptor file, a `.proto` folder or the operations
    /// folder changes on disk.
    #[serde(default = "yes")]
    pub watch: bool,
    /// How long the files must stay quiet before a change is reloaded (an editor or
    /// `kubectl` writes several times).
    #[serde(default = "default_debounce")]
    pub debounce: HumanDuration,
    /// How often descriptors registered by server reflection are fetched again (a snapshot
    /// is swapped in only when they changed); `0s` turns it off.
    #[serde(default = "default_reflection_interval")]
    pub reflection_interval: HumanDuration,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            watch: true,
            debounce: default_debounce(),
            reflection_interval: default_reflection_interval(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_debounce() -> HumanDuration {
    HumanDuration(Duration::from_millis(200))
}

fn default_reflection_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// The `runtime` section: how the client port's work is spread over threads. Read at startup.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// `per_core` (the default) or `multi_thread`.
    #[serde(default)]
    pub mode: RuntimeMode,
    /// Worker threads (`multi_thread`) or cores served (`per_core`); default: one per CPU.
    /// `--workers` wins over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

/// How requests are spread over threads.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeMode {
    /// One multi-threaded tokio runtime: every worker takes connections from one listener,
    /// idle workers steal queued work from busy ones, backend connections are shared. Better
    /// balanced when a few long-lived connections carry most requests (an HTTP/2 load
    /// balancer in front with one or two connections).
    MultiThread,
    /// One single-threaded runtime per core, each with its own listener on the same address
    /// (`SO_REUSEPORT`: the kernel spreads new connections over them) and its own backend
    /// connections: a request stays on one thread from accept to answer. The control plane
    /// (reloads, the admin port, health checks) runs on a thread of its own. The default:
    /// less CPU per request and more throughput on every benchmarked path (README,
    /// Performance).
    #[default]
    PerCore,
}

impl RuntimeConfig {
    /// Checks what serde cannot; the error names the key under `runtime`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self.threads {
            Some(0) => Err(("threads".into(), "must be at least 1".into())),
            Some(n) if n > crate::cores::MAX_CORES => Err((
                "threads".into(),
                format!("must be at most {} (not {n})", crate::cores::MAX_CORES),
            )),
            _ => Ok(()),
        }
    }

    /// The threads to run: `threads`, else one per CPU.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// The `log` section.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json` (default: `text`; `--log-format` wins over it). Read at startup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
    /// One access line per request (target `portico::access`).
    #[serde(default = "yes")]
    pub access: bool,
    /// The share of successful requests whose access line is written, from 0 to 1; failed
    /// ones (status 400 and up) are always written.
    #[serde(default = "one")]
    pub access_sample: f64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: None,
            access: true,
            access_sample: 1.0,
        }
    }
}

fn one() -> f64 {
    1.0
}

impl LogConfig {
    /// Checks what serde cannot; the error names the key under `log`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !(0.0..=1.0).contains(&self.access_sample) {
            return Err((
                "access_sample".into(),
                format!(
                    "must be between 0 and 1 (the share of successful requests logged), not {}",
                    self.access_sample
                ),
            ));
        }
        Ok(())
    }
}

/// The `telemetry` section: the gateway's own spans, exported over OTLP (off without `otlp`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Where spans are sent (OTLP over gRPC); none: spans are not exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpConfig>,
    /// The `service.name` of the spans.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// The share of traces the gateway starts that are sampled (exported, and marked sampled
    /// for the backends), from 0 to 1. A client's `traceparent` decides for its own trace.
    #[serde(default = "one")]
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp: None,
            service_name: default_service_name(),
            sample_ratio: 1.0,
        }
    }
}

fn default_service_name() -> String {
    "portico".into()
}

/// An OTLP collector.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's OTLP/gRPC address, e.g. `http://127.0.0.1:4317`.
    pub endpoint: String,
    /// How long one export may take.
    #[serde(default = "default_otlp_timeout")]
    pub timeout: HumanDuration,
    /// How often queued spans are sent (sooner when a batch of 512 is full).
    #[serde(default = "default_flush_interval")]
    pub flush_interval: HumanDuration,
    /// How many finished spans may wait for export; past it new spans are dropped (and
    /// counted in `portico_spans_dropped_total`), never a request slowed.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Metadata sent with every export (e.g. a collector's API key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

fn default_otlp_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_flush_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

fn default_queue() -> usize {
    8192
}

impl TelemetryConfig {
    /// Checks what serde cannot; the error names the key under `telemetry`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err((
                "sample_ratio".into(),
                format!("must be between 0 and 1, not {}", self.sample_ratio),
            ));
        }
        if let Some(otlp) = &self.otlp {
            let ok =
                otlp.endpoint.parse::<http::Uri>().ok().filter(|u| {
                    matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
                });
            if ok.is_none() {
                return Err((
                    "otlp.endpoint".into(),
                    format!(
                        "{:?} is not an http:// or https:// address (e.g. http://127.0.0.1:4317)",
                        otlp.endpoint
                    ),
                ));
            }
            for name in otlp.headers.keys() {
                if tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(
                    name.as_bytes(),
                )
                .is_err()
                {
                    return Err((
                        format!("otlp.headers.{name}"),
                        "not a valid lowercase gRPC metadata name".into(),
                    ));
                }
            }
            if otlp.queue == 0 {
                return Err(("otlp.queue".into(), "must be at least 1".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_watch_files_and_log_every_request() {
        let r: ReloadConfig = yaml_serde::from_str("{}").unwrap();
        assert!(r.watch);
        assert_eq!(r.reflection_interval.get(), Duration::from_secs(30));
        let l: LogConfig = yaml_serde::from_str("{}").unwrap();
        assert!(l.access && l.access_sample == 1.0 && l.format.is_none());
        let l: LogConfig = yaml_serde::from_str("{ format: json, access_sample: 0.1 }").unwrap();
        assert_eq!(l.format, Some(LogFormat::Json));
        assert!(l.validate().is_ok());
        let bad = LogConfig {
            access_sample: 2.0,
            ..LogConfig::default()
        };
        assert!(bad.validate().is_err_and(|(k, _)| k == "access_sample"));
    }

    #[test]
    fn telemetry_is_off_by_default_and_checks_its_endpoint() {
        let t: TelemetryConfig = yaml_serde::from_str("{}").unwrap();
        assert!(t.otlp.is_none() && t.sample_ratio == 1.0 && t.service_name == "portico");
        let t: TelemetryConfig =
            yaml_serde::from_str("{ otlp: { endpoint: \"http://127.0.0.1:4317\" } }").unwrap();
        assert!(t.validate().is_ok());
        assert_eq!(t.otlp.as_ref().map(|o| o.queue), Some(8192));
        for (yaml, key) in [
            (
                "{ otlp: { endpoint: \"127.0.0.1:4317\" } }",
                "otlp.endpoint",
            ),
            ("{ otlp: { endpoint: \"grpc://x:1\" } }", "otlp.endpoint"),
            ("{ sample_ratio: 1.5 }", "sample_ratio"),
            (
                "{ otlp: { endpoint: \"http://x:1\", headers: { \"Bad Name\": v } } }",
                "otlp.headers.Bad Name",
            ),
        ] {
            let t: TelemetryConfig = yaml_serde::from_str(yaml).unwrap();
            assert!(t.validate().is_err_and(|(k, _)| k == key), "{yaml}");
        }
    }
}
