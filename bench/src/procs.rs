//! The child processes of a run (the demo backends and the BFF) and what `/proc` says about
//! them: CPU time, resident and peak memory.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// A child process started by the load benchmark; killed when dropped.
pub struct Proc {
    /// What it is, for messages.
    pub name: &'static str,
    child: Child,
    /// Its stdout, line by line (the handshake: addresses it listens on).
    lines: Option<Lines<BufReader<ChildStdout>>>,
}

impl Proc {
    /// Starts `exe args...` with `env` set, stdout piped, stdin piped (a role exits when
    /// its stdin closes), stderr inherited.
    pub fn start(
        name: &'static str,
        exe: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({})", exe.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        Ok(Self {
            name,
            child,
            lines: Some(BufReader::new(stdout).lines()),
        })
    }

    /// The process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .id()
            .with_context(|| format!("{} has exited", self.name))
    }

    /// Reads stdout lines until `pick` returns a value (within `within`).
    pub async fn wait_for<T>(
        &mut self,
        within: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> anyhow::Result<T> {
        let name = self.name;
        let lines = self
            .lines
            .as_mut()
            .with_context(|| format!("{name}: stdout already drained"))?;
        let read = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(v) = pick(&line) {
                    return Ok(v);
                }
            }
            bail!("{name} exited before it was ready")
        };
        tokio::time::timeout(within, read)
            .await
            .with_context(|| format!("{name} not ready after {within:?}"))?
    }

    /// Keeps reading (and dropping) stdout so the child never blocks on a full pipe.
    pub fn drain_stdout(&mut self) {
        if let Some(mut lines) = self.lines.take() {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
    }

    /// Kills the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// CPU and memory figures now.
    pub fn sample(&self) -> anyhow::Result<ProcSample> {
        ProcSample::read(self.pid()?)
    }

    /// Resets the peak RSS (`VmHWM`) so the next sample shows the peak since now. Best
    /// effort: returns false when the kernel refuses.
    pub fn reset_peak(&self) -> bool {
        self.pid()
            .ok()
            .map(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
            .unwrap_or(false)
    }
}

/// Starts the demo backends (this binary's `backend` role with `args` after it) and waits
/// until they are ready; returns the process and each service's URL (`users` -> `http://...`).
pub async fn start_backends(
    exe: &Path,
    args: &[String],
) -> anyhow::Result<(Proc, HashMap<String, String>)> {
    let mut all = vec!["backend".to_string()];
    all.extend_from_slice(args);
    let mut proc = Proc::start("demo backends", exe, &all, &[("RUST_LOG", "warn")])?;
    let mut endpoints = HashMap::new();
    proc.wait_for(Duration::from_secs(30), |line| {
        if line == "ready" {
            return Some(());
        }
        if let Some((svc, url)) = line.split_once(' ') {
            endpoints.insert(svc.to_string(), url.to_string());
        }
        None
    })
    .await?;
    proc.drain_stdout();
    Ok((proc, endpoints))
}

/// One reading of `/proc/<pid>/stat` and `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// Resident set size now, bytes.
    pub rss: u64,
    /// Peak resident set size (since start or the last reset), bytes.
    pub hwm: u64,
}

impl ProcSample {
    /// Reads the figures of process `pid`.
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        parse(&stat, &status).with_context(|| format!("parsing /proc/{pid}/stat and status"))
    }
}

/// Parses the `stat` line (utime and stime, fields 14 and 15) and the `VmRSS`/`VmHWM` lines
/// of `status`.
pub fn parse(stat: &str, status: &str) -> Option<ProcSample> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so field N is at index N - 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    let ticks = utime + stime;
    let cpu = Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND);
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.get(key.len()..)?
            .split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
    };
    Some(ProcSample {
        cpu,
        rss: kib("VmRSS:")? * 1024,
        hwm: kib("VmHWM:")? * 1024,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (bff web) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 \
                    5 0 99 123456 789 18446744073709551615";
        let status = "Name:\tbff\nVmPeak:\t  99999 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        let s = parse(stat, status).unwrap();
        assert_eq!(s.cpu, Duration::from_millis(3250));
        assert_eq!(s.rss, 10 * 1024 * 1024);
        assert_eq!(s.hwm, 20 * 1024 * 1024);
        assert!(parse("garbage", status).is_none());
    }

    #[test]
    fn reads_own_process() {
        let s = ProcSample::read(std::process::id()).unwrap();
        assert!(s.rss > 0 && s.hwm >= s.rss);
    }
}
