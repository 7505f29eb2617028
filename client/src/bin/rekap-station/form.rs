//! The C.Hasil form: its fields, and the check that runs before anything is
//! queued. The check is the node's own (`rekap-rules`), run against the
//! station's copy of the registry, so an entry the cluster would refuse for
//! its arithmetic or its candidates never reaches the outbox.

use std::collections::HashMap;

use rekap_client::proto as pb;
use serde::Serialize;

use crate::slice::Slice;

/// The optional figures of the sheet, in the order they are printed on it.
pub const ADMIN_FIELDS: [&str; 11] = [
    "dpt",
    "dptb",
    "dpk",
    "users_dpt",
    "users_dptb",
    "users_dpk",
    "users_total",
    "ballots_received",
    "ballots_used",
    "ballots_unused",
    "ballots_damaged",
];

/// Votes of candidate `id` are posted as `v.<id>`.
pub fn vote_field(candidate_id: &str) -> String {
    format!("v.{candidate_id}")
}

/// What the check found: the first hard rule broken (nothing may be
/// queued), and the janggal warnings of an entry that may be.
#[derive(Debug, Default, Serialize)]
pub struct Verdict {
    pub rule: Option<String>,
    pub pesan: String,
    pub message: String,
    /// The form fields the broken rule is about, to highlight.
    pub fields: Vec<String>,
    pub janggal: Vec<Warning>,
}

#[derive(Debug, Serialize)]
pub struct Warning {
    pub rule: String,
    pub pesan: &'static str,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.rule.is_none()
    }

    fn refuse(rule: &str, message: String, fields: Vec<String>) -> Verdict {
        Verdict {
            rule: Some(rule.into()),
            pesan: rekap_rules::pesan(rule).into(),
            message,
            fields,
            janggal: Vec::new(),
        }
    }
}

/// Reads the posted form into a submission for `tps` and `contest` (ids
/// are left to the caller) and checks it. `None` numbers are fields left
/// empty.
pub fn read(
    slice: &Slice,
    tps_id: &str,
    contest_id: &str,
    posted: &HashMap<String, String>,
) -> (pb::Submission, Verdict) {
    let mut s = pb::Submission {
        tps_id: tps_id.into(),
        contest_id: contest_id.into(),
        ..Default::default()
    };
    let (Some(tps), Some(contest)) = (slice.tps(tps_id), slice.contest(contest_id)) else {
        let v = Verdict::refuse(
            "permission:submit",
            format!("TPS {tps_id} / {contest_id} is not in this operator's slice"),
            Vec::new(),
        );
        return (s, v);
    };
    let mut unreadable = Vec::new();
    let mut number = |field: &str| -> Option<i64> {
        let raw = posted.get(field).map(|v| v.trim()).unwrap_or("");
        if raw.is_empty() {
            return None;
        }
        raw.parse::<i64>().ok().or_else(|| {
            unreadable.push(field.to_string());
            None
        })
    };
    for c in &contest.candidates {
        if let Some(votes) = number(&vote_field(&c.candidate_id)) {
            s.votes.push(pb::CandidateVotes {
                candidate_id: c.candidate_id.clone(),
                votes,
            });
        }
    }
    s.sah = number("sah");
    s.tidak_sah = number("tidak_sah");
    s.total = number("total");
    let admin: Vec<Option<i64>> = ADMIN_FIELDS.iter().map(|f| number(f)).collect();
    [
        s.dpt,
        s.dptb,
        s.dpk,
        s.users_dpt,
        s.users_dptb,
        s.users_dpk,
        s.users_total,
        s.ballots_received,
        s.ballots_used,
        s.ballots_unused,
        s.ballots_damaged,
    ] = admin.try_into().expect("eleven fields");
    if !unreadable.is_empty() {
        let v = Verdict::refuse(
            "number_format",
            format!("not a whole number: {}", unreadable.join(", ")),
            unreadable,
        );
        return (s, v);
    }
    if s.votes.len() != contest.candidates.len() {
        let missing = contest
            .candidates
            .iter()
            .map(|c| vote_field(&c.candidate_id))
            .filter(|f| posted.get(f).is_none_or(|v| v.trim().is_empty()))
            .collect();
        let v = Verdict::refuse(
            "required_field",
            "votes of every paslon are required".into(),
            missing,
        );
        return (s, v);
    }
    // Ids are checked by the rules too; a placeholder stands in for the
    // submission id, which is only given when the entry is saved.
    let mut probe = s.clone();
    probe.submission_id = "st:check".into();
    let verdict = match rekap_rules::check_submission(&probe)
        .and_then(|_| rekap_rules::check_candidates(contest, &probe))
    {
        Ok(()) => Verdict {
            janggal: rekap_rules::janggal(&probe, tps.dpt)
                .into_iter()
                .map(|rule| Warning {
                    pesan: rekap_rules::pesan(&rule),
                    rule,
                })
                .collect(),
            ..Verdict::default()
        },
        Err(rej) => {
            let fields = fields_of(&rej, contest);
            Verdict::refuse(&rej.rule, rej.message, fields)
        }
    };
    (s, verdict)
}

/// The fields a refusal is about, to mark on the form.
fn fields_of(rej: &pb::Rejection, contest: &pb::Contest) -> Vec<String> {
    let votes = || {
        contest
            .candidates
            .iter()
            .map(|c| vote_field(&c.candidate_id))
    };
    let named = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    match rej.rule.as_str() {
        "sum_candidates_eq_sah" => votes().chain(named(&["sah"])).collect(),
        "sah_plus_tidak_sah_eq_total" => named(&["sah", "tidak_sah", "total"]),
        "users_sum_eq_users_total" => {
            named(&["users_dpt", "users_dptb", "users_dpk", "users_total"])
        }
        "ballots_received_eq_used_unused_damaged" => named(&[
            "ballots_received",
            "ballots_used",
            "ballots_unused",
            "ballots_damaged",
        ]),
        "users_dpt_le_dpt" => named(&["users_dpt", "dpt"]),
        "required_field" => named(&["sah", "tidak_sah", "total"]),
        // non_negative and figure_limit name the figure first.
        _ => ADMIN_FIELDS
            .iter()
            .chain(["sah", "tidak_sah", "total"].iter())
            .filter(|f| rej.message.starts_with(&format!("{f} ")))
            .map(|f| f.to_string())
            .chain(
                rej.message
                    .starts_with("votes")
                    .then(votes)
                    .into_iter()
                    .flatten(),
            )
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice() -> Slice {
        let region = |code: &str, parent: &str, level: pb::RegionLevel| pb::Region {
            code: code.into(),
            parent_code: parent.into(),
            level: level as i32,
            name: code.into(),
        };
        let raw = pb::GetOperatorSliceResponse {
            user: "kpps".into(),
            scopes: vec!["63.02.01".into()],
            regions: vec![
                region("ID", "", pb::RegionLevel::Nasional),
                region("63.02.01", "ID", pb::RegionLevel::Kecamatan),
                region("63.02.01.2001", "63.02.01", pb::RegionLevel::Desa),
            ],
            tps: vec![pb::Tps {
                tps_id: "T1".into(),
                desa_code: "63.02.01.2001".into(),
                number: 1,
                dpt: Some(300),
            }],
            contests: vec![pb::Contest {
                contest_id: "BUPATI".into(),
                name: "BUPATI".into(),
                scope_code: "63.02.01".into(),
                candidates: ["01", "02"]
                    .map(|id| pb::Candidate {
                        candidate_id: id.into(),
                        number: 1,
                        name: id.into(),
                    })
                    .to_vec(),
            }],
            ..Default::default()
        };
        Slice::new(raw, 0)
    }

    fn posted(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_sheet_is_judged_by_the_nodes_rules_with_their_names() {
        let s = slice();
        let good = [
            ("v.01", "120"),
            ("v.02", "80"),
            ("sah", "200"),
            ("tidak_sah", "3"),
            ("total", "203"),
        ];
        let (sub, v) = read(&s, "T1", "BUPATI", &posted(&good));
        assert!(v.ok() && v.janggal.is_empty(), "{v:?}");
        assert_eq!(
            (sub.sah, sub.total, sub.votes.len()),
            (Some(200), Some(203), 2)
        );

        let mut bad = good;
        bad[2] = ("sah", "201");
        let (_, v) = read(&s, "T1", "BUPATI", &posted(&bad));
        assert_eq!(v.rule.as_deref(), Some("sum_candidates_eq_sah"));
        assert_eq!(v.fields, ["v.01", "v.02", "sah"]);

        let mut typo = good;
        typo[4] = ("total", "2o3");
        let (_, v) = read(&s, "T1", "BUPATI", &posted(&typo));
        assert_eq!(
            (v.rule.as_deref(), v.fields.as_slice()),
            (Some("number_format"), ["total".to_string()].as_slice())
        );

        let (_, v) = read(&s, "T1", "BUPATI", &posted(&good[1..]));
        assert_eq!(v.rule.as_deref(), Some("required_field"));
        assert_eq!(v.fields, ["v.01"]);

        let (_, v) = read(&s, "T9", "BUPATI", &posted(&good));
        assert_eq!(
            v.rule.as_deref(),
            Some("permission:submit"),
            "a TPS outside the slice"
        );
    }

    #[test]
    fn janggal_figures_warn_but_may_be_saved() {
        let s = slice();
        let all_one = [
            ("v.01", "310"),
            ("v.02", "0"),
            ("sah", "310"),
            ("tidak_sah", "0"),
            ("total", "310"),
        ];
        let (_, v) = read(&s, "T1", "BUPATI", &posted(&all_one));
        assert!(v.ok(), "{v:?}");
        let rules: Vec<&str> = v.janggal.iter().map(|w| w.rule.as_str()).collect();
        assert_eq!(
            rules,
            [
                "votes_over_registered",
                "turnout_over_registered",
                "all_votes_one_candidate"
            ]
        );
    }
}
