//! The bare hyper baseline for `bench/load.sh`: the same JSON `hello`'s
//! `GET /` answers, from a handler that does nothing else. The gap between
//! this and `wt-host` serving `hello` is what wt's layers cost over HTTP.
//!
//! Usage: `baseline-hyper 127.0.0.1:4200 [SPIN_MICROS]`
//!
//! `SPIN_MICROS` makes each request also burn that much CPU before it
//! answers: a calibration of what a handler of a given cost can reach on
//! this machine, whatever runs inside it (bench/README.md).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const BODY: &[u8] = br#"{"twin":"hello","version":"0.1.0"}"#;

async fn answer(
    _request: hyper::Request<hyper::body::Incoming>,
    spin: Duration,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    while started.elapsed() < spin {
        std::hint::spin_loop();
    }
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(BODY)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4200".into())
        .parse()
        .map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("address: {e}"))
        })?;
    let spin = Duration::from_micros(
        std::env::args()
            .nth(2)
            .map_or(Ok(0), |s| s.parse())
            .map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("SPIN_MICROS: {e}"),
                )
            })?,
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("baseline listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(
                    TokioIo::new(stream),
                    service_fn(move |request| answer(request, spin)),
                )
                .await;
        });
    }
}
