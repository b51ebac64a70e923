//! A bounded fuzz of the host's request path over real sockets: random
//! bytes, and valid requests mutated at random, against the shared listener
//! and a twin's own port. The host must answer each with a well-formed HTTP
//! response or close the connection, and keep serving afterwards.
//!
//! The second half turns the fuzzer on the other side of the host: a twin
//! (the adversary fixture's `/respond` puppet) answers with random statuses
//! and random framing headers, and the client, on one kept-alive
//! connection, must still read exactly the answer to its next request.
//!
//! CI runs a few hundred cases; a long run is
//! `WT_FUZZ_CASES=200000 cargo xtask test -p wt-tests --test e2e fuzz::`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use wt_tests::{HostProcess, fixture_path, twin_path};

/// xorshift64*: deterministic, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const SEEDS: &[&str] = &[
    "GET /hello/echo?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "POST /hello/items HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\r\nname=a&metadata[k]=v&tags[]=x",
    "POST /hello/counter HTTP/1.1\r\nHost: hello.localhost\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nby=2\r\n0\r\n\r\n",
    "GET /_wt/twins HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "DELETE /hello/items/item_x%00%ff HTTP/1.1\r\nHost: localhost\r\n\r\n",
];

const FRAGMENTS: &[&str] = &[
    "%",
    "%zz",
    "%00",
    "[",
    "]]",
    "\r\n",
    "\r\n\r\n",
    "\0",
    "\u{fffd}",
    "Content-Length: 99999999999999999999\r\n",
    "Transfer-Encoding: chunked\r\n",
    "Host: .localhost\r\n",
    "Host: _wt.localhost\r\n",
    "/../../etc/passwd",
    "?a[b[c]=1",
    "GET",
    "PO ST",
    "HTTP/9.9",
    "ffffffff\r\n",
    " ",
    "\t",
    "../",
    "//",
    "Expect: 100-continue\r\n",
];

fn mutate(rng: &mut Rng) -> Vec<u8> {
    if rng.below(4) == 0 {
        let len = rng.below(512);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut bytes = rng.pick(SEEDS).as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(4) {
            0 => bytes
                .splice(at..at, rng.pick(FRAGMENTS).bytes().collect::<Vec<_>>())
                .for_each(drop),
            1 => bytes[at] = rng.next() as u8,
            2 => bytes.truncate(at),
            _ => {
                let end = (at + rng.below(16)).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
    bytes
}

/// Sends `payload`, half-closes, and reads what comes back (bounded).
fn exchange(addr: &str, payload: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("the host still accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(payload);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    let _ = stream.take(1 << 20).read_to_end(&mut reply);
    reply
}

/// `Ok` when `/_wt/health` answers 200; the reply otherwise.
fn healthy(addr: &str) -> Result<(), String> {
    let reply = exchange(
        addr,
        b"GET /_wt/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    if reply.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&reply[..reply.len().min(600)]).into_owned())
    }
}

fn cases_and_seed() -> (u64, u64) {
    let cases = std::env::var("WT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed = std::env::var("WT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_CAFE);
    (cases, seed)
}

#[test]
fn malformed_requests_never_take_the_host_down() {
    let host = HostProcess::start(
        &[("hello", twin_path("hello"))],
        &["--request-timeout", "2s"],
    );
    let shared = host.url.trim_start_matches("http://").to_owned();
    let own = host.twin("hello").own_url.clone().unwrap();
    let own = own.trim_start_matches("http://").to_owned();
    let (cases, seed) = cases_and_seed();
    let mut rng = Rng(seed);
    for case in 0..cases {
        let payload = mutate(&mut rng);
        let addr = if case % 3 == 0 { &own } else { &shared };
        let reply = exchange(addr, &payload);
        assert!(
            reply.is_empty() || reply.starts_with(b"HTTP/1."),
            "seed {seed:#x} case {case}: not HTTP: {:?} for {:?}",
            String::from_utf8_lossy(&reply[..reply.len().min(200)]),
            String::from_utf8_lossy(&payload)
        );
        if case % 50 == 0
            && let Err(reply) = healthy(&shared)
        {
            panic!(
                "seed {seed:#x} case {case}: unhealthy after {:?}: {reply:?}",
                String::from_utf8_lossy(&payload)
            );
        }
    }
    if let Err(reply) = healthy(&shared) {
        panic!("unhealthy at the end: {reply}");
    }
}

const FRAMING_NAMES: &[&str] = &[
    "content-length",
    "Content-Length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "keep-alive",
    "trailer",
    "te",
    "proxy-connection",
    "content-type",
    "x-other",
];

const FRAMING_VALUES: &[&str] = &[
    "0",
    "2",
    " 2",
    "2 ",
    "2, 2",
    "2,3",
    "-1",
    "+2",
    "0x2",
    "99999999999999999999",
    "chunked",
    "gzip, chunked",
    "chunked, identity",
    "close",
    "upgrade",
    "keep-alive",
    "websocket",
    "h2c",
    "",
];

/// A random response for the puppet: a status (1xx included), a handful
/// of framing headers, and a body that carries a forged response.
fn hostile_response(rng: &mut Rng) -> String {
    let status = match rng.below(4) {
        0 => 100 + rng.below(4) as u64,
        1 => [204, 205, 304][rng.below(3)],
        _ => 200 + rng.below(400) as u64,
    };
    let headers: Vec<[&str; 2]> = (0..rng.below(5))
        .map(|_| [rng.pick(FRAMING_NAMES), rng.pick(FRAMING_VALUES)])
        .collect();
    let forged = "HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"forged\":true}";
    let body = match rng.below(3) {
        0 => String::new(),
        1 => format!("{{}}{forged}"),
        _ => format!("0\r\n\r\n{forged}"),
    };
    serde_json::json!({ "status": status, "headers": headers, "body": body }).to_string()
}

/// One request on a kept-alive connection; the response's status, head and
/// body, read by the `content-length` the host must always send alone.
fn round_trip(
    reader: &mut BufReader<TcpStream>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String, Vec<u8>), String> {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    reader
        .get_mut()
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("closed after {head:?}"));
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let lower = head.to_ascii_lowercase();
    let lengths: Vec<&str> = lower
        .lines()
        .filter_map(|l| l.strip_prefix("content-length:"))
        .collect();
    let bodiless = matches!(status, 204 | 304);
    let names: Vec<&str> = lower
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name))
        .collect();
    if lengths.len() > 1
        || (lengths.is_empty() && !bodiless)
        || names.iter().any(|n| {
            matches!(
                *n,
                "transfer-encoding" | "upgrade" | "connection" | "trailer"
            )
        })
    {
        return Err(format!("framing not the host's own: {head:?}"));
    }
    let length: usize = match lengths.first() {
        Some(length) => length.trim().parse().map_err(|_| head.clone())?,
        None => 0,
    };
    if bodiless && length != 0 {
        return Err(format!("a {status} with a body: {head:?}"));
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("body: {e}"))?;
    Ok((status, head, body))
}

#[test]
fn hostile_response_framing_never_reaches_the_client() {
    let host = HostProcess::start(&[("adversary", fixture_path("adversary"))], &[]);
    let own = host.twin("adversary").own_url.clone().unwrap();
    let addr = own.trim_start_matches("http://").to_owned();
    let (cases, seed) = cases_and_seed();
    let mut rng = Rng(seed);
    let connect = || {
        let stream = TcpStream::connect(&addr).expect("the host still accepts connections");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        BufReader::new(stream)
    };
    let mut reader = connect();
    for case in 0..cases {
        let spec = hostile_response(&mut rng);
        let answer = round_trip(&mut reader, "POST", "/respond", &spec);
        let (status, head, _) =
            answer.unwrap_or_else(|e| panic!("seed {seed:#x} case {case}: {spec}: {e}"));
        let asked: u16 = serde_json::from_str::<serde_json::Value>(&spec).unwrap()["status"]
            .as_u64()
            .unwrap() as u16;
        let expected = if asked < 200 { 500 } else { asked };
        assert_eq!(
            status, expected,
            "seed {seed:#x} case {case}: {spec}: {head}"
        );
        let (status, _, body) = round_trip(&mut reader, "GET", "/ok", "")
            .unwrap_or_else(|e| panic!("seed {seed:#x} case {case}: after {spec}: {e}"));
        assert_eq!(
            (status, String::from_utf8_lossy(&body).as_ref()),
            (200, r#"{"ok":true}"#),
            "seed {seed:#x} case {case}: the answer after {spec}"
        );
        // Now and then a fresh connection, as clients make them.
        if rng.below(20) == 0 {
            reader = connect();
        }
    }
}
