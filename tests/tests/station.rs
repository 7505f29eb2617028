//! Scenario: the operator's station (`rekap-station`), a real process with
//! its SQLite outbox, filled in by headless Chromium with the keyboard, in
//! front of a cluster of real nodes that is down, then back.
//!
//! - Offline from the start: 20 TPS typed while every node is down, the
//!   station killed with SIGKILL after the last "tersimpan" and started
//!   again (all 20 still tersimpan), then the cluster started: each result
//!   arrives exactly once, by this operator, and the open page turns them
//!   to terkirim without a reload.
//! - At the door: an arithmetic error is shown as it is typed, refused
//!   when saved, and never queued; a konflik shows both results.

use std::time::{Duration, Instant};

use chromiumoxide::Page;
use rekap_client::proto as pb;
use rekap_tests::browser::{self, eval, loaded, open, text, try_text};
use rekap_tests::pki::OPERATOR;
use rekap_tests::station::{Station, fields_of};
use rekap_tests::{CONTEST, ClusterOptions, start_with_registry, wait_until, workload};

fn shots() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("station")
}

/// Types a TPS's numbers into its open form the way an operator does:
/// the first field has the focus, Tab moves on, Enter saves.
async fn type_form(page: &Page, values: &[(String, String)]) {
    let first = type_fields(page, values).await;
    first.press_key("Enter").await.expect("enter saves");
}

/// Types the numbers, Tab between them, and leaves the form unsaved;
/// returns the element the keys go through.
async fn type_fields(page: &Page, values: &[(String, String)]) -> chromiumoxide::Element {
    let first = page
        .find_element("form#chasil input[name^='v.']")
        .await
        .expect("the first paslon field");
    first.click().await.expect("focus the first field");
    for (i, (_, v)) in values.iter().enumerate() {
        first.type_str(v).await.expect("type");
        if i + 1 < values.len() {
            first.press_key("Tab").await.expect("tab");
        }
    }
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_tps_typed_offline_survive_a_kill_and_arrive_exactly_once() {
    let (mut cluster, tps, endpoints) = start_with_registry(ClusterOptions::default(), 1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = cluster.pki.user_dir(OPERATOR);
    let mut station = Station::start(
        &certs,
        &endpoints.join(","),
        &dir.path().join("outbox.sqlite"),
    )
    .await;
    // Online once: the station keeps its slice of the registry.
    station.wait_slice(tps.len()).await;

    for id in cluster.running() {
        cluster.kill(id);
    }
    station.restart().await;
    let chromium = browser::launch(1100, 1200).await;
    let page = chromium
        .browser
        .new_page("about:blank")
        .await
        .expect("a tab");
    open(&page, station.url("/")).await;
    assert_eq!(
        eval::<u64>(&page, "document.querySelectorAll('[data-key]').length").await,
        tps.len() as u64,
        "the TPS list comes from the cache with every node down"
    );
    assert_eq!(text(&page, "#link").await, "Tidak tersambung");

    let typed: Vec<pb::Submission> = tps
        .iter()
        .take(20)
        .enumerate()
        .map(|(i, t)| workload::submission(t, i + 1))
        .collect();
    let started = Instant::now();
    for (i, s) in typed.iter().enumerate() {
        let url = station.url(&format!("/tps/{}?pemilihan={CONTEST}", s.tps_id));
        open(&page, url.clone()).await;
        type_form(&page, &fields_of(s)).await;
        loaded(&page, &format!("{url}&tersimpan=1")).await;
        assert_eq!(text(&page, "#state").await, "tersimpan", "TPS {}", s.tps_id);
        if i == 0 {
            browser::shot(&page, &shots(), "1-tersimpan-offline").await;
        }
    }
    let typing = started.elapsed();
    // The last "tersimpan" was on screen: kill -9, and start again.
    station.kill9();
    station.restart().await;
    assert_eq!(
        station.count("tersimpan").await,
        20,
        "every entry survived SIGKILL"
    );
    open(&page, station.url("/")).await;
    assert_eq!(
        eval::<u64>(
            &page,
            "document.querySelectorAll('.state.tersimpan').length"
        )
        .await,
        20
    );
    browser::shot(&page, &shots(), "2-daftar-tersimpan").await;
    // The page stays open: it must turn without a reload.
    let _: bool = eval(&page, "(window.__stayed = true)").await;

    let back = Instant::now();
    for id in cluster.nodes.keys().copied().collect::<Vec<_>>() {
        cluster.restart(id);
    }
    wait_until(
        "20 terkirim on the open page",
        Duration::from_secs(60),
        || async {
            let n: u64 = page
                .evaluate("document.querySelectorAll('.state.terkirim').length")
                .await
                .ok()?
                .into_value()
                .ok()?;
            (n == 20).then_some(())
        },
    )
    .await;
    let delivered = back.elapsed();
    assert!(
        eval::<bool>(&page, "window.__stayed === true").await,
        "no reload"
    );
    browser::shot(&page, &shots(), "3-daftar-terkirim").await;

    let operator = cluster.client_as(OPERATOR);
    // The operator's receipt, from a terminal: one CSV row per entry.
    let csv = station.outbox_export();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 21, "a header and 20 rows:\n{csv}");
    assert!(lines[0].starts_with("seq,operator,submission_id,tps_id"));
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(",kpps,st:") && l.contains(",terkirim,"))
    );
    let outbox = station.outbox_list();
    let rows = outbox.as_array().expect("outbox rows");
    assert_eq!(rows.len(), 20, "one entry per TPS");
    let mut want = (0i64, 0i64);
    for s in &typed {
        let history = operator
            .history(&s.tps_id, CONTEST, pb::Consistency::Linearizable)
            .await
            .expect("history");
        assert_eq!(history.len(), 1, "TPS {}: counted once", s.tps_id);
        let rev = &history[0];
        assert_eq!(rev.author.as_ref().map(|a| a.name.as_str()), Some(OPERATOR));
        let stored = rev.submission.as_ref().expect("numbers");
        assert_eq!(
            (stored.sah, stored.total),
            (s.sah, s.total),
            "TPS {}",
            s.tps_id
        );
        let row = rows
            .iter()
            .find(|r| r["tps_id"] == s.tps_id.as_str())
            .expect("its outbox row");
        assert_eq!(row["state"], "terkirim");
        assert_eq!(
            row["log_index"], rev.log_index,
            "the receipt is the revision's log index"
        );
        assert_eq!(row["submission_id"], stored.submission_id.as_str());
        want.0 += s.sah.unwrap_or(0);
        want.1 += s.total.unwrap_or(0);
    }
    let totals = operator
        .totals("ID", CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("totals")
        .totals
        .expect("totals");
    assert_eq!(
        (totals.sah as i64, totals.total as i64, totals.tps_reported),
        (want.0, want.1, 20)
    );
    eprintln!(
        "station offline: 20 TPS typed in {:.1} s; all 20 terkirim {:.1} s after the nodes were started again",
        typing.as_secs_f64(),
        delivered.as_secs_f64()
    );
    chromium.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arithmetic_errors_stop_at_the_form_and_a_konflik_shows_both_results() {
    let (cluster, tps, endpoints) = start_with_registry(ClusterOptions::default(), 1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = cluster.pki.user_dir(OPERATOR);
    let mut station = Station::start(
        &certs,
        &endpoints.join(","),
        &dir.path().join("outbox.sqlite"),
    )
    .await;
    wait_until("the station online", Duration::from_secs(20), || async {
        (station.status().await["link"]["online"] == true).then_some(())
    })
    .await;
    let chromium = browser::launch(1100, 1200).await;
    let page = chromium
        .browser
        .new_page("about:blank")
        .await
        .expect("a tab");

    // Typed: paslon 01 + 02 is not sah. The form says so before saving.
    let mut wrong = workload::submission(&tps[0], 5);
    wrong.sah = wrong.sah.map(|s| s + 3);
    wrong.total = wrong.total.map(|t| t + 3);
    let url = station.url(&format!("/tps/{}?pemilihan={CONTEST}", tps[0]));
    open(&page, url.clone()).await;
    let fields = fields_of(&wrong);
    let first = type_fields(&page, &fields).await;
    let live = wait_until("the live check", Duration::from_secs(10), || async {
        let t = try_text(&page, "#periksa p.error").await?;
        t.contains("sum_candidates_eq_sah").then_some(t)
    })
    .await;
    assert!(
        live.contains("Jumlah suara seluruh paslon harus sama dengan suara sah"),
        "{live}"
    );
    let marked: u64 = eval(
        &page,
        "document.querySelectorAll('input[aria-invalid=true]').length",
    )
    .await;
    assert_eq!(marked, 3, "both paslon and sah are marked");
    browser::shot(&page, &shots(), "4-salah-hitung").await;
    first.press_key("Enter").await.expect("try to save");
    wait_until("the refusal", Duration::from_secs(10), || async {
        let notice = try_text(&page, "#notice").await?;
        notice.contains("Belum disimpan").then_some(())
    })
    .await;
    assert_eq!(text(&page, "#state").await, "belum diisi");
    // The same straight to the station: 422, naming the rule, nothing queued.
    let (code, body) = station.post(&tps[0], CONTEST, &fields).await;
    assert_eq!(code, 422);
    assert!(body.contains("sum_candidates_eq_sah"));
    let mut bad_total = workload::submission(&tps[0], 6);
    bad_total.total = bad_total.total.map(|t| t + 1);
    let (code, body) = station.post(&tps[0], CONTEST, &fields_of(&bad_total)).await;
    assert_eq!(code, 422);
    assert!(body.contains("sah_plus_tidak_sah_eq_total"));
    assert_eq!(
        station.outbox_list().as_array().map(Vec::len),
        Some(0),
        "nothing queued"
    );

    // Someone else's result is already in for tps[1]; this operator's
    // numbers differ. The station shows konflik with both.
    let theirs = workload::submission(&tps[1], 7);
    cluster
        .client_as(OPERATOR)
        .submit(theirs.clone())
        .await
        .expect("the first result");
    let mine = workload::submission(&tps[1], 8);
    let (code, _) = station.post(&tps[1], CONTEST, &fields_of(&mine)).await;
    assert_eq!(code, 303, "saved");
    wait_until("konflik", Duration::from_secs(20), || async {
        (station.count("konflik").await == 1).then_some(())
    })
    .await;
    open(
        &page,
        station.url(&format!("/tps/{}?pemilihan={CONTEST}", tps[1])),
    )
    .await;
    assert_eq!(text(&page, "#state").await, "konflik");
    assert!(text(&page, "#konflik").await.contains("verifikator"));
    let shown = |side: &'static str, field: &'static str| {
        let page = &page;
        async move { text(page, &format!("#konflik td[data-{side}='{field}']")).await }
    };
    assert_eq!(shown("mine", "sah").await, mine.sah.unwrap().to_string());
    assert_eq!(
        shown("theirs", "sah").await,
        theirs.sah.unwrap().to_string()
    );
    assert_eq!(shown("mine", "v.01").await, mine.votes[0].votes.to_string());
    assert_eq!(
        shown("theirs", "v.01").await,
        theirs.votes[0].votes.to_string()
    );
    browser::shot(&page, &shots(), "5-konflik").await;
    let stored = cluster
        .client_as(OPERATOR)
        .history(&tps[1], CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("history");
    assert_eq!(stored.len(), 1, "the konflik changed nothing");

    // A result entered elsewhere before the station read its slice is
    // shown as tercatat, and the form takes no second one.
    cluster
        .client_as(OPERATOR)
        .submit(workload::submission(&tps[2], 9))
        .await
        .expect("a result from elsewhere");
    station.restart().await;
    let path = format!("/tps/{}?pemilihan={CONTEST}", tps[2]);
    wait_until("tercatat", Duration::from_secs(20), || async {
        let (_, page) = rekap_tests::http::get_plain(&station.addr, &path)
            .await
            .ok()?;
        page.contains("sudah tercatat di Rekap").then_some(())
    })
    .await;
    let (code, body) = station
        .post(
            &tps[2],
            CONTEST,
            &fields_of(&workload::submission(&tps[2], 10)),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(station.count("tersimpan").await, 0, "nothing queued");
    chromium.close().await;
}

#[test]
fn a_corrupt_or_foreign_outbox_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = rekap_tests::pki::Pki::new(dir.path());
    let certs = pki.user_dir(OPERATOR);
    // The station must stop, naming the file and the fault, and leave
    // every byte of it as it was.
    let refused = |outbox: &std::path::Path, says: &[&str]| {
        let before = std::fs::read(outbox).expect("read");
        let out = std::process::Command::new(rekap_tests::station::station_binary())
            .arg("--certs-dir")
            .arg(&certs)
            .args(["--listen", "127.0.0.1:0", "--outbox"])
            .arg(outbox)
            .output()
            .expect("run rekap-station");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(says.iter().all(|w| err.contains(w)), "{err}");
        assert_eq!(
            std::fs::read(outbox).expect("read"),
            before,
            "left as it was"
        );
    };
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, b"TPS 001: 120 / 95 / 3\n".repeat(300)).expect("write");
    refused(&junk, &["rusak", "junk.sqlite"]);
    let theirs = dir.path().join("theirs.sqlite");
    rekap_client::outbox::Outbox::open(&theirs, "pps-lain").expect("another operator's outbox");
    refused(&theirs, &["bukan outbox Rekap milik kpps", "pps-lain"]);
}
