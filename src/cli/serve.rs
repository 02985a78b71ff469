//! `serve`, `openapi` and `healthcheck`.

use std::time::Duration;

use crate::config::ServeConfig;
use crate::startup::{App, init_telemetry, shutdown_signal};

/// Runs the service until SIGINT/SIGTERM.
pub fn serve(cfg: ServeConfig) -> anyhow::Result<()> {
    init_telemetry(cfg.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = App::build(cfg).await?;
        app.run(shutdown_signal()).await
    })
}

/// Prints the OpenAPI document.
pub fn openapi() -> anyhow::Result<()> {
    print!("{}", crate::http::openapi::spec_json());
    Ok(())
}

/// GETs `/healthz` on the configured port (for container HEALTHCHECKs without curl).
pub fn healthcheck(url: Option<String>) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let url = url.unwrap_or_else(|| {
        let bind = std::env::var("WG_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into());
        let port = bind.rsplit(':').next().unwrap_or("8080").to_string();
        format!("http://127.0.0.1:{port}/healthz")
    });
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs are supported"))?;
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, p)| (h, p));
    let addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(host)?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {host}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    write!(
        s,
        "GET /{} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        path.trim_start_matches('/')
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp.split_whitespace().nth(1).unwrap_or("");
    anyhow::ensure!(status == "200", "{url} answered {status}");
    Ok(())
}
