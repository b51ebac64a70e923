//! Warm instances (docs/decisions.md §15), through `wt-host run`: a twin's
//! instance serves its requests in turn, and is replaced by a fresh one after
//! a trap, a reset, a state import or a reload, or always with
//! `--warm-instances 0`. The adversary fixture's `GET /global` counts calls in
//! the instance's own memory, so it shows which requests one instance served.

use wt_tests::{HostProcess, fixture_path, send, twin_path};

fn start(extra: &[&str]) -> HostProcess {
    HostProcess::start(&[("adversary", fixture_path("adversary"))], extra)
}

async fn calls(client: &reqwest::Client, host: &HostProcess) -> u64 {
    let url = format!("{}/global", host.twin("adversary").prefixed_url);
    let (status, body) = send(client.get(url)).await;
    assert_eq!(status, 200, "{body}");
    body["calls"].as_u64().unwrap()
}

#[tokio::test]
async fn one_instance_serves_a_twins_requests_until_something_ends_it() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    let control = |path: &str| format!("{}/_wt/twins/adversary/{path}", host.url);

    let seen: Vec<u64> = [
        calls(&client, &host).await,
        calls(&client, &host).await,
        calls(&client, &host).await,
    ]
    .into();
    assert_eq!(seen, [1, 2, 3], "the same instance answered each time");

    let (status, _) =
        send(client.get(format!("{}/panic", host.twin("adversary").prefixed_url))).await;
    assert_eq!(status, 500);
    assert_eq!(calls(&client, &host).await, 1, "a trap ends the instance");
    assert_eq!(calls(&client, &host).await, 2);

    let (status, body) = send(client.post(control("reset"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(calls(&client, &host).await, 1, "a reset starts fresh");

    let (status, exported) = send(client.get(control("state"))).await;
    assert_eq!(status, 200);
    let (status, body) = send(client.put(control("state")).json(&exported)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(calls(&client, &host).await, 1, "an import starts fresh");

    let (status, body) = send(client.post(control("reload"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(calls(&client, &host).await, 1, "a reload starts fresh");
}

#[tokio::test]
async fn warm_instances_zero_gives_every_request_a_fresh_instance() {
    let host = start(&["--warm-instances", "0"]);
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(calls(&client, &host).await, 1);
    }
}

/// More twins than instance slots: parked instances give their slots up to
/// the twins that need one, and every request is answered.
#[tokio::test]
async fn more_twins_than_slots_all_answer() {
    let names = ["a", "b", "c", "d", "e"];
    let twins: Vec<(&str, std::path::PathBuf)> = names
        .iter()
        .map(|name| (*name, twin_path("hello")))
        .collect();
    let host = HostProcess::start(&twins, &["--max-instances", "2", "--warm-instances", "2"]);
    let client = reqwest::Client::new();
    let mut requests = tokio::task::JoinSet::new();
    for round in 0..20 {
        for ready in &host.twins {
            let request = client.post(format!("{}/counter", ready.prefixed_url));
            let name = ready.name.clone();
            requests.spawn(async move { (round, name, send(request).await) });
        }
    }
    let mut answered = 0;
    while let Some(joined) = requests.join_next().await {
        let (round, name, (status, body)) = joined.unwrap();
        assert_eq!(status, 200, "{name} in round {round}: {body}");
        answered += 1;
    }
    assert_eq!(answered, 20 * names.len());
    for ready in &host.twins {
        let (_, body) = send(client.get(format!("{}/counter", ready.prefixed_url))).await;
        assert_eq!(
            body["value"], 20,
            "{}: every increment committed",
            ready.name
        );
    }
}
