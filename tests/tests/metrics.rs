//! Scenario: every node serves `/metrics` over HTTPS, trusted through the
//! cluster's CA alone, in a format `promtool check metrics` accepts. It
//! shows who leads, the Raft indexes as they move, the leader's view of its
//! peers, fsyncs and applies, and each decided submission by outcome and
//! rule. After a kill -9 of the leader the survivors report the new leader
//! and count the change, and count the leader as found dead (its port
//! refused them). Plain HTTP to the HTTPS port gets no answer.

use std::time::Duration;

use rekap_client::{Client, ClientOptions, rule_of};
use rekap_tests::http::{get, sample};
use rekap_tests::{CONTEST, Cluster, KABUPATEN, pki, start_with_a_result, wait_until, workload};

async fn scrape(cluster: &Cluster, id: u64) -> String {
    let (code, body) = get(&cluster.pki.ca_dir(), &cluster.http_addr(id), "/metrics")
        .await
        .unwrap_or_else(|e| panic!("scraping node {id}: {e:#}"));
    assert_eq!(code, 200, "node {id}'s /metrics: {body}");
    body
}

fn value(text: &str, name: &str) -> f64 {
    sample(text, name).unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

/// `promtool check metrics` (Debian's prometheus package; `tests/run.sh`
/// installs it).
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        panic!("promtool is missing: install Debian's prometheus package (tests/run.sh does)");
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_reports_leader_indexes_and_submissions() {
    let (mut cluster, tps) = start_with_a_result().await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let operator = cluster.client_as(pki::OPERATOR);

    // One more accepted, one refused by a rule, one retried.
    let ok = workload::submission(&tps[1], 1);
    let outcome = operator.submit(ok.clone()).await.expect("accepted");
    let index = outcome.log_index;
    operator.submit(ok).await.expect("a retry is a duplicate");
    let mut bad = workload::submission(&tps[2], 2);
    bad.sah = Some(bad.sah.unwrap_or(0) + 1);
    let refused = operator.submit(bad).await.expect_err("sah must add up");
    let rule = rule_of(&refused).expect("a refusal names its rule");
    // A plaintext client is refused before any handler.
    let plain = Client::with_options(
        [cluster.addr(leader)],
        ClientOptions {
            deadline: Duration::from_secs(3),
            ..ClientOptions::default()
        },
    );
    let e = plain
        .submit(workload::submission(&tps[3], 3))
        .await
        .expect_err("plaintext is refused");
    assert_eq!(rule_of(&e).as_deref(), Some("authenticated"), "{e:?}");

    let text = wait_until(
        "the leader's metrics show the submissions",
        Duration::from_secs(10),
        || async {
            let t = scrape(&cluster, leader).await;
            (sample(&t, "rekap_raft_applied_index").unwrap_or(0.0) >= index as f64).then_some(t)
        },
    )
    .await;
    promtool_accepts(&text);
    assert_eq!(value(&text, "rekap_server_is_leader"), 1.0);
    assert_eq!(
        value(
            &text,
            r#"rekap_submissions_total{outcome="accepted",rule=""}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"rekap_submissions_total{outcome="duplicate",rule=""}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"rekap_submissions_total{{outcome="rejected",rule="{rule}"}}"#)
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"rekap_authorization_refusals_total{code="unauthenticated",rule="authenticated"}"#
        ),
        1.0
    );
    // Every Submit call is timed, the refused one too (forwarded ones on
    // the leader as well as where they arrived).
    assert_eq!(
        value(
            &text,
            r#"rekap_grpc_request_duration_seconds_count{method="rekap.v1.Tally/Submit"}"#
        ),
        5.0
    );
    // The registry's one kabupaten: 100 TPS, 2 reported.
    let kab = format!(r#"{{contest="{CONTEST}",kabupaten="{KABUPATEN}"}}"#);
    assert_eq!(value(&text, &format!("rekap_tps_reported{kab}")), 2.0);
    assert_eq!(value(&text, &format!("rekap_tps_missing{kab}")), 98.0);
    assert!(value(&text, &format!("rekap_tps_janggal{kab}")) >= 0.0);
    let expiry = value(&text, "rekap_tls_certificate_expiry_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    // The test CA issues node certificates for 30 days.
    assert!(
        expiry > now + 29.0 * 86400.0 && expiry < now + 31.0 * 86400.0,
        "{expiry}"
    );
    assert!(value(&text, "rekap_disk_fsync_duration_seconds_count") > 0.0);
    assert!(value(&text, "rekap_apply_duration_seconds_count") > 0.0);
    let followers: Vec<u64> = cluster
        .running()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    for f in &followers {
        assert!(
            value(
                &text,
                &format!(r#"rekap_raft_replication_lag_entries{{peer="{f}"}}"#)
            ) >= 0.0
        );
    }

    // Followers apply the same index and know the leader; they lead nothing
    // and decide no submissions.
    for f in &followers {
        let t = wait_until(
            &format!("node {f} applies {index}"),
            Duration::from_secs(10),
            || async {
                let t = scrape(&cluster, *f).await;
                (sample(&t, "rekap_raft_applied_index").unwrap_or(0.0) >= index as f64).then_some(t)
            },
        )
        .await;
        assert_eq!(value(&t, "rekap_server_has_leader"), 1.0, "node {f}");
        assert_eq!(value(&t, "rekap_server_is_leader"), 0.0, "node {f}");
        assert!(value(&t, "rekap_raft_committed_index") >= index as f64);
        assert_eq!(
            sample(&t, r#"rekap_submissions_total{outcome="accepted",rule=""}"#),
            None
        );
    }

    // TLS only: a plaintext request gets no HTTP answer.
    let plain = tokio::time::timeout(Duration::from_secs(5), async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(cluster.http_addr(leader)).await?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map(|_| buf)
    })
    .await
    .expect("the node closes a plaintext connection");
    assert!(
        !plain.unwrap_or_default().starts_with(b"HTTP/"),
        "plain HTTP must not be answered"
    );

    // The leader dies: the survivors report a new one and count the change.
    // Its port refuses connections at once, so they need not wait out its
    // lease (`node::dead_leader`): they count it as found dead.
    let seen_before = value(
        &scrape(&cluster, followers[0]).await,
        "rekap_server_leader_changes_seen_total",
    );
    let dead = "rekap_server_dead_leaders_found_total";
    for f in &followers {
        assert_eq!(value(&scrape(&cluster, *f).await, dead), 0.0);
    }
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    for f in &followers {
        let t = wait_until(
            &format!("node {f} reports the new leader"),
            Duration::from_secs(10),
            || async {
                let t = scrape(&cluster, *f).await;
                let leads = value(&t, "rekap_server_is_leader") == 1.0;
                (value(&t, "rekap_server_has_leader") == 1.0 && leads == (*f == new_leader))
                    .then_some(t)
            },
        )
        .await;
        if *f == followers[0] {
            assert!(value(&t, "rekap_server_leader_changes_seen_total") > seen_before);
        }
    }
    let mut found = 0.0;
    for f in &followers {
        found += value(&scrape(&cluster, *f).await, dead);
    }
    assert!(
        found >= 1.0,
        "no survivor found the killed leader's port refusing connections"
    );
}
