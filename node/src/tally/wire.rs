//! Encodings spliced from bytes instead of built as messages, for the
//! export: each result is its stored record's current revision cut out of
//! the record (no decoding into owned strings and encoding again), and each
//! TPS is encoded straight from the registry tree. Each function's output
//! equals prost's encoding of the message the ordinary read path builds;
//! the tests compare them byte for byte.

use prost::bytes::BufMut;
use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint};

// Fields of `Revision` (types.proto).
const REV_REVISION: u32 = 1;
const REV_SUBMISSION: u32 = 3;
const REV_LOG_INDEX: u32 = 4;
const REV_JANGGAL: u32 = 5;
const REV_AUTHOR: u32 = 9;
const REV_AT_MS: u32 = 10;
// Fields of `StoredResult`.
const SR_SUBMISSION: u32 = 1;
const SR_REVISION: u32 = 2;
const SR_LOG_INDEX: u32 = 3;
const SR_JANGGAL: u32 = 4;
const SR_SUBMITTED_BY: u32 = 5;
const SR_CHANGED_BY: u32 = 6;
const SR_SUBMITTED_AT_MS: u32 = 7;
const SR_CHANGED_AT_MS: u32 = 8;
// Fields of `Tps`, and of `ResultHistory`.
const TPS_ID: u32 = 1;
const TPS_DESA: u32 = 2;
const TPS_NUMBER: u32 = 3;
const TPS_DPT: u32 = 4;
const HISTORY_REVISIONS: u32 = 1;

/// One field's value: a varint, or a length-delimited field's bytes.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Calls `f` with each field of an encoded message, in order. None when
/// the bytes are not a well-formed message.
fn fields<'a>(mut buf: &'a [u8], mut f: impl FnMut(u32, Value<'a>)) -> Option<()> {
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).ok()?;
        match wire_type {
            WireType::Varint => f(tag, Value::Varint(decode_varint(&mut buf).ok()?)),
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                let (v, rest) = buf.split_at_checked(len)?;
                buf = rest;
                f(tag, Value::Bytes(v));
            }
            WireType::SixtyFourBit => buf = buf.get(8..)?,
            WireType::ThirtyTwoBit => buf = buf.get(4..)?,
            WireType::StartGroup | WireType::EndGroup => return None,
        }
    }
    Some(())
}

fn put_bytes(tag: u32, b: &[u8], out: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(b.len() as u64, out);
    out.put_slice(b);
}

/// A proto3 scalar: omitted when zero.
fn put_varint(tag: u32, n: u64, out: &mut impl BufMut) {
    if n != 0 {
        encode_key(tag, WireType::Varint, out);
        encode_varint(n, out);
    }
}

/// Appends the encoding of `view(history)` (a `StoredResult`: the current
/// revision's numbers, who submitted the first and who made the current
/// one) for an encoded `ResultHistory`. Reads only the first and the last
/// revision. None when the record is malformed or has no revision.
pub fn encode_view(history: &[u8], out: &mut impl BufMut) -> Option<()> {
    let (mut first, mut last) = (None, None);
    fields(history, |tag, v| {
        if let (HISTORY_REVISIONS, Value::Bytes(b)) = (tag, v) {
            first.get_or_insert(b);
            last = Some(b);
        }
    })?;
    let (mut submitted_by, mut submitted_at) = (None, 0);
    fields(first?, |tag, v| match (tag, v) {
        (REV_AUTHOR, Value::Bytes(b)) => submitted_by = Some(b),
        (REV_AT_MS, Value::Varint(n)) => submitted_at = n,
        _ => {}
    })?;
    let (mut submission, mut revision, mut log_index, mut changed_by) = (None, 0, 0, None);
    let mut changed_at = 0;
    let mut janggal = Vec::new();
    fields(last?, |tag, v| match (tag, v) {
        (REV_REVISION, Value::Varint(n)) => revision = n,
        (REV_SUBMISSION, Value::Bytes(b)) => submission = Some(b),
        (REV_LOG_INDEX, Value::Varint(n)) => log_index = n,
        (REV_JANGGAL, Value::Bytes(b)) => janggal.push(b),
        (REV_AUTHOR, Value::Bytes(b)) => changed_by = Some(b),
        (REV_AT_MS, Value::Varint(n)) => changed_at = n,
        _ => {}
    })?;
    if let Some(s) = submission {
        put_bytes(SR_SUBMISSION, s, out);
    }
    put_varint(SR_REVISION, revision, out);
    put_varint(SR_LOG_INDEX, log_index, out);
    for j in janggal {
        put_bytes(SR_JANGGAL, j, out);
    }
    if let Some(p) = submitted_by {
        put_bytes(SR_SUBMITTED_BY, p, out);
    }
    if let Some(p) = changed_by {
        put_bytes(SR_CHANGED_BY, p, out);
    }
    // int64 on the wire is the varint of its two's-complement bits, so the
    // value read is written back as it was.
    put_varint(SR_SUBMITTED_AT_MS, submitted_at, out);
    put_varint(SR_CHANGED_AT_MS, changed_at, out);
    Some(())
}

/// Appends the encoding of a `Tps`.
pub fn encode_tps(id: &str, desa_code: &str, number: u32, dpt: Option<u32>, out: &mut impl BufMut) {
    for (tag, s) in [(TPS_ID, id), (TPS_DESA, desa_code)] {
        if !s.is_empty() {
            put_bytes(tag, s.as_bytes(), out);
        }
    }
    put_varint(TPS_NUMBER, number.into(), out);
    if let Some(d) = dpt {
        // `optional`: present even when zero.
        encode_key(TPS_DPT, WireType::Varint, out);
        encode_varint(d.into(), out);
    }
}

/// The id in an encoded `Tps`.
pub fn tps_id_of(encoded: &[u8]) -> Option<&[u8]> {
    let mut id = None;
    fields(encoded, |tag, v| {
        if let (TPS_ID, Value::Bytes(b)) = (tag, v) {
            id = Some(b);
        }
    })?;
    id
}

/// Appends a `JanggalItem` of an encoded `Tps` and an encoded history's
/// view; `scratch` holds the view meanwhile (its length comes first).
pub fn encode_item(
    tps: &[u8],
    history: &[u8],
    scratch: &mut Vec<u8>,
    out: &mut impl BufMut,
) -> Option<()> {
    scratch.clear();
    encode_view(history, scratch)?;
    put_bytes(rekap_proto::pb::JanggalItem::TPS_TAG, tps, out);
    put_bytes(rekap_proto::pb::JanggalItem::RESULT_TAG, scratch, out);
    Some(())
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use rekap_proto::pb;

    use super::*;

    fn principal(name: &str) -> Option<pb::Principal> {
        Some(pb::Principal {
            kind: pb::PrincipalKind::User as i32,
            name: name.into(),
            node_id: 0,
            cert_serial: "0a1b".into(),
        })
    }

    fn revision(n: u64, janggal: &[&str], author: Option<pb::Principal>) -> pb::Revision {
        pb::Revision {
            revision: n,
            kind: if n == 1 { 1 } else { 2 },
            submission: Some(pb::Submission {
                submission_id: format!("s-{n}"),
                tps_id: "11.01.01.2001-001".into(),
                contest_id: "PPWP".into(),
                votes: vec![
                    pb::CandidateVotes {
                        candidate_id: "01".into(),
                        votes: 100 + n as i64,
                    },
                    pb::CandidateVotes {
                        candidate_id: "02".into(),
                        votes: 0,
                    },
                ],
                sah: Some(100 + n as i64),
                tidak_sah: Some(0),
                total: Some(100 + n as i64),
                dpt: Some(250),
                ..Default::default()
            }),
            log_index: 40 + n,
            janggal: janggal.iter().map(|s| s.to_string()).collect(),
            reason: if n == 1 { 0 } else { 1 },
            note: if n == 1 {
                String::new()
            } else {
                "pleno kecamatan".into()
            },
            evidence_sha256: String::new(),
            author,
            // A revision of before times were recorded has none.
            at_ms: if n == 2 {
                0
            } else {
                1_607_500_000_000 + n as i64
            },
        }
    }

    fn histories() -> Vec<pb::ResultHistory> {
        vec![
            pb::ResultHistory {
                revisions: vec![revision(1, &[], principal("op-a"))],
            },
            pb::ResultHistory {
                revisions: vec![
                    revision(1, &["dpt_exceeded", ""], principal("op-a")),
                    revision(2, &[], None),
                    revision(3, &["sah_total"], principal("admin")),
                ],
            },
            pb::ResultHistory {
                revisions: vec![pb::Revision {
                    submission: None,
                    ..revision(1, &[], None)
                }],
            },
            pb::ResultHistory {
                revisions: vec![pb::Revision::default()],
            },
        ]
    }

    #[test]
    fn a_spliced_view_is_byte_for_byte_the_built_one() {
        for h in histories() {
            let mut out = Vec::new();
            encode_view(&h.encode_to_vec(), &mut out).expect("well-formed");
            assert_eq!(out, super::super::view(&h).encode_to_vec(), "{h:?}");
        }
    }

    #[test]
    fn a_record_without_revisions_or_cut_short_has_no_view() {
        assert!(encode_view(&[], &mut Vec::new()).is_none());
        let bytes = histories()[1].encode_to_vec();
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                encode_view(&bytes[..cut], &mut Vec::new()).is_none(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_tps_and_an_item_encode_as_prost_would() {
        let cases = [
            pb::Tps {
                tps_id: "a-1".into(),
                desa_code: "d".into(),
                number: 3,
                dpt: Some(0),
            },
            pb::Tps {
                tps_id: "a-2".into(),
                desa_code: "d".into(),
                number: 0,
                dpt: None,
            },
        ];
        for t in cases {
            let mut tps = Vec::new();
            encode_tps(&t.tps_id, &t.desa_code, t.number, t.dpt, &mut tps);
            assert_eq!(tps, t.encode_to_vec());
            assert_eq!(tps_id_of(&tps), Some(t.tps_id.as_bytes()));
            let h = &histories()[1];
            let mut item = Vec::new();
            encode_item(&tps, &h.encode_to_vec(), &mut Vec::new(), &mut item).unwrap();
            let built = pb::JanggalItem {
                tps: Some(t),
                result: Some(super::super::view(h)),
                encoded: None,
            };
            assert_eq!(item, built.encode_to_vec());
            assert_eq!(pb::JanggalItem::decode(item.as_slice()).unwrap(), built);
        }
    }
}
