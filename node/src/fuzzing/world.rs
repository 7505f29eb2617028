//! The small, fixed world the targets run in: nasional, one provinsi, one
//! kabupaten, two kecamatan with one desa each, six TPS, and one contest
//! with two paslon.

use rekap_proto::pb;

use crate::raft::SnapshotMeta;
use crate::tally::{TallyState, keys};

pub const CONTEST: &str = "C";
pub const TPS: [&str; 6] = ["T1", "T2", "T3", "T4", "T5", "T6"];
/// Every scope a grant may name here, and what is above each (the
/// reference tree, written out independently of the tally's).
pub const SCOPES: [(&str, &[&str]); 12] = [
    ("ID", &[]),
    ("63", &["ID"]),
    ("63.02", &["63", "ID"]),
    ("63.02.01", &["63.02", "63", "ID"]),
    ("63.02.02", &["63.02", "63", "ID"]),
    ("63.02.01.D1", &["63.02.01", "63.02", "63", "ID"]),
    ("63.02.02.D1", &["63.02.02", "63.02", "63", "ID"]),
    ("T1", &["63.02.01.D1", "63.02.01", "63.02", "63", "ID"]),
    ("T2", &["63.02.01.D1", "63.02.01", "63.02", "63", "ID"]),
    ("T3", &["63.02.01.D1", "63.02.01", "63.02", "63", "ID"]),
    ("T4", &["63.02.02.D1", "63.02.02", "63.02", "63", "ID"]),
    ("T5", &["63.02.02.D1", "63.02.02", "63.02", "63", "ID"]),
];

/// Whether `scope` covers `target` in the reference tree (T6 hangs below
/// 63.02.02.D1 too).
pub fn covers(scope: &str, target: &str) -> bool {
    if scope == target || scope == "ID" {
        return true;
    }
    let above: &[&str] = if target == "T6" {
        &["63.02.02.D1", "63.02.02", "63.02", "63", "ID"]
    } else {
        SCOPES
            .iter()
            .find(|(s, _)| *s == target)
            .map_or(&[], |(_, a)| *a)
    };
    above.contains(&scope)
}

fn region(code: &str, parent: &str, level: pb::RegionLevel) -> pb::Region {
    pb::Region {
        code: code.into(),
        parent_code: parent.into(),
        level: level as i32,
        name: code.into(),
    }
}

pub fn registry() -> pb::Command {
    use pb::RegionLevel::*;
    let desa = |t: &str| {
        if t <= "T3" {
            "63.02.01.D1"
        } else {
            "63.02.02.D1"
        }
    };
    pb::Command {
        kind: Some(pb::command::Kind::LoadRegistry(pb::LoadRegistryRequest {
            regions: vec![
                region("63", "ID", Provinsi),
                region("63.02", "63", Kabupaten),
                region("63.02.01", "63.02", Kecamatan),
                region("63.02.02", "63.02", Kecamatan),
                region("63.02.01.D1", "63.02.01", Desa),
                region("63.02.02.D1", "63.02.02", Desa),
            ],
            tps: TPS
                .iter()
                .enumerate()
                .map(|(i, t)| pb::Tps {
                    tps_id: (*t).into(),
                    desa_code: desa(t).into(),
                    number: i as u32 + 1,
                    dpt: Some(300),
                })
                .collect(),
            contests: vec![pb::Contest {
                contest_id: CONTEST.into(),
                name: CONTEST.into(),
                scope_code: "ID".into(),
                candidates: ["01", "02"]
                    .iter()
                    .enumerate()
                    .map(|(i, c)| pb::Candidate {
                        candidate_id: (*c).into(),
                        number: i as u32 + 1,
                        name: (*c).into(),
                    })
                    .collect(),
            }],
            remove_tps: vec![],
        })),
        principal: None,
        proposed_at_ms: 0,
    }
}

/// The world with its registry loaded (no users: nothing is enforced).
pub fn state() -> TallyState {
    let mut st = TallyState::new();
    let (resp, _) = st.apply(&registry(), 1);
    assert!(
        matches!(resp.kind, Some(pb::command_response::Kind::LoadRegistry(_))),
        "the reference registry loads: {resp}"
    );
    st
}

/// Records other than the audit chain, which every command moves.
pub fn data_records(st: &TallyState) -> Vec<(Vec<u8>, Vec<u8>)> {
    st.records()
        .into_iter()
        .filter(|(k, _)| k[0] != keys::CHAIN)
        .collect()
}

/// The state rebuilt from its registry and results alone: every aggregate
/// counted again and every request indexed again, as the upgrade from the
/// first record layout does. Equal records mean the persisted aggregates
/// and index are exactly what the results imply.
pub fn recounted(st: &TallyState) -> TallyState {
    let records = st
        .records()
        .into_iter()
        .filter(|(k, _)| ![keys::FORMAT, keys::AGGREGATE, keys::REQUEST].contains(&k[0]));
    TallyState::restore(records).expect("restore from registry and results")
}

pub fn meta() -> SnapshotMeta {
    SnapshotMeta::default()
}
