//! A bounded fuzz of the host's request path over real sockets: random
//! bytes, and valid requests mutated at random, against the shared listener
//! and a twin's own port. The host must answer each with a well-formed HTTP
//! response or close the connection, and keep serving afterwards.
//!
//! CI runs a few hundred cases; a long run is
//! `WT_FUZZ_CASES=200000 cargo xtask test -p wt-tests --test fuzz`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use wt_tests::{HostProcess, twin_path};

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

#[test]
fn malformed_requests_never_take_the_host_down() {
    let host = HostProcess::start(
        &[("hello", twin_path("hello"))],
        &["--request-timeout", "2s"],
    );
    let shared = host.url.trim_start_matches("http://").to_owned();
    let own = host.twin("hello").own_url.clone().unwrap();
    let own = own.trim_start_matches("http://").to_owned();
    let cases: u64 = std::env::var("WT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("WT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_CAFE);
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
