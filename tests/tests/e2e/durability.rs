//! `--state-dir`: state survives restarts, and a host killed with SIGKILL in
//! the middle of a write load comes back with every acknowledged write and
//! no half-applied request.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wt_tests::{HostProcess, json, twin_path};

fn start(state_dir: &std::path::Path) -> HostProcess {
    HostProcess::start(
        &[("hello", twin_path("hello"))],
        &["--state-dir", state_dir.to_str().unwrap()],
    )
}

/// Every item the list shows, following cursors to the end.
async fn all_items(client: &reqwest::Client, base: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{base}/items?limit=100");
        if let Some(id) = &after {
            url.push_str(&format!("&starting_after={id}"));
        }
        let page = json(&client.get(url).send().await.unwrap().text().await.unwrap());
        let data = page["data"].as_array().unwrap().clone();
        after = data.last().map(|i| i["id"].as_str().unwrap().to_owned());
        items.extend(data);
        if page["has_more"] != true {
            return items;
        }
    }
}

#[tokio::test]
async fn state_survives_a_clean_restart_and_reset_clears_it_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let host = start(dir.path());
    let base = host.twin("hello").own_url.clone().unwrap();
    for _ in 0..3 {
        client.post(format!("{base}/counter")).send().await.unwrap();
    }
    assert_eq!(host.terminate().code(), Some(0));
    assert!(dir.path().join("hello").join("state.redb").is_file());

    let host = start(dir.path());
    let base = host.twin("hello").own_url.clone().unwrap();
    let counter = client.get(format!("{base}/counter")).send().await.unwrap();
    assert_eq!(json(&counter.text().await.unwrap())["value"], 3);

    client
        .post(format!("{}/_wt/twins/hello/reset", host.url))
        .send()
        .await
        .unwrap();
    drop(host);
    let host = start(dir.path());
    let base = host.twin("hello").own_url.clone().unwrap();
    let counter = client.get(format!("{base}/counter")).send().await.unwrap();
    assert_eq!(json(&counter.text().await.unwrap())["value"], 0);
}

#[tokio::test]
async fn sigkill_mid_load_loses_no_acknowledged_write_and_applies_no_half_request() {
    let dir = tempfile::tempdir().unwrap();
    let host = start(dir.path());
    let base = host.twin("hello").own_url.clone().unwrap();
    let client = reqwest::Client::new();

    let acked_items = Arc::new(Mutex::new(BTreeSet::new()));
    let acked_counter = Arc::new(Mutex::new(0_i64));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let (client, base) = (client.clone(), base.clone());
        let (items, counter) = (acked_items.clone(), acked_counter.clone());
        writers.spawn(async move {
            for n in 0.. {
                // Items write three keys (object, order index, sequence);
                // the counter one. Both only count once acknowledged.
                let created = client
                    .post(format!("{base}/items"))
                    .form(&[("name", format!("w{writer}-{n}"))])
                    .send()
                    .await;
                let Ok(created) = created else { return };
                let Ok(text) = created.text().await else {
                    return;
                };
                let id = json(&text)["id"].as_str().unwrap().to_owned();
                items.lock().unwrap().insert(id);
                let Ok(bumped) = client.post(format!("{base}/counter")).send().await else {
                    return;
                };
                let Ok(text) = bumped.text().await else {
                    return;
                };
                let value = json(&text)["value"].as_i64().unwrap();
                let mut max = counter.lock().unwrap();
                *max = (*max).max(value);
            }
        });
    }
    // Let the load run, then crash the host in the middle of it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    host.kill_hard();
    while writers.join_next().await.is_some() {}
    let acked_items = acked_items.lock().unwrap().clone();
    let acked_counter = *acked_counter.lock().unwrap();
    assert!(
        acked_items.len() > 10,
        "the load ran: {} items",
        acked_items.len()
    );

    let host = start(dir.path());
    let base = host.twin("hello").own_url.clone().unwrap();
    let listed = all_items(&client, &base).await;
    let listed_ids: BTreeSet<String> = listed
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<_> = acked_items.difference(&listed_ids).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // No half request: every indexed item has its object, and at most one
    // unacknowledged request per writer got in before the kill.
    for id in &listed_ids {
        let item = client
            .get(format!("{base}/items/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            item.status(),
            200,
            "{id} is listed but its object is missing"
        );
    }
    assert!(listed_ids.len() <= acked_items.len() + 8);
    let counter = client.get(format!("{base}/counter")).send().await.unwrap();
    let counter = json(&counter.text().await.unwrap())["value"]
        .as_i64()
        .unwrap();
    assert!(
        counter >= acked_counter && counter <= acked_counter + 8,
        "counter {counter}, highest acknowledged {acked_counter}"
    );
    eprintln!(
        "crash test: {} items and counter {} acknowledged before SIGKILL; {} items and counter {} after restart",
        acked_items.len(),
        acked_counter,
        listed_ids.len(),
        counter
    );
}

#[tokio::test]
async fn concurrent_increments_on_durable_state_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let host = start(dir.path());
    let base = host.twin("hello").own_url.clone().unwrap();
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (client, url) = (client.clone(), format!("{base}/counter"));
        tasks.spawn(async move { client.post(url).send().await.unwrap().status() });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    drop(host);
    let host = start(dir.path());
    let base = host.twin("hello").own_url.clone().unwrap();
    let counter = client.get(format!("{base}/counter")).send().await.unwrap();
    assert_eq!(json(&counter.text().await.unwrap())["value"], 64);
}
