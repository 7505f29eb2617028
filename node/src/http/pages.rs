//! The dashboard's pages, in Bahasa Indonesia, rendered on the server with
//! maud (which escapes every value). Each page works without its script;
//! `rekap.js` only keeps the figures live. Elements the script updates are
//! marked with `data-*` attributes named after the `WatchUpdate` fields.

use maud::{DOCTYPE, Markup, html};
use rekap_proto::pb;

use rekap_proto::zones::Zone;

use crate::tally::browse::TpsRow;

/// What every page shows about where its figures come from.
pub struct Source {
    pub node_id: u64,
    pub applied_index: u64,
    /// When the page was rendered, in `zone`.
    pub at: String,
    /// The zone of the page's region: its times are shown in it.
    pub zone: Zone,
    /// When the node last heard from a leader (in `zone`), if longer ago
    /// than a lease: the page may lag the count since then.
    pub out_of_touch: Option<String>,
}

/// A region's page: its totals, its children, and for a desa its TPS.
pub struct RegionPage {
    pub lineage: Vec<pb::Region>,
    pub contests: Vec<pb::Contest>,
    pub contest: String,
    pub totals: pb::RegionTotals,
    pub children: Vec<pb::RegionTotals>,
    pub tps: Vec<TpsRow>,
}

/// Digits grouped by thousands with dots, as Indonesians write them.
pub fn ribuan(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(ch);
    }
    out
}

/// A share with two decimals and a decimal comma ("-" of nothing).
pub fn persen(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.2}%", part as f64 * 100.0 / whole as f64).replace('.', ",")
}

fn width(part: u64, whole: u64) -> String {
    let w = if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    };
    format!("width:{w:.2}%")
}

pub fn level_name(level: i32) -> &'static str {
    match pb::RegionLevel::try_from(level) {
        Ok(pb::RegionLevel::Nasional) => "Nasional",
        Ok(pb::RegionLevel::Provinsi) => "Provinsi",
        Ok(pb::RegionLevel::Kabupaten) => "Kabupaten/Kota",
        Ok(pb::RegionLevel::Kecamatan) => "Kecamatan",
        Ok(pb::RegionLevel::Desa) => "Desa/Kelurahan",
        _ => "Wilayah",
    }
}

pub fn region_href(code: &str, contest: &str) -> String {
    format!("/wilayah/{}?pemilihan={}", enc(code), enc(contest))
}

pub fn tps_href(tps: &str, contest: &str) -> String {
    format!("/tps/{}?pemilihan={}", enc(tps), enc(contest))
}

pub(super) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn layout(title: &str, src: &Source, live: Option<String>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="id" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Rekap" }
                link rel="stylesheet" href="/static/rekap.css";
                script src="/static/rekap.js" defer {}
            }
            body data-live=[live] {
                header.top {
                    a.brand href="/" { "Rekap" }
                    span { "Hasil penghitungan suara" }
                    span.live title="Pembaruan langsung" { "● langsung" }
                }
                p.asof {
                    "Data per indeks log " strong data-f="applied_index" { (src.applied_index) }
                    " · " span data-f="at" data-tz=(src.zone.offset_minutes()) data-zone=(src.zone.name()) { (src.at) }
                    " · dilayani node " (src.node_id)
                }
                @if let Some(since) = &src.out_of_touch {
                    p.stale role="alert" data-f="stale" {
                        "Node ini tidak terhubung ke pemimpin klaster sejak " (since) ": "
                        "angka di halaman ini mungkin tertinggal. Buka node lain untuk data terbaru."
                    }
                }
                main { (body) }
                footer {
                    "Data hanya-baca dari salinan node ini, yang dapat tertinggal sebentar dari pemimpin klaster. "
                    "Tanpa internet: semua berkas halaman ini dilayani oleh node."
                }
            }
        }
    }
}

fn breadcrumb(lineage: &[pb::Region], contest: &str, last_link: bool) -> Markup {
    html! {
        nav.crumbs {
            @for (i, r) in lineage.iter().enumerate() {
                @if i > 0 { " › " }
                @if i + 1 < lineage.len() || last_link {
                    a href=(region_href(&r.code, contest)) { (r.name) }
                } @else {
                    span { (r.name) }
                }
            }
        }
    }
}

fn contest_tabs(contests: &[pb::Contest], current: &str, region: &str) -> Markup {
    html! {
        @if contests.len() > 1 {
            nav.tabs {
                @for c in contests {
                    @if c.contest_id == current {
                        span.on { (c.name) }
                    } @else {
                        a href=(region_href(region, &c.contest_id)) { (c.name) }
                    }
                }
            }
        }
    }
}

fn votes_table(t: &pb::RegionTotals) -> Markup {
    html! {
        table.votes {
            thead { tr { th { "No" } th { "Pasangan calon" } th.n { "Suara" } th.n { "Persentase" } th {} } }
            tbody {
                @for c in &t.candidates {
                    tr data-c=(c.candidate_id) {
                        td { (c.number) }
                        td { (c.name) }
                        td.n data-f="votes" { (ribuan(c.votes)) }
                        td.n data-f="share" { (persen(c.votes, t.sah)) }
                        td.barcell { div.bar { span data-f="bar" style=(width(c.votes, t.sah)) {} } }
                    }
                }
            }
        }
        table.sums {
            tr { th { "Suara sah" } td.n data-f="sah" { (ribuan(t.sah)) } }
            tr { th { "Suara tidak sah" } td.n data-f="tidak_sah" { (ribuan(t.tidak_sah)) } }
            tr { th { "Total suara" } td.n data-f="total" { (ribuan(t.total)) } }
        }
    }
}

fn progress(t: &pb::RegionTotals) -> Markup {
    html! {
        div.progress {
            "TPS masuk " strong data-f="tps_reported" { (ribuan(t.tps_reported)) }
            " dari " span data-f="tps_total" { (ribuan(t.tps_total)) }
            " (" span data-f="progress" { (persen(t.tps_reported, t.tps_total)) } ")"
            div.bar.wide { span data-f="progress_bar" style=(width(t.tps_reported, t.tps_total)) {} }
        }
    }
}

pub fn region(p: &RegionPage, src: &Source) -> Markup {
    let code = p.totals.region.as_ref().map_or("", |r| r.code.as_str());
    let name = p.totals.region.as_ref().map_or("", |r| r.name.as_str());
    let level = p.totals.region.as_ref().map_or(0, |r| r.level);
    let live = format!("/api/v1/events/{}?pemilihan={}", enc(code), enc(&p.contest));
    let body = html! {
        (breadcrumb(&p.lineage, &p.contest, false))
        (contest_tabs(&p.contests, &p.contest, code))
        h1 { span.level { (level_name(level)) } " " (name) }
        section.card {
            h2 { "Perolehan suara" }
            (votes_table(&p.totals))
            (progress(&p.totals))
            p.links {
                a href=(format!("/wilayah/{}/belum-masuk?pemilihan={}", enc(code), enc(&p.contest))) {
                    "TPS belum masuk (" span data-f="missing" { (ribuan(p.totals.tps_total - p.totals.tps_reported)) } ")"
                }
                " · "
                a href=(format!("/wilayah/{}/janggal?pemilihan={}", enc(code), enc(&p.contest))) {
                    "TPS janggal (" span data-f="tps_janggal" { (ribuan(p.totals.tps_janggal)) } ")"
                }
            }
        }
        @if !p.children.is_empty() {
            section.card {
                h2 { "Per wilayah" }
                table.children {
                    thead { tr { th { "Wilayah" } th.n { "TPS masuk" } th.n { "Progres" } th {} th.n { "Suara sah" } } }
                    tbody {
                        @for c in &p.children {
                            @let r = c.region.clone().unwrap_or_default();
                            tr data-region=(r.code) {
                                td { a href=(region_href(&r.code, &p.contest)) { (r.name) } }
                                td.n { span data-f="tps_reported" { (ribuan(c.tps_reported)) } " / " (ribuan(c.tps_total)) }
                                td.n data-f="progress" { (persen(c.tps_reported, c.tps_total)) }
                                td.barcell { div.bar { span data-f="progress_bar" style=(width(c.tps_reported, c.tps_total)) {} } }
                                td.n data-f="sah" { (ribuan(c.sah)) }
                            }
                        }
                    }
                }
            }
        }
        @if !p.tps.is_empty() {
            section.card #tps-list data-refresh="tps_reported" {
                h2 { "TPS di " (name) }
                table.tps {
                    thead { tr { th { "TPS" } th { "Status" } th.n { "Suara sah" } th.n { "Revisi" } } }
                    tbody {
                        @for row in &p.tps {
                            tr data-tps=(row.tps.tps_id) {
                                td { a href=(tps_href(&row.tps.tps_id, &p.contest)) { "TPS " (format!("{:03}", row.tps.number)) } }
                                @match &row.result {
                                    None => { td.missing { "Belum masuk" } td {} td {} }
                                    Some(r) => {
                                        td { @if r.janggal.is_empty() { "Masuk" } @else { span.flag { "Janggal" } } }
                                        td.n { (ribuan(r.submission.as_ref().and_then(|s| s.sah).unwrap_or(0).max(0) as u64)) }
                                        td.n { (r.revision) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(name, src, Some(live), body)
}

/// A page saying what could not be shown.
pub fn not_found(message: &str, src: &Source) -> Markup {
    layout(
        "Tidak ditemukan",
        src,
        None,
        html! { h1 { "Tidak ditemukan" } p { (message) } p { a href="/" { "Ke halaman nasional" } } },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_the_indonesian_way() {
        assert_eq!(ribuan(0), "0");
        assert_eq!(ribuan(999), "999");
        assert_eq!(ribuan(1000), "1.000");
        assert_eq!(ribuan(192_866_254), "192.866.254");
        assert_eq!(persen(1, 3), "33,33%");
        assert_eq!(persen(5, 0), "-");
    }

    #[test]
    fn names_from_the_registry_are_escaped() {
        let src = Source {
            node_id: 1,
            applied_index: 7,
            at: "now".into(),
            zone: Zone::Wita,
            out_of_touch: None,
        };
        let html = not_found("<script>alert(1)</script>", &src).into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
    }
}
