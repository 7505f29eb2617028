//! Scenario: the public dashboard in a real browser (headless Chromium from
//! Debian's `chromium` package, driven over the DevTools protocol). It
//! opens the national page of a follower, clicks down level by level to
//! one TPS, and checks the figures shown against `GetTotals` and
//! `GetTpsResult`, and each revision's time as Kotabaru reads it (WITA);
//! then it submits a result and sees the kabupaten page
//! change without a reload. Screenshots of every page are kept in
//! `<target>/tmp/dashboard/`.

use std::time::Duration;

use chromiumoxide::Page;
use rekap_client::proto as pb;
use rekap_tests::browser::{self, follow, open, text};
use rekap_tests::pki::{OPERATOR, VERIFIER};
use rekap_tests::{CONTEST, ClusterOptions, KABUPATEN, start_with_registry, wait_until, workload};

/// Digits only: "1.234" on the page is 1234.
fn number(text: &str) -> u64 {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number in {text:?}"))
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A time as an office in Kotabaru reads it: WITA is UTC+8, all year.
fn wita(ms: i64) -> String {
    const BULAN: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
    ];
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("a time")
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).expect("UTC+8"));
    format!(
        "{} {} {} {:02}.{:02}.{:02} WITA",
        t.day(),
        BULAN[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

async fn shot(page: &Page, name: &str) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    browser::shot(page, &dir, name).await;
}

/// Rows of the page's TPS list.
async fn rows(page: &Page) -> u64 {
    page.evaluate("document.querySelectorAll('table.tps tbody tr').length")
        .await
        .expect("rows")
        .into_value()
        .expect("a number")
}

async fn level(page: &Page) -> String {
    let l = text(page, "h1 .level").await;
    if l.is_empty() {
        let url = page.url().await.ok().flatten().unwrap_or_default();
        let html = page.content().await.unwrap_or_default();
        eprintln!("no heading on {url}:\n{html}");
    }
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_drills_down_to_a_tps_and_sees_live_updates() {
    let started = now_ms();
    let (cluster, tps, _) = start_with_registry(ClusterOptions::default(), 1).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = cluster
        .running()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let operator = cluster.client_as(OPERATOR);
    let mut last = 0;
    for (i, t) in tps.iter().take(30).enumerate() {
        last = operator
            .submit(workload::submission(t, i))
            .await
            .expect("accepted")
            .log_index;
    }
    // A verifier corrects one result: the TPS page must say who and why.
    let corrected = &tps[3];
    let current = operator
        .tps_result(corrected, CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("the result");
    let mut numbers = current.submission.clone().expect("numbers");
    numbers.votes[0].votes += 2;
    numbers.sah = numbers.sah.map(|s| s + 2);
    numbers.total = numbers.total.map(|t| t + 2);
    let fixed = cluster
        .client_as(VERIFIER)
        .correct(pb::CorrectRequest {
            request_id: "fix-1".into(),
            tps_id: corrected.clone(),
            contest_id: CONTEST.into(),
            replaces_revision: current.revision,
            reason: pb::CorrectionReason::EntryError as i32,
            note: "angka paslon 01 salah ketik, C.Hasil dicek ulang".into(),
            submission: Some(numbers),
            ..Default::default()
        })
        .await
        .expect("the correction");
    last = last.max(fixed.result.expect("result").log_index);
    cluster
        .wait_applied(&[follower], last, Duration::from_secs(10))
        .await;

    let chromium = browser::launch(1280, 1000).await;

    let base = format!("https://{}", cluster.http_addr(follower));
    let page = chromium
        .browser
        .new_page("about:blank")
        .await
        .expect("a tab");
    page.goto(format!("{base}/"))
        .await
        .expect("the national page");
    page.wait_for_navigation().await.expect("loads");
    assert_eq!(level(&page).await, "Nasional");
    let national = operator
        .totals("ID", CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("totals")
        .totals
        .expect("totals");
    assert_eq!(
        number(&text(&page, "section.card [data-f=sah]").await),
        national.sah
    );
    assert_eq!(
        number(&text(&page, "section.card [data-f=tps_reported]").await),
        30
    );
    for c in &national.candidates {
        let shown = text(
            &page,
            &format!("tr[data-c='{}'] [data-f=votes]", c.candidate_id),
        )
        .await;
        assert_eq!(number(&shown), c.votes, "paslon {}", c.candidate_id);
    }
    shot(&page, "1-nasional").await;

    // Down the tree: provinsi, kabupaten, kecamatan, desa.
    for (name, want) in [
        ("2-provinsi", "Provinsi"),
        ("3-kabupaten", "Kabupaten/Kota"),
        ("4-kecamatan", "Kecamatan"),
        ("5-desa", "Desa/Kelurahan"),
    ] {
        follow(&page, "table.children tbody tr:first-child a").await;
        assert_eq!(level(&page).await, want);
        shot(&page, name).await;
    }
    // The first desa holds the first ten TPS; the fourth has votes for both.
    let first = &tps[3];
    follow(&page, &format!("tr[data-tps='{first}'] a")).await;
    assert_eq!(level(&page).await, "TPS");
    let result = operator
        .tps_result(first, CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("the TPS result");
    let sub = result.submission.expect("numbers");
    assert_eq!(
        number(&text(&page, "#result [data-f=sah]").await),
        sub.sah.unwrap_or(0) as u64
    );
    for v in &sub.votes {
        let shown = text(
            &page,
            &format!("#result tr[data-c='{}'] [data-f=votes]", v.candidate_id),
        )
        .await;
        assert_eq!(number(&shown), v.votes as u64);
    }
    let history = text(&page, "table.history").await;
    assert!(
        history.contains(OPERATOR),
        "the history names who submitted: {history}"
    );
    assert!(history.contains(VERIFIER), "and who corrected: {history}");
    assert!(
        history.contains("Salah ketik") && history.contains("C.Hasil dicek ulang"),
        "and why: {history}"
    );
    // When, in Kotabaru's own time (WITA, UTC+8): the revision's time is
    // its command's, taken on the leader while this test ran.
    let (submitted, changed) = (result.submitted_at_ms, result.changed_at_ms);
    assert!(
        started <= submitted && submitted <= changed && changed <= now_ms(),
        "{started} {submitted} {changed}"
    );
    assert_eq!(
        text(&page, "#changed").await,
        format!("Diubah {} oleh {VERIFIER}", wita(changed))
    );
    assert!(
        history.contains(&wita(submitted)) && history.contains(&wita(changed)),
        "the history shows each revision's time in WITA ({} / {}): {history}",
        wita(submitted),
        wita(changed)
    );
    assert!(text(&page, "[data-f=at]").await.ends_with(" WITA"));
    shot(&page, "6-tps").await;

    // Live: the kabupaten page follows a new result without a reload.
    page.goto(format!("{base}/wilayah/{KABUPATEN}?pemilihan={CONTEST}"))
        .await
        .expect("the kabupaten page");
    page.wait_for_navigation().await.expect("loads");
    wait_until("the page's event stream to connect", Duration::from_secs(10), || async {
        let on: bool = page
            .evaluate("document.body.classList.contains('connected') && Number(document.body.dataset.views || 0) > 0")
            .await
            .ok()?
            .into_value()
            .ok()?;
        on.then_some(())
    })
    .await;
    page.evaluate("window.__notReloaded = 42")
        .await
        .expect("mark the page");
    operator
        .submit(workload::submission(&tps[30], 30))
        .await
        .expect("accepted");
    let now = operator
        .totals(KABUPATEN, CONTEST, pb::Consistency::Linearizable)
        .await
        .expect("totals")
        .totals
        .expect("totals");
    wait_until(
        "the page to show the new result",
        Duration::from_secs(10),
        || async {
            let shown = number(&text(&page, "section.card [data-f=tps_reported]").await);
            (shown == 31).then_some(())
        },
    )
    .await;
    assert_eq!(
        number(&text(&page, "section.card [data-f=sah]").await),
        now.sah
    );
    let marker: i64 = page
        .evaluate("window.__notReloaded ?? 0")
        .await
        .expect("evaluate")
        .into_value()
        .expect("a number");
    assert_eq!(marker, 42, "the page was reloaded");
    shot(&page, "7-kabupaten-live").await;

    // The lists of TPS still missing and of janggal results.
    let kab = format!("{base}/wilayah/{KABUPATEN}");
    open(&page, format!("{kab}/belum-masuk?pemilihan={CONTEST}")).await;
    let missing = operator
        .missing(pb::ListMissingTpsRequest {
            region_code: KABUPATEN.into(),
            contest_id: CONTEST.into(),
            page_size: 1,
            consistency: pb::Consistency::Linearizable as i32,
            ..Default::default()
        })
        .await
        .expect("missing");
    let listed: u64 = rows(&page).await;
    assert_eq!(listed, missing.total_missing.min(100));
    assert!(
        text(&page, "table.tps")
            .await
            .contains(&missing.tps[0].tps_id)
    );
    shot(&page, "8-belum-masuk").await;
    open(&page, format!("{kab}/janggal?pemilihan={CONTEST}")).await;
    assert!(text(&page, "h1").await.contains("TPS janggal"));
    let flagged = operator
        .janggal(pb::ListJanggalRequest {
            region_code: KABUPATEN.into(),
            contest_id: CONTEST.into(),
            page_size: 100,
            consistency: pb::Consistency::Linearizable as i32,
            ..Default::default()
        })
        .await
        .expect("janggal");
    let rows: u64 = rows(&page).await;
    assert_eq!(rows, flagged.total_janggal.min(100));
    let shown = text(&page, "table.tps").await;
    for item in &flagged.items {
        for rule in &item.result.as_ref().expect("result").janggal {
            assert!(
                shown.contains(rule.as_str()),
                "reason {rule} not shown: {shown}"
            );
        }
    }
    shot(&page, "9-janggal").await;
    chromium.close().await;

    // With the other nodes gone there is no leader; the pages still answer.
    let mut cluster = cluster;
    for id in cluster.running() {
        if id != follower {
            cluster.kill(id);
        }
    }
    let (code, body) = rekap_tests::http::get(
        &cluster.pki.ca_dir(),
        &cluster.http_addr(follower),
        "/wilayah/ID",
    )
    .await
    .expect("the national page without a leader");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Data per indeks log"), "{body}");
}
