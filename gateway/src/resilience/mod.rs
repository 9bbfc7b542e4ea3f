//! Placeholder for the resilience module (deadlines, breakers, bulkheads, retries).
