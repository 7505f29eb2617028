//! The fuzz targets as property tests, on stable Rust in `cargo test`.
//! libFuzzer (node/fuzz) explores far more; these keep every target honest
//! on every run. PROPTEST_CASES raises the case count.

use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;
use rekap_proto::pb;

use super::world;

/// Valid encodings to mutate, so decoding gets past the first byte.
fn seeds() -> Vec<Vec<u8>> {
    let sub = pb::Submission {
        submission_id: "s1".into(),
        tps_id: "T1".into(),
        contest_id: world::CONTEST.into(),
        votes: vec![
            pb::CandidateVotes {
                candidate_id: "01".into(),
                votes: 10,
            },
            pb::CandidateVotes {
                candidate_id: "02".into(),
                votes: 5,
            },
        ],
        sah: Some(15),
        tidak_sah: Some(1),
        total: Some(16),
        ..Default::default()
    };
    let submit = pb::Command {
        kind: Some(pb::command::Kind::Submit(pb::SubmitBatchRequest {
            submissions: vec![sub.clone()],
        })),
        principal: None,
        proposed_at_ms: 0,
    };
    vec![
        world::registry().encode_to_vec(),
        submit.encode_to_vec(),
        sub.encode_to_vec(),
        pb::GetTotalsRequest {
            region_code: "63.02".into(),
            contest_id: world::CONTEST.into(),
            consistency: 0,
        }
        .encode_to_vec(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_and_validate_arbitrary_bytes(data in vec(any::<u8>(), 0..1024)) {
        super::decode_and_validate(&data);
    }

    #[test]
    fn decode_and_validate_mutated_messages(
        which in 0usize..4,
        flips in vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        let mut data = seeds().swap_remove(which);
        for (at, b) in flips {
            let n = data.len();
            data[at % n] ^= b;
        }
        let keep = cut % (data.len() + 1);
        data.truncate(keep.max(data.len() / 2));
        super::decode_and_validate(&data);
    }

    #[test]
    fn command_sequences_match_the_reference_tally(data in vec(any::<u8>(), 0..2048)) {
        super::command_sequence(&data);
    }

    #[test]
    fn authorization_matches_the_reference_table(data in vec(any::<u8>(), 0..256)) {
        super::authorization(&data);
    }

    #[test]
    fn snapshots_parse_or_refuse(data in vec(any::<u8>(), 0..2048)) {
        super::snapshot_parse(&data);
    }
}
