//! Scenario: the dashboard's HTTP caching on real nodes. Every page and
//! JSON answer carries a weak ETag and the configured Cache-Control; a
//! client holding the current tag gets 304 and nothing is rendered; the
//! kept page comes in brotli and gzip as asked; a crowd reading one page
//! costs no render while nothing changes; a new result changes the tag of
//! the pages above it within a tick, and re-renders no other kecamatan's
//! page.

use std::io::Read;
use std::time::Duration;

use rekap_tests::http::{Answer, dashboard_answers, dashboard_checks, get_with};
use rekap_tests::pki::OPERATOR;
use rekap_tests::{CONTEST, ClusterOptions, KABUPATEN, start_with_registry, wait_until, workload};

fn etag(a: &Answer) -> String {
    a.header("etag").expect("an ETag").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_validators_and_a_crowd_costs_one_render_per_change() {
    let mut opts = ClusterOptions::default();
    opts.node_flags.insert(
        1,
        vec![
            ("--http-max-age".into(), "3".into()),
            ("--http-stale-while-revalidate".into(), "7".into()),
        ],
    );
    let (cluster, tps, _) = start_with_registry(opts, 2).await;
    let ca = cluster.pki.ca_dir();
    cluster.settle(Duration::from_secs(10)).await;
    let (n1, n2) = (cluster.http_addr(1), cluster.http_addr(2));
    let page = format!("/wilayah/{KABUPATEN}?pemilihan={CONTEST}");
    let api = format!("/api/v1/wilayah/{KABUPATEN}?pemilihan={CONTEST}");

    // Validators and the configured policy (node 2 has the defaults).
    let first = get_with(&ca, &n1, &page, &[]).await.expect("the page");
    assert_eq!(first.status, 200);
    let tag = etag(&first);
    assert!(tag.starts_with("W/\""), "a weak tag: {tag}");
    assert_eq!(
        first.header("cache-control"),
        Some("public, max-age=3, s-maxage=2, stale-while-revalidate=7")
    );
    assert_eq!(first.header("vary"), Some("accept-encoding"));
    let other = get_with(&ca, &n2, &page, &[]).await.expect("node 2's page");
    assert_eq!(
        other.header("cache-control"),
        Some("public, max-age=2, s-maxage=1, stale-while-revalidate=10")
    );
    let plain = String::from_utf8(first.body.to_vec()).expect("HTML");
    assert!(plain.contains("Perolehan suara"), "{plain}");

    // The kept page in the codings asked for, each the same page.
    let br = get_with(&ca, &n1, &page, &[("accept-encoding", "gzip, br")])
        .await
        .expect("brotli");
    assert_eq!(br.header("content-encoding"), Some("br"));
    let mut unbr = Vec::new();
    brotli::BrotliDecompress(&mut &br.body[..], &mut unbr).expect("brotli body");
    let gz = get_with(&ca, &n1, &page, &[("accept-encoding", "gzip")])
        .await
        .expect("gzip");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut ungz = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_end(&mut ungz)
        .expect("gzip body");
    assert_eq!(unbr, first.body.to_vec(), "brotli is the same page");
    assert_eq!(ungz, first.body.to_vec(), "gzip is the same page");
    assert!(
        br.body.len() * 2 < first.body.len(),
        "brotli compresses: {} of {}",
        br.body.len(),
        first.body.len()
    );

    // A client holding the tag: 304, no body, nothing rendered. A crowd
    // with nothing changing: no render at all.
    let rendered = dashboard_answers(&ca, &n1, "rendered").await;
    let not_modified = dashboard_answers(&ca, &n1, "not_modified").await;
    for _ in 0..40 {
        let a = get_with(&ca, &n1, &page, &[("if-none-match", tag.as_str())])
            .await
            .expect("conditional");
        assert_eq!(a.status, 304);
        assert!(a.body.is_empty());
        assert_eq!(etag(&a), tag);
        let a = get_with(&ca, &n1, &page, &[]).await.expect("plain");
        assert_eq!((a.status, etag(&a)), (200, tag.clone()));
    }
    assert_eq!(
        dashboard_answers(&ca, &n1, "rendered").await,
        rendered,
        "no render while nothing changed"
    );
    assert_eq!(
        dashboard_answers(&ca, &n1, "not_modified").await,
        not_modified + 40.0
    );

    // The JSON answer too, and the kecamatan pages below.
    let j = get_with(&ca, &n1, &api, &[]).await.expect("JSON");
    assert_eq!(j.status, 200);
    let jtag = etag(&j);
    let json: serde_json::Value = serde_json::from_slice(&j.body).expect("JSON");
    let kec: Vec<String> = json["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c["code"].as_str().expect("code").to_string())
        .collect();
    assert_eq!(kec.len(), 2);
    let a = get_with(&ca, &n1, &api, &[("if-none-match", jtag.as_str())])
        .await
        .expect("conditional JSON");
    assert_eq!(a.status, 304);
    let kec_page = |code: &str| format!("/wilayah/{code}?pemilihan={CONTEST}");
    let mut kec_tags = Vec::new();
    for k in &kec {
        kec_tags.push(etag(
            &get_with(&ca, &n1, &kec_page(k), &[])
                .await
                .expect("kecamatan"),
        ));
    }

    // One new result: within a tick or so the tags above it move, the
    // client with the old tag gets the new page, and the other
    // kecamatan's page stands (same tag, not rendered again).
    let operator = cluster.client_as(OPERATOR);
    operator
        .submit(workload::submission(&tps[0], 0))
        .await
        .expect("accepted");
    let fresh = wait_until(
        "the page's tag to move",
        Duration::from_secs(10),
        || async {
            let a = get_with(&ca, &n1, &page, &[("if-none-match", tag.as_str())])
                .await
                .ok()?;
            (a.status == 200).then_some(a)
        },
    )
    .await;
    assert_ne!(etag(&fresh), tag);
    let text = String::from_utf8(fresh.body.to_vec()).expect("HTML");
    assert!(
        text.contains("data-f=\"tps_reported\">1<"),
        "the new count shows: {text}"
    );
    // A kept page is served for up to a tick before the state is asked.
    let moved: Vec<bool> = wait_until("a kecamatan's tag to move", Duration::from_secs(5), || {
        let (ca, n1, kec, kec_tags) = (&ca, &n1, &kec, &kec_tags);
        async move {
            let mut moved = Vec::new();
            for (k, t) in kec.iter().zip(kec_tags) {
                let a = get_with(ca, n1, &kec_page(k), &[]).await.ok()?;
                moved.push(etag(&a) != *t);
            }
            moved.contains(&true).then_some(moved)
        }
    })
    .await;
    assert_eq!(
        moved.iter().filter(|m| **m).count(),
        1,
        "exactly the kecamatan with the result changed: {moved:?}"
    );
    let rendered = dashboard_answers(&ca, &n1, "rendered").await;
    let (k, t) = kec
        .iter()
        .zip(&kec_tags)
        .zip(&moved)
        .find(|(_, m)| !**m)
        .map(|(kt, _)| kt)
        .expect("an unchanged kecamatan");
    // Once its tick has passed, the kept page is checked against the
    // state (not kept blindly), found current, and kept on.
    let checks = dashboard_checks(&ca, &n1).await;
    let a = wait_until(
        "the other kecamatan's kept page to be checked",
        Duration::from_secs(5),
        || {
            let (ca, n1, page, t) = (&ca, &n1, kec_page(k), t.as_str());
            async move {
                let a = get_with(ca, n1, &page, &[("if-none-match", t)])
                    .await
                    .ok()?;
                (dashboard_checks(ca, n1).await > checks).then_some(a)
            }
        },
    )
    .await;
    assert_eq!(a.status, 304, "the other kecamatan's page did not change");
    assert_eq!(
        dashboard_answers(&ca, &n1, "rendered").await,
        rendered,
        "and was not rendered again"
    );

    // A TPS page: validators, and 304 for its holder.
    let tps_path = format!("/tps/{}?pemilihan={CONTEST}", tps[0]);
    let t = get_with(&ca, &n1, &tps_path, &[]).await.expect("TPS page");
    assert_eq!(t.status, 200);
    let ttag = etag(&t);
    let a = get_with(&ca, &n1, &tps_path, &[("if-none-match", ttag.as_str())])
        .await
        .expect("conditional TPS page");
    assert_eq!(a.status, 304);
    // An unknown region is no page: 404, with no validators to keep.
    let a = get_with(&ca, &n1, "/wilayah/99.99", &[])
        .await
        .expect("404");
    assert_eq!(a.status, 404);
    assert!(a.header("etag").is_none());
}
