//! Resilience of the upstream stack: the pieces every call to a backend goes through.
//!
//! In call order ([`crate::upstream::Upstream`] wires them): the [`breaker`] fails fast while a
//! backend is sick; the [`bulkhead`] caps the calls in flight per backend; the [`balance`]r
//! picks one of the backend's [`endpoints`] (kept fresh by DNS refresh, [`health`] checks and
//! outlier ejection); a failed attempt may be retried per the [`retry`] policy and [`budget`];
//! a call that still fails may be answered from the [`fallback`]s. Deadlines stay what they
//! were: one budget per client request, which retries never extend.
//!
//! Everything on the hot path is atomics or a short mutex section, never held across an await.

pub mod balance;
pub mod breaker;
pub mod budget;
pub mod bulkhead;
pub mod endpoints;
pub mod fallback;
pub mod health;
pub mod retry;
pub mod window;

pub use breaker::{Breaker, BreakerPermit, BreakerState, Rejected};
pub use budget::RetryBudget;
pub use bulkhead::{Bulkhead, BulkheadPermit, BulkheadRejection};
pub use endpoints::{Endpoint, EndpointSet, InFlight};
pub use fallback::Fallbacks;
pub use retry::{Failure, RetryPolicy};
