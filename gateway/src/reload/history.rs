//! The reload history: what each reload was triggered by, when, how long it took and how it
//! ended, the last [`History::CAPACITY`] of them (`GET /admin/reloads`).

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde::Serialize;

/// What asked for a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The first load, at startup.
    Startup,
    /// SIGHUP.
    Signal,
    /// These watched files changed.
    Files(Vec<PathBuf>),
    /// `POST /admin/reload`.
    Admin,
    /// The periodic re-fetch of reflection descriptors.
    ReflectionPoll,
    /// A program embedding the gateway.
    Api,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Startup => f.write_str("startup"),
            Trigger::Signal => f.write_str("SIGHUP"),
            Trigger::Files(paths) => {
                f.write_str("file change:")?;
                for (i, p) in paths.iter().enumerate() {
                    write!(f, "{}{}", if i == 0 { " " } else { ", " }, p.display())?;
                }
                Ok(())
            }
            Trigger::Admin => f.write_str("POST /admin/reload"),
            Trigger::ReflectionPoll => f.write_str("reflection poll"),
            Trigger::Api => f.write_str("api"),
        }
    }
}

/// One reload.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// When it started (RFC 3339, UTC).
    pub at: String,
    /// What asked for it.
    pub trigger: String,
    /// `ok` (swapped in), `unchanged` (nothing to swap) or `error` (the previous state kept
    /// serving).
    pub result: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Changed settings that take effect at the next restart.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs_restart: Vec<String>,
    /// How long building the new state took, in milliseconds.
    pub took_ms: u64,
}

impl Record {
    /// A record of a reload started at `at`.
    pub fn new(at: SystemTime, trigger: &Trigger, took: std::time::Duration) -> Self {
        Self {
            at: humantime::format_rfc3339_millis(at).to_string(),
            trigger: trigger.to_string(),
            result: "ok",
            error: None,
            needs_restart: Vec::new(),
            took_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// The last reloads, newest last.
#[derive(Debug, Default)]
pub struct History {
    records: Mutex<VecDeque<Record>>,
}

impl History {
    /// How many reloads are kept.
    pub const CAPACITY: usize = 50;

    /// Adds one, dropping the oldest past [`History::CAPACITY`].
    pub fn push(&self, record: Record) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() == Self::CAPACITY {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// Every kept reload, oldest first.
    pub fn records(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_records() {
        let h = History::default();
        for i in 0..History::CAPACITY + 3 {
            let mut r = Record::new(SystemTime::UNIX_EPOCH, &Trigger::Admin, Default::default());
            r.took_ms = i as u64;
            h.push(r);
        }
        let kept = h.records();
        assert_eq!(kept.len(), History::CAPACITY);
        assert_eq!(kept[0].took_ms, 3);
        assert_eq!(kept[0].at, "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn triggers_say_what_happened() {
        let t = Trigger::Files(vec!["a.yaml".into(), "protos".into()]);
        assert_eq!(t.to_string(), "file change: a.yaml, protos");
        assert_eq!(Trigger::Signal.to_string(), "SIGHUP");
    }
}
