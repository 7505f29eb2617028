//! Scenario: a real Prometheus (Debian's `prometheus` package) scrapes a
//! 3-node cluster over HTTPS with the shipped scrape config (targets and CA
//! path filled in) and the shipped alert rules loaded. Through its HTTP API
//! it sees every node with a leader and the submissions counted; after a
//! kill -9 of the leader it sees the node down, a new leader, and the new
//! leader's count. Also:
//! `promtool check config` accepts the shipped config, `promtool test rules`
//! passes the shipped alert tests, and every metric the shipped Grafana
//! dashboard queries is one Prometheus scraped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rekap_tests::http::get_plain;
use rekap_tests::{free_port, pki, start_with_a_result, wait_until, workload};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Runs promtool with `args` in `dir`; fails the test unless it succeeds.
fn promtool(dir: &Path, args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs: install Debian's prometheus package (tests/run.sh does)");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Prometheus server, killed when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An instant query's result: instance (or the whole labels) -> value.
async fn query(addr: &str, q: &str) -> Option<BTreeMap<String, f64>> {
    let path = format!(
        "/api/v1/query?query={}",
        utf8_percent_encode(q, NON_ALPHANUMERIC)
    );
    let (code, body) = get_plain(addr, &path).await.ok()?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let mut out = BTreeMap::new();
    for r in v["data"]["result"].as_array()? {
        let key = r["metric"]["instance"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| r["metric"].to_string());
        out.insert(key, r["value"][1].as_str()?.parse().ok()?);
    }
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_cluster_through_a_leader_kill() {
    let deploy = deploy();
    promtool(
        &deploy.join("prometheus"),
        &["check", "config", "prometheus.yml"],
    );
    promtool(
        &deploy.join("prometheus"),
        &["test", "rules", "alerts_test.yml"],
    );

    let (mut cluster, tps) = start_with_a_result().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped =
        std::fs::read_to_string(deploy.join("prometheus/prometheus.yml")).expect("shipped config");
    let targets: Vec<String> = cluster
        .running()
        .into_iter()
        .map(|id| format!("\"{}\"", cluster.http_addr(id)))
        .collect();
    let ca = cluster.pki.ca_dir().join(rekap_client::certs::CA_CERT);
    let alerts = deploy.join("prometheus/alerts.yml");
    let mut config = shipped.clone();
    for (from, to) in [
        ("scrape_interval: 15s", "scrape_interval: 1s".to_string()),
        (
            "evaluation_interval: 15s",
            "evaluation_interval: 1s".to_string(),
        ),
        ("/etc/prometheus/rekap-ca.crt", ca.display().to_string()),
        (
            r#"["rekap1:7100", "rekap2:7100", "rekap3:7100"]"#,
            format!("[{}]", targets.join(", ")),
        ),
        ("- alerts.yml", format!("- {}", alerts.display())),
    ] {
        assert!(config.contains(from), "the shipped config has {from:?}");
        config = config.replace(from, &to);
    }
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, &config).expect("write config");
    promtool(dir.path(), &["check", "config", "prometheus.yml"]);

    let web = format!("127.0.0.1:{}", free_port());
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).expect("log"))
            .spawn()
            .expect("prometheus runs: install Debian's prometheus package (tests/run.sh does)"),
    );

    let deadline = Duration::from_secs(60);
    let leaders = wait_until(
        "Prometheus sees every node with a leader",
        deadline,
        || async {
            let has = query(&web, "rekap_server_has_leader").await?;
            (has.len() == 3 && has.values().all(|v| *v == 1.0)).then_some(())?;
            let leads = query(&web, "rekap_server_is_leader == 1").await?;
            (leads.len() == 1).then_some(leads)
        },
    )
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let leader_http = cluster.http_addr(leader);
    assert!(
        leaders.contains_key(&leader_http),
        "{leaders:?} names {leader_http}"
    );

    cluster
        .client_as(pki::OPERATOR)
        .submit(workload::submission(&tps[1], 1))
        .await
        .expect("accepted");
    // And a plaintext caller, refused before any handler.
    let plain = rekap_client::Client::with_options(
        [cluster.addr(leader)],
        rekap_client::ClientOptions {
            deadline: Duration::from_secs(3),
            ..Default::default()
        },
    );
    plain
        .submit(workload::submission(&tps[2], 2))
        .await
        .expect_err("plaintext is refused");
    wait_until(
        "Prometheus counts the submissions and the refusal",
        deadline,
        || async {
            let n = query(&web, r#"sum(rekap_submissions_total{outcome="accepted"})"#).await?;
            (n.values().sum::<f64>() == 2.0).then_some(())?;
            let r = query(
                &web,
                r#"sum(rekap_authorization_refusals_total{rule="authenticated"})"#,
            )
            .await?;
            (r.values().sum::<f64>() == 1.0).then_some(())
        },
    )
    .await;

    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let new_http = cluster.http_addr(new_leader);
    wait_until(
        "Prometheus sees the node down and the new leader",
        deadline,
        || async {
            let up = query(&web, r#"up{job="rekap"}"#).await?;
            (up.get(&leader_http) == Some(&0.0)).then_some(())?;
            let leads = query(&web, "rekap_server_is_leader == 1").await?;
            (leads.keys().collect::<Vec<_>>() == vec![&new_http]).then_some(())?;
            let has = query(&web, "rekap_server_has_leader == 1").await?;
            (has.len() == 2).then_some(())
        },
    )
    .await;
    // The new leader decides the next submission and counts it.
    cluster
        .client_as(pki::OPERATOR)
        .submit(workload::submission(&tps[3], 3))
        .await
        .expect("accepted by the new leader");
    wait_until(
        "Prometheus counts the new leader's submission",
        deadline,
        || async {
            let n = query(&web, r#"rekap_submissions_total{outcome="accepted"}"#).await?;
            (n.get(&new_http).is_some_and(|v| *v >= 1.0)).then_some(())
        },
    )
    .await;

    // Every metric the shipped dashboard queries is one Prometheus holds.
    let (_, body) = get_plain(&web, "/api/v1/label/__name__/values")
        .await
        .expect("metric names");
    let known: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let known: Vec<&str> = known["data"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.join("grafana/rekap-dashboard.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut names = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            names.extend(
                expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with("rekap_"))
                    .map(str::to_string),
            );
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        assert!(
            known.contains(&name.as_str()),
            "the dashboard queries {name}, which no node exports"
        );
    }
}
