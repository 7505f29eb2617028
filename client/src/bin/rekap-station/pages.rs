//! The station's pages, in Bahasa Indonesia, rendered with maud (which
//! escapes every value). The form works without its script; `station.js`
//! checks the arithmetic as the operator types and turns states live.
//! Elements the script updates carry `data-key="<tps>|<contest>"`.

use std::collections::HashMap;

use maud::{DOCTYPE, Markup, html};
use rekap_client::outbox::{Entry, State};
use rekap_client::proto as pb;
use rekap_client::zones::Zone;

use crate::app::Link;
use crate::form::{ADMIN_FIELDS, Verdict, vote_field};
use crate::slice::Slice;

pub fn key(tps: &str, contest: &str) -> String {
    format!("{tps}|{contest}")
}

/// Everything but RFC 3986's unreserved characters: ids keep their dots.
const URL_PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, URL_PART).to_string()
}

pub fn form_href(tps: &str, contest: &str) -> String {
    format!("/tps/{}?pemilihan={}", enc(tps), enc(contest))
}

/// An entry's state as one short line; without one, whether the cluster
/// had a result already when the slice was read (entered elsewhere).
pub fn state_text(e: Option<&Entry>, r: Option<&pb::ReportedResult>) -> (String, &'static str) {
    let Some(e) = e else {
        return match r {
            Some(r) => (format!("tercatat · revisi {}", r.revision), "tercatat"),
            None => ("belum diisi".into(), "belum"),
        };
    };
    let text = match e.state {
        State::Tersimpan => "tersimpan".to_string(),
        State::Terkirim => format!("terkirim · indeks log {}", e.log_index.unwrap_or(0)),
        State::Ditolak => format!("ditolak · {}", e.rule.as_deref().unwrap_or("")),
        State::Konflik => "konflik".to_string(),
    };
    (text, e.state.word())
}

fn layout(title: &str, user: &str, link: &Link, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="id" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Stasiun Rekap" }
                link rel="stylesheet" href="/static/station.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Stasiun Rekap" }
                    span { "Operator: " b { (user) } }
                    span #link .(if link.online { "online" } else { "offline" }) {
                        (if link.online { "Tersambung ke Rekap" } else { "Tidak tersambung" })
                    }
                }
                p #why .(if link.why.is_some() { "shown" } else { "" }) { (link.why.clone().unwrap_or_default()) }
                @if let Some(e) = &link.slice_error { p.warn { (e) } }
                main { (body) }
                script src="/static/station.js" {}
            }
        }
    }
}

/// The operator's TPS, by kecamatan and desa, with each contest's state.
pub fn index(
    user: &str,
    link: &Link,
    slice: Option<&Slice>,
    entries: &HashMap<String, Entry>,
) -> Markup {
    let Some(slice) = slice else {
        return layout("Daftar TPS", user, link, no_slice());
    };
    let counts = counts(slice, entries);
    let body = html! {
        h1 { "Daftar TPS" }
        p.muted { "Wilayah tugas: " (slice.raw.scopes.iter().map(|c| slice.region_name(c)).collect::<Vec<_>>().join(", ")) }
        p.counts {
            @for (word, n) in &counts {
                span class={ "count " (word) } { (word) ": " b data-count=(word) { (n) } } " "
            }
        }
        p.muted { "Daftar TPS dari server: " (slice.zone().show(slice.fetched_at_ms)) ". Entri disimpan di laptop ini dan dikirim otomatis saat ada sinyal." }
        @for (kec, desa, tps) in slice.by_desa() {
            section.card {
                h2 { "Kec. " (kec) " · " (desa) }
                table {
                    thead { tr { th { "TPS" } th.n { "DPT" } th { "Pemilihan" } th { "Keadaan" } } }
                    tbody {
                        @for t in tps {
                            @for c in slice.contests_of(t) {
                                @let k = key(&t.tps_id, &c.contest_id);
                                @let (text, class) = state_text(entries.get(&k), slice.reported(&t.tps_id, &c.contest_id));
                                tr {
                                    td { a href=(form_href(&t.tps_id, &c.contest_id)) { "TPS " (format!("{:03}", t.number)) } }
                                    td.n { (t.dpt.map(|d| d.to_string()).unwrap_or_default()) }
                                    td { (c.name) }
                                    td { span.state.(class) data-key=(k) { (text) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Daftar TPS", user, link, body)
}

pub fn counts(slice: &Slice, entries: &HashMap<String, Entry>) -> Vec<(&'static str, usize)> {
    let mut out = vec![
        ("belum", 0),
        ("tersimpan", 0),
        ("terkirim", 0),
        ("tercatat", 0),
        ("ditolak", 0),
        ("konflik", 0),
    ];
    for t in slice.all_tps() {
        for c in slice.contests_of(t) {
            let entry = entries.get(&key(&t.tps_id, &c.contest_id));
            let (_, class) = state_text(entry, slice.reported(&t.tps_id, &c.contest_id));
            if let Some(slot) = out.iter_mut().find(|(w, _)| *w == class) {
                slot.1 += 1;
            }
        }
    }
    out
}

fn no_slice() -> Markup {
    html! {
        h1 { "Daftar TPS belum ada" }
        p { "Stasiun ini belum pernah tersambung ke Rekap. Sambungkan sekali ke jaringan: daftar TPS Anda diunduh dan disimpan, lalu stasiun bekerja tanpa sinyal." }
    }
}

/// What the form page shows besides the fields.
pub struct FormPage<'a> {
    pub tps: &'a pb::Tps,
    pub contest: &'a pb::Contest,
    pub entry: Option<&'a Entry>,
    /// Values to put back in the fields (a refused post keeps them).
    pub values: HashMap<String, String>,
    pub verdict: Option<Verdict>,
    /// A message above the form (saved, refused, disk full, ...).
    pub notice: Option<(String, &'static str)>,
    pub next: Option<(String, String)>,
}

pub fn tps_form(user: &str, link: &Link, slice: &Slice, p: FormPage) -> Markup {
    let t = p.tps;
    let c = p.contest;
    let k = key(&t.tps_id, &c.contest_id);
    let reported = slice.reported(&t.tps_id, &c.contest_id);
    let (text, class) = state_text(p.entry, reported);
    let zone = slice.zone_of(t);
    let live = p.entry.is_some_and(|e| e.state != State::Ditolak);
    let elsewhere = reported.filter(|_| !live);
    let locked = live || elsewhere.is_some();
    let value = |f: &str| -> String {
        if let Some(v) = p.values.get(f) {
            return v.clone();
        }
        p.entry
            .filter(|_| locked)
            .map(|e| figure(&e.submission, f))
            .unwrap_or_default()
    };
    let title = format!("TPS {:03} {}", t.number, slice.region_name(&t.desa_code));
    let body = html! {
        nav.crumbs { a href="/" { "Daftar TPS" } " › Kec. " (slice.above(&t.desa_code, pb::RegionLevel::Kecamatan)) " › " (slice.region_name(&t.desa_code)) }
        h1 { (title) " " span.level { (c.name) } }
        p { "Keadaan: " span #state .state.(class) data-key=(k) { (text) } }
        @if let Some((msg, kind)) = &p.notice { p #notice class=(kind) { (msg) } }
        @if let Some(e) = p.entry { (receipt(e, zone)) }
        @if let Some(r) = elsewhere {
            p #tercatat .warning { "Hasil TPS ini sudah tercatat di Rekap (revisi " (r.revision) ", indeks log " (r.log_index) ", oleh " (r.author) "). Perbaikan diajukan melalui verifikator (PPK)." }
        }
        form #chasil method="post" action=(form_href(&t.tps_id, &c.contest_id)) data-tps=(t.tps_id) data-contest=(c.contest_id) {
            input type="hidden" name="tps" value=(t.tps_id);
            input type="hidden" name="contest" value=(c.contest_id);
            fieldset disabled[locked] {
                legend { "Perolehan suara paslon" }
                table.sheet {
                    @for (i, cand) in c.candidates.iter().enumerate() {
                        @let f = vote_field(&cand.candidate_id);
                        tr { th { (cand.number) ". " (cand.name) } td { input name=(f) id=(f) inputmode="numeric" autocomplete="off" autofocus[i == 0 && !locked] value=(value(&f)); } }
                    }
                    @for f in ["sah", "tidak_sah", "total"] {
                        tr { th { (rekap_rules::field_label(f)) } td { input name=(f) id=(f) inputmode="numeric" autocomplete="off" value=(value(f)); } }
                    }
                }
                details open[ADMIN_FIELDS.iter().any(|f| !value(f).is_empty())] {
                    summary { "Data pemilih, pengguna hak pilih dan surat suara (bila ada)" }
                    table.sheet {
                        @for f in ADMIN_FIELDS {
                            tr { th { (rekap_rules::field_label(f)) } td { input name=(f) id=(f) inputmode="numeric" autocomplete="off" value=(value(f)); } }
                        }
                    }
                }
                div #periksa role="status" aria-live="polite" { (verdict_box(p.verdict.as_ref())) }
                @if !locked { button #simpan type="submit" { "Simpan" } }
            }
        }
        @if let Some((href, label)) = &p.next { p { a #next href=(href) autofocus[locked] { "TPS berikutnya: " (label) " →" } } }
    };
    layout(&title, user, link, body)
}

/// The sheet's verdict: the rule broken, and janggal warnings.
pub fn verdict_box(v: Option<&Verdict>) -> Markup {
    let Some(v) = v else { return html! {} };
    html! {
        @if let Some(rule) = &v.rule {
            p.error data-rule=(rule) { b { (v.pesan) } " (" code { (rule) } ": " (v.message) ")" }
        }
        @for w in &v.janggal {
            p.warning data-rule=(w.rule) { "Peringatan (janggal, tetap bisa disimpan): " (w.pesan) " (" code { (w.rule) } ")" }
        }
    }
}

/// What the outbox knows of an entry: its id, when it was saved and sent,
/// and for a konflik, both results side by side.
fn receipt(e: &Entry, zone: Zone) -> Markup {
    html! {
        section.card.receipt {
            p { "Nomor kiriman " code { (e.submission.submission_id) } ", disimpan " (zone.show(e.saved_at_ms)) "." }
            @if let (Some(at), Some(ix)) = (e.sent_at_ms, e.log_index) {
                p { "Diterima Rekap " (zone.show(at)) ", indeks log " b { (ix) } ", revisi " (e.revision.unwrap_or(0)) (if e.duplicate { " (kiriman ulang, tidak dihitung dua kali)" } else { "" }) "." }
            }
            @if let Some(w) = e.waiting.as_ref().filter(|_| e.state == State::Tersimpan) { p.muted { (w) } }
            @if e.state == State::Ditolak {
                @let rule = e.rule.clone().unwrap_or_default();
                p.error { "Ditolak: " b { (rekap_rules::pesan(&rule)) } " (" code { (rule) } ": " (e.message.clone().unwrap_or_default()) "). Perbaiki lalu simpan lagi." }
            }
            @if let Some(other) = &e.other { (konflik(e, other)) }
        }
    }
}

fn konflik(e: &Entry, other: &pb::StoredResult) -> Markup {
    let theirs = other.submission.clone().unwrap_or_default();
    let mut rows: Vec<String> = e
        .submission
        .votes
        .iter()
        .map(|v| vote_field(&v.candidate_id))
        .collect();
    rows.extend(["sah", "tidak_sah", "total"].map(String::from));
    html! {
        div #konflik {
            p.error { b { "Konflik: Rekap sudah punya hasil lain untuk TPS ini" } " (revisi " (other.revision) ", indeks log " (other.log_index) "). Angka Anda tidak dihitung. Perbaikan diajukan melalui verifikator (PPK), dengan C.Hasil sebagai bukti." }
            table.sheet {
                thead { tr { th {} th.n { "Entri Anda" } th.n { "Tercatat di Rekap" } } }
                @for f in &rows {
                    @let (a, b) = (figure(&e.submission, f), figure(&theirs, f));
                    tr.(if a != b { "differs" } else { "" }) { th { (label(f)) } td.n data-mine=(f) { (a) } td.n data-theirs=(f) { (b) } }
                }
            }
        }
    }
}

fn label(f: &str) -> String {
    match f.strip_prefix("v.") {
        Some(id) => format!("Paslon {id}"),
        None => rekap_rules::field_label(f).to_string(),
    }
}

/// A figure of a submission by its form field name, as typed.
pub fn figure(s: &pb::Submission, field: &str) -> String {
    if let Some(id) = field.strip_prefix("v.") {
        return s
            .votes
            .iter()
            .find(|v| v.candidate_id == id)
            .map(|v| v.votes.to_string())
            .unwrap_or_default();
    }
    let v = match field {
        "sah" => s.sah,
        "tidak_sah" => s.tidak_sah,
        "total" => s.total,
        "dpt" => s.dpt,
        "dptb" => s.dptb,
        "dpk" => s.dpk,
        "users_dpt" => s.users_dpt,
        "users_dptb" => s.users_dptb,
        "users_dpk" => s.users_dpk,
        "users_total" => s.users_total,
        "ballots_received" => s.ballots_received,
        "ballots_used" => s.ballots_used,
        "ballots_unused" => s.ballots_unused,
        "ballots_damaged" => s.ballots_damaged,
        _ => None,
    };
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// A plain page for a problem that is not a form's (unknown TPS, bad host).
pub fn message(user: &str, link: &Link, title: &str, text: &str) -> Markup {
    layout(
        title,
        user,
        link,
        html! { h1 { (title) } p { (text) } p { a href="/" { "Kembali ke daftar TPS" } } },
    )
}

pub const JS: &str = include_str!("assets/station.js");
pub const CSS: &str = include_str!("assets/station.css");
