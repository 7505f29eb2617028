//! The dashboard's pages about single TPS: one TPS's result with every
//! revision (who changed it, why), the TPS still missing in a region, and
//! the janggal results with their reasons.

use maud::{Markup, html};
use rekap_proto::pb;

use super::pages::{Source, layout, persen, region_href, ribuan, tps_href};

/// One TPS's page.
pub struct TpsPage {
    pub lineage: Vec<pb::Region>,
    pub tps: pb::Tps,
    pub contest: pb::Contest,
    pub revisions: Vec<pb::Revision>,
}

/// One page of a list of TPS in a region.
pub struct ListPage {
    pub region: pb::Region,
    pub contest: String,
    pub total: u64,
    pub missing: Vec<pb::Tps>,
    pub janggal: Vec<pb::JanggalItem>,
    /// Link to the next page, if any.
    pub next: Option<String>,
}

fn kind_name(kind: i32) -> &'static str {
    match pb::RevisionKind::try_from(kind) {
        Ok(pb::RevisionKind::Submitted) => "Dikirim",
        Ok(pb::RevisionKind::Corrected) => "Dikoreksi",
        Ok(pb::RevisionKind::FlagsCleared) => "Tanda janggal dihapus",
        Ok(pb::RevisionKind::Reviewed) => "Diperiksa",
        Ok(pb::RevisionKind::Objected) => "Keberatan",
        _ => "-",
    }
}

fn reason_name(reason: i32) -> &'static str {
    match pb::CorrectionReason::try_from(reason) {
        Ok(pb::CorrectionReason::EntryError) => "Salah ketik",
        Ok(pb::CorrectionReason::FormMisread) => "Salah baca formulir",
        Ok(pb::CorrectionReason::Recount) => "Hitung ulang / pleno",
        Ok(pb::CorrectionReason::Psu) => "Pemungutan suara ulang",
        Ok(pb::CorrectionReason::CourtRuling) => "Putusan pengadilan",
        _ => "",
    }
}

/// A janggal reason in the readers' words, with the rule's name.
fn alasan(rule: &str) -> String {
    let words = match rule {
        "total_ne_ballots_used" => "total suara tidak sama dengan surat suara terpakai",
        "total_ne_users_total" => "total suara tidak sama dengan jumlah pengguna hak pilih",
        "total_over_800" => "total suara lebih dari 800",
        "votes_over_registered" => "suara satu paslon melebihi jumlah pemilih terdaftar",
        "turnout_over_registered" => "pengguna hak pilih melebihi jumlah pemilih terdaftar",
        "all_votes_one_candidate" => "semua suara sah untuk satu paslon",
        "keberatan" => "ada keberatan saksi",
        _ => return rule.to_string(),
    };
    format!("{words} ({rule})")
}

fn alasan_all(rules: &[String]) -> String {
    rules
        .iter()
        .map(|r| alasan(r))
        .collect::<Vec<_>>()
        .join("; ")
}

fn votes_of(s: &pb::Submission, candidate_id: &str) -> u64 {
    s.votes
        .iter()
        .find(|v| v.candidate_id == candidate_id)
        .map_or(0, |v| v.votes.max(0) as u64)
}

fn num(v: Option<i64>) -> u64 {
    v.unwrap_or(0).max(0) as u64
}

fn crumbs(lineage: &[pb::Region], contest: &str) -> Markup {
    html! {
        nav.crumbs {
            @for (i, r) in lineage.iter().enumerate() {
                @if i > 0 { " › " }
                a href=(region_href(&r.code, contest)) { (r.name) }
            }
        }
    }
}

pub fn tps(p: &TpsPage, src: &Source) -> Markup {
    let title = format!("TPS {:03}", p.tps.number);
    let current = p.revisions.last();
    let body = html! {
        (crumbs(&p.lineage, &p.contest.contest_id))
        h1 { span.level { "TPS" } " " (format!("{:03}", p.tps.number)) }
        p.meta { "Kode " code { (p.tps.tps_id) } @if let Some(d) = p.tps.dpt { " · DPT " (ribuan(d as u64)) } " · " (p.contest.name) }
        @match current.and_then(|r| r.submission.as_ref().map(|s| (r, s))) {
            None => { section.card { p.missing #status { "Hasil TPS ini belum masuk." } } }
            Some((rev, s)) => {
                section.card #result {
                    h2 { "Hasil (revisi " (rev.revision) ")" }
                    p.meta #changed { "Diubah " (src.zone.show(rev.at_ms)) @if let Some(a) = &rev.author { " oleh " (a.name) } }
                    table.votes {
                        thead { tr { th { "No" } th { "Pasangan calon" } th.n { "Suara" } th.n { "Persentase" } } }
                        tbody {
                            @for c in &p.contest.candidates {
                                @let v = votes_of(s, &c.candidate_id);
                                tr data-c=(c.candidate_id) {
                                    td { (c.number) } td { (c.name) }
                                    td.n data-f="votes" { (ribuan(v)) }
                                    td.n { (persen(v, num(s.sah))) }
                                }
                            }
                        }
                    }
                    table.sums {
                        tr { th { "Suara sah" } td.n data-f="sah" { (ribuan(num(s.sah))) } }
                        tr { th { "Suara tidak sah" } td.n data-f="tidak_sah" { (ribuan(num(s.tidak_sah))) } }
                        tr { th { "Total suara" } td.n data-f="total" { (ribuan(num(s.total))) } }
                    }
                    @if !rev.janggal.is_empty() {
                        p.flag { "Janggal: " (alasan_all(&rev.janggal)) }
                    }
                }
            }
        }
        @if !p.revisions.is_empty() {
            section.card {
                h2 { "Riwayat revisi" }
                table.history {
                    thead { tr { th { "Revisi" } th { "Jenis" } th { "Oleh" } th { "Waktu" } th { "Alasan" } th { "Catatan" } th.n { "Suara sah" } th { "Janggal" } th.n { "Indeks log" } } }
                    tbody {
                        @for r in &p.revisions {
                            tr {
                                td { (r.revision) }
                                td { (kind_name(r.kind)) }
                                td { (r.author.as_ref().map_or("", |a| a.name.as_str())) }
                                td.at { (src.zone.show(r.at_ms)) }
                                td { (reason_name(r.reason)) }
                                td { (r.note) }
                                td.n { (ribuan(r.submission.as_ref().map_or(0, |s| num(s.sah)))) }
                                td { (alasan_all(&r.janggal)) }
                                td.n { (r.log_index) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(&title, src, None, body)
}

pub fn missing(p: &ListPage, src: &Source) -> Markup {
    let body = html! {
        h1 { "TPS belum masuk: " (p.region.name) }
        p { a href=(region_href(&p.region.code, &p.contest)) { "Kembali ke " (p.region.name) } " · " (ribuan(p.total)) " TPS belum masuk" }
        table.tps {
            thead { tr { th { "TPS" } th { "Kode" } th { "Desa" } } }
            tbody {
                @for t in &p.missing {
                    tr {
                        td { a href=(tps_href(&t.tps_id, &p.contest)) { "TPS " (format!("{:03}", t.number)) } }
                        td { code { (t.tps_id) } }
                        td { a href=(region_href(&t.desa_code, &p.contest)) { (t.desa_code) } }
                    }
                }
            }
        }
        @if let Some(n) = &p.next { p { a href=(n) { "Berikutnya ›" } } }
    };
    layout("TPS belum masuk", src, None, body)
}

pub fn janggal(p: &ListPage, src: &Source) -> Markup {
    let body = html! {
        h1 { "TPS janggal: " (p.region.name) }
        p { a href=(region_href(&p.region.code, &p.contest)) { "Kembali ke " (p.region.name) } " · " (ribuan(p.total)) " hasil janggal" }
        table.tps {
            thead { tr { th { "TPS" } th { "Desa" } th { "Alasan" } th.n { "Revisi" } } }
            tbody {
                @for item in &p.janggal {
                    @let t = item.tps.clone().unwrap_or_default();
                    @let r = item.result.clone().unwrap_or_default();
                    tr {
                        td { a href=(tps_href(&t.tps_id, &p.contest)) { "TPS " (format!("{:03}", t.number)) " " code { (t.tps_id) } } }
                        td { a href=(region_href(&t.desa_code, &p.contest)) { (t.desa_code) } }
                        td.flag { (alasan_all(&r.janggal)) }
                        td.n { (r.revision) }
                    }
                }
            }
        }
        @if let Some(n) = &p.next { p { a href=(n) { "Berikutnya ›" } } }
    };
    layout("TPS janggal", src, None, body)
}
