//! The command line of `demo-services`, in the library so that tests check the command lines
//! of the deployment files (docker-compose, Kubernetes) against it.

use std::time::Duration;

use clap::Parser;
use tonic::Code;

use crate::DemoService;

/// Demo gRPC backends for Portico (users, orders, catalog), with health and reflection.
#[derive(Debug, Parser)]
#[command(name = "demo-services", version, about)]
pub struct Args {
    /// Run only this backend: users, orders or catalog. Without it all three run, on ports
    /// 50051 (users), 50052 (orders) and 50053 (catalog).
    #[arg(long, value_parser = parse_service)]
    pub service: Option<DemoService>,

    /// Where to listen. With --service: a socket address (default 127.0.0.1:50051, :50052 or
    /// :50053 for users, orders, catalog). Without --service: a host IP only (default
    /// 127.0.0.1); the three backends use ports 50051-50053 on it.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Delay every call by this long, e.g. "20ms".
    #[arg(long, value_parser = humantime::parse_duration)]
    pub latency: Option<Duration>,

    /// Probability (0.0 to 1.0) that a call fails with the --fail-with code.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,

    /// Status code of injected failures, e.g. "unavailable", "internal", "deadline_exceeded"
    /// (or its number).
    #[arg(long, default_value = "unavailable", value_parser = parse_code)]
    pub fail_with: Code,
}

fn parse_service(s: &str) -> Result<DemoService, String> {
    s.parse().map_err(|e: crate::UnknownService| e.to_string())
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{s:?} is not a number between 0.0 and 1.0")),
    }
}

/// Parses a gRPC status code from its name (any case, `_` or `-`) or its number.
fn parse_code(s: &str) -> Result<Code, String> {
    if let Ok(n) = s.parse::<i32>() {
        return match Code::from_i32(n) {
            Code::Unknown if n != 2 => Err(format!("{n} is not a gRPC status code")),
            code => Ok(code),
        };
    }
    let wanted: String = s.to_ascii_lowercase().replace(['-', ' '], "_");
    (0..=16)
        .map(Code::from_i32)
        .find(|code| {
            let name = format!("{code:?}"); // CamelCase, e.g. DeadlineExceeded
            let snake: String = name
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let sep = (i > 0 && c.is_ascii_uppercase()).then_some('_');
                    sep.into_iter()
                        .chain(std::iter::once(c.to_ascii_lowercase()))
                })
                .collect();
            snake == wanted || name.eq_ignore_ascii_case(&wanted)
        })
        .ok_or_else(|| format!("{s:?} is not a gRPC status code name"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes() {
        assert_eq!(parse_code("unavailable").unwrap(), Code::Unavailable);
        assert_eq!(
            parse_code("DEADLINE_EXCEEDED").unwrap(),
            Code::DeadlineExceeded
        );
        assert_eq!(
            parse_code("resource-exhausted").unwrap(),
            Code::ResourceExhausted
        );
        assert_eq!(parse_code("Internal").unwrap(), Code::Internal);
        assert_eq!(parse_code("13").unwrap(), Code::Internal);
        assert_eq!(parse_code("2").unwrap(), Code::Unknown);
        assert!(parse_code("17").is_err());
        assert!(parse_code("nope").is_err());
    }
}
