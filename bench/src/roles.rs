//! The two child roles of the load benchmark, run by re-executing this binary: the demo
//! backends (`portico-load backend`) and the BFF (`portico-load bff`, exactly what
//! `bff-web --config FILE` runs). Both print their addresses on stdout and stop when their
//! stdin closes, so they never outlive the benchmark.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::io::AsyncReadExt;

/// Runs the demo backends (`services`, default all three) on 127.0.0.1, on `ports` (default
/// free ones), each call delayed by `latency`. Prints `SERVICE URL` per backend, then `ready`.
pub fn backend(
    latency: Option<Duration>,
    services: &[String],
    ports: &[u16],
) -> anyhow::Result<()> {
    let services: Vec<portico_demo::DemoService> = if services.is_empty() {
        portico_demo::DemoService::ALL.to_vec()
    } else {
        services
            .iter()
            .map(|s| s.parse().map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<anyhow::Result<_>>()?
    };
    backends_runtime()?.block_on(async {
        let mut running = Vec::new();
        for (i, service) in services.iter().enumerate() {
            let port = ports.get(i).copied().unwrap_or(0);
            let s = portico_demo::spawn(*service, ([127, 0, 0, 1], port).into())
                .await
                .with_context(|| {
                    format!("starting the {} backend on port {port}", service.as_str())
                })?;
            if let Some(latency) = latency {
                s.knobs.set_latency(latency);
            }
            println!("{} {}", s.service, s.endpoint());
            running.push(s);
        }
        println!("ready");
        wait_for_stdin_eof().await;
        drop(running);
        Ok(())
    })
}

/// Runs the BFF on `config` (the shared BFF command line, as `bff-web --config FILE
/// [--workers N]`), on the runtime `bff-web` would pick for it. Logs are text, or JSON with
/// `BFF_LOG_FORMAT=json`.
pub fn bff(config: PathBuf, workers: Option<usize>) -> anyhow::Result<()> {
    let mut argv: Vec<std::ffi::OsString> = vec![
        "bff-web".into(),
        "--config".into(),
        config.clone().into_os_string(),
    ];
    if let Some(n) = workers {
        argv.extend(["--workers".into(), n.to_string().into()]);
    }
    let args = portico::cli::Args::parse_from(argv);
    let loaded = portico::config::load(&config).ok();
    let rt = portico::cli::runtime(&args, loaded.as_ref()).context("building the tokio runtime")?;
    rt.block_on(async {
        let format = match std::env::var("BFF_LOG_FORMAT").as_deref() {
            Ok("json") => portico::cli::LogFormat::Json,
            _ => portico::cli::LogFormat::Text,
        };
        portico::cli::init_tracing(format);
        let profile = portico::cli::Profile {
            name: "web",
            default_config: config,
        };
        tokio::select! {
            r = portico::cli::run(args, profile, None) => r.context("the BFF failed"),
            () = wait_for_stdin_eof() => Ok(()),
        }
    })
}

/// The demo backends' runtime: multi-threaded, one worker per core.
fn backends_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")
}

async fn wait_for_stdin_eof() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Writes an ES256 JWKS (one key, id `bench`) to `out` and prints a token signed with it
/// (issuer `bench`, audience `portico`, subject `bench-user`, valid for a day); with `certs`,
/// writes a CA and a server certificate for 127.0.0.1 there (`bff-web certs`).
pub fn jwt_fixture(out: &std::path::Path, certs: Option<&std::path::Path>) -> anyhow::Result<()> {
    if let Some(dir) = certs {
        portico::cli::certs::generate(dir, &["127.0.0.1".into()], "bench-client")?;
    }
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let pair =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("generating a key")?;
    let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())?;
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
    jwk.common.key_id = Some("bench".into());
    std::fs::write(out, serde_json::to_vec(&JwkSet { keys: vec![jwk] })?)
        .with_context(|| format!("writing {}", out.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("bench".into());
    let claims = serde_json::json!({
        "iss": "bench", "aud": "portico", "sub": "bench-user",
        "iat": now, "exp": now + 86_400, "scope": "bench",
    });
    println!("{}", jsonwebtoken::encode(&header, &claims, &key)?);
    Ok(())
}
