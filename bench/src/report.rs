//! The printed report: the phase table (Markdown, so it can go into the README as it is),
//! memory figures, and the targets of the performance budget, met or missed.

use std::fmt::Write;
use std::time::Duration;

use crate::load::micros;
use crate::stack::mb;
use crate::stats::Summary;

/// One phase at one concurrency.
#[derive(Clone, Debug)]
pub struct Row {
    /// The phase, e.g. `2 REST GET /v1/users/1`.
    pub name: &'static str,
    /// Whether requests go through the BFF.
    pub through_bff: bool,
    /// Closed-loop workers.
    pub concurrency: usize,
    /// The BFF's CPU time during the window.
    pub bff_cpu: Duration,
    /// The backends' CPU time during the window.
    pub backend_cpu: Duration,
    /// The BFF's peak RSS during the window (since start if the reset was refused), bytes.
    pub bff_peak_rss: u64,
    /// Throughput and latencies.
    pub summary: Summary,
}

impl Row {
    fn per_request(&self, cpu: Duration) -> f64 {
        if self.summary.requests == 0 {
            return 0.0;
        }
        micros(cpu) / self.summary.requests as f64
    }

    /// One line printed as soon as the phase ends.
    pub fn progress_line(&self) -> String {
        format!(
            "{:<32} c={:<3} {:>9.0} req/s  p50 {:>9.0} us  p99 {:>9.0} us  errors {}",
            self.name,
            self.concurrency,
            self.summary.rps(),
            micros(self.summary.p50),
            micros(self.summary.p99),
            self.summary.errors
        )
    }
}

/// The BFF's memory outside the phases.
#[derive(Clone, Debug)]
pub struct Memory {
    /// RSS after start-up (a few requests served), bytes.
    pub idle_rss: u64,
    /// How many connections were held open.
    pub connections: usize,
    /// RSS with them open, bytes.
    pub connections_rss: u64,
    /// Peak RSS up to then, bytes.
    pub connections_hwm: u64,
}

/// Everything a run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// CPU cores of the machine.
    pub cores: usize,
    /// `/proc/loadavg` before the run.
    pub load_before: String,
    /// `/proc/loadavg` after it.
    pub load_after: String,
    /// Measuring window of each phase.
    pub duration: Duration,
    /// Backend latency of the fan-out phase.
    pub fanout_latency: Duration,
    /// Every phase at every concurrency.
    pub rows: Vec<Row>,
    /// Memory figures.
    pub memory: Memory,
}

/// A checked target.
struct Target {
    what: String,
    limit: String,
    got: String,
    met: bool,
}

impl Report {
    fn direct(&self, concurrency: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| !r.through_bff && r.concurrency == concurrency)
    }

    fn row(&self, prefix: &str, concurrency: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.name.starts_with(prefix) && r.concurrency == concurrency)
    }

    fn ratio(&self, row: &Row) -> Option<f64> {
        let d = self.direct(row.concurrency)?.summary.rps();
        (d > 0.0).then(|| row.summary.rps() / d)
    }

    fn added_p50(&self, row: &Row) -> Option<f64> {
        let d = self.direct(row.concurrency)?;
        Some(micros(row.summary.p50) - micros(d.summary.p50))
    }

    /// The report as Markdown text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} cores shared by the load client, the BFF and the backends; load average {} \
             before, {} after; {:?} per phase after a warm-up.\n",
            self.cores, self.load_before, self.load_after, self.duration
        );
        out.push_str(
            "| phase | c | req/s | p50 | p99 | BFF CPU/req | backends CPU/req | BFF peak RSS | vs gRPC | p50 added |\n\
             |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
        );
        for r in &self.rows {
            let via = |s: String| if r.through_bff { s } else { "-".into() };
            let ratio = match (r.through_bff, self.ratio(r)) {
                (true, Some(x)) if !r.name.starts_with('5') => format!("{x:.2}x"),
                _ => "-".into(),
            };
            let added = match (r.through_bff, self.added_p50(r)) {
                (true, Some(x)) if !r.name.starts_with('5') => format!("{x:.0} µs"),
                _ => "-".into(),
            };
            let errors = if r.summary.errors > 0 {
                format!(" ({} errors)", r.summary.errors)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {}{errors} | {} | {:.0} | {} | {} | {} | {:.0} µs | {} | {} | {} |",
                r.name,
                r.concurrency,
                r.summary.rps(),
                latency(r.summary.p50),
                latency(r.summary.p99),
                via(format!("{:.0} µs", r.per_request(r.bff_cpu))),
                r.per_request(r.backend_cpu),
                via(format!("{:.1} MB", mb(r.bff_peak_rss))),
                ratio,
                added,
            );
        }
        let m = &self.memory;
        let _ = writeln!(
            out,
            "\nBFF RSS: {:.1} MB idle; {:.1} MB with {} keep-alive HTTP/1.1 connections open \
             (each made one request; peak so far {:.1} MB). Phase 5: backends answer after {:?}.\n",
            mb(m.idle_rss),
            mb(m.connections_rss),
            m.connections,
            mb(m.connections_hwm),
            self.fanout_latency,
        );
        out.push_str("| target | limit | got | |\n|---|--:|--:|---|\n");
        for t in self.targets() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                t.what,
                t.limit,
                t.got,
                if t.met { "met" } else { "MISSED" }
            );
        }
        out
    }

    fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let mut ratio = |prefix: &str, what: &str, min: f64| {
            if let Some(r) = self.row(prefix, 32)
                && let Some(x) = self.ratio(r)
            {
                out.push(Target {
                    what: format!("{what} throughput vs direct gRPC, c=32"),
                    limit: format!(">= {min:.2}x"),
                    got: format!("{x:.2}x"),
                    met: x >= min,
                });
            }
        };
        ratio("2 ", "REST", 0.7);
        ratio("3 ", "flat GraphQL", 0.6);
        ratio("4 ", "nested GraphQL", 0.25);
        let mut added = |prefix: &str, what: &str, max: f64| {
            if let Some(r) = self.row(prefix, 1)
                && let Some(x) = self.added_p50(r)
            {
                out.push(Target {
                    what: format!("{what}: p50 added by the BFF, c=1"),
                    limit: format!("<= {max:.0} µs"),
                    got: format!("{x:.0} µs"),
                    met: x <= max,
                });
            }
        };
        added("2 ", "REST", 100.0);
        added("3 ", "flat GraphQL", 250.0);
        if let Some(r) = self.row("5 ", 1) {
            let ms = micros(r.summary.p50) / 1000.0;
            out.push(Target {
                what: "fan-out to 3 backends, p50, c=1".into(),
                limit: "<= 25 ms".into(),
                got: format!("{ms:.1} ms"),
                met: ms <= 25.0,
            });
        }
        let m = &self.memory;
        out.push(Target {
            what: "BFF RSS idle".into(),
            limit: "<= 20 MB".into(),
            got: format!("{:.1} MB", mb(m.idle_rss)),
            met: mb(m.idle_rss) <= 20.0,
        });
        out.push(Target {
            what: format!("BFF RSS at {} connections", m.connections),
            limit: "<= 64 MB".into(),
            got: format!("{:.1} MB", mb(m.connections_rss)),
            met: mb(m.connections_rss) <= 64.0,
        });
        out
    }
}

/// A latency in µs below 10 ms, else in ms.
fn latency(d: Duration) -> String {
    let us = micros(d);
    if us < 10_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn row(name: &'static str, via: bool, c: usize, rps: u64, p50_us: u64) -> Row {
        Row {
            name,
            through_bff: via,
            concurrency: c,
            bff_cpu: Duration::from_millis(100),
            backend_cpu: Duration::from_millis(100),
            bff_peak_rss: 10_000_000,
            summary: Summary {
                requests: rps,
                errors: 0,
                window: Duration::from_secs(1),
                p50: Duration::from_micros(p50_us),
                p99: Duration::from_micros(p50_us * 2),
            },
        }
    }

    #[test]
    fn ratios_and_targets() {
        let report = Report {
            cores: 2,
            load_before: "0.1".into(),
            load_after: "0.2".into(),
            duration: Duration::from_secs(1),
            fanout_latency: Duration::from_millis(20),
            rows: vec![
                row("1 gRPC", false, 1, 1000, 100),
                row("2 REST", true, 1, 800, 150),
                row("1 gRPC", false, 32, 10_000, 3000),
                row("2 REST", true, 32, 6_000, 5000),
            ],
            memory: Memory {
                idle_rss: 10_000_000,
                connections: 1000,
                connections_rss: 70_000_000,
                connections_hwm: 70_000_000,
            },
        };
        let text = report.render();
        assert!(text.contains("| 0.60x |"), "{text}");
        assert!(text.contains("| 50 µs |"), "{text}");
        let targets = report.targets();
        let rest = targets
            .iter()
            .find(|t| t.what.starts_with("REST throughput"))
            .unwrap();
        assert!(!rest.met);
        let p50 = targets
            .iter()
            .find(|t| t.what.starts_with("REST: p50"))
            .unwrap();
        assert!(p50.met);
        assert!(
            !targets
                .iter()
                .find(|t| t.what.contains("connections"))
                .unwrap()
                .met
        );
    }
}
