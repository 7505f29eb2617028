//! `JanggalItem` (a result with its TPS, `tally.proto`), written by hand
//! rather than generated so that a server can send an item it encoded
//! itself: the export splices each item from the stored record's bytes
//! instead of decoding the record into owned strings and encoding it again.
//! On the wire it is exactly the generated message.

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType, message, skip_field};

use crate::v1::{StoredResult, Tps};

#[derive(Clone, PartialEq, Default)]
pub struct JanggalItem {
    pub tps: Option<Tps>,
    pub result: Option<StoredResult>,
    /// The item's whole encoding, sent instead of `tps` and `result` when
    /// set. Only a sender sets it; decoding fills the fields.
    pub encoded: Option<Bytes>,
}

impl JanggalItem {
    pub const TPS_TAG: u32 = 1;
    pub const RESULT_TAG: u32 = 2;
}

impl std::fmt::Debug for JanggalItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("JanggalItem");
        d.field("tps", &self.tps).field("result", &self.result);
        if let Some(e) = &self.encoded {
            d.field("encoded_len", &e.len());
        }
        d.finish()
    }
}

impl prost::Message for JanggalItem {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if let Some(e) = &self.encoded {
            buf.put_slice(e);
            return;
        }
        if let Some(t) = &self.tps {
            message::encode(Self::TPS_TAG, t, buf);
        }
        if let Some(r) = &self.result {
            message::encode(Self::RESULT_TAG, r, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            Self::TPS_TAG => message::merge(wire_type, self.tps.get_or_insert_default(), buf, ctx),
            Self::RESULT_TAG => {
                message::merge(wire_type, self.result.get_or_insert_default(), buf, ctx)
            }
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        if let Some(e) = &self.encoded {
            return e.len();
        }
        self.tps
            .as_ref()
            .map_or(0, |t| message::encoded_len(Self::TPS_TAG, t))
            + self
                .result
                .as_ref()
                .map_or(0, |r| message::encoded_len(Self::RESULT_TAG, r))
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::v1::{CandidateVotes, Submission};

    fn item() -> JanggalItem {
        JanggalItem {
            tps: Some(Tps {
                tps_id: "63.02.01.2001-003".into(),
                desa_code: "63.02.01.2001".into(),
                number: 3,
                dpt: Some(0),
            }),
            result: Some(StoredResult {
                submission: Some(Submission {
                    submission_id: "s-1".into(),
                    votes: vec![CandidateVotes {
                        candidate_id: "01".into(),
                        votes: 7,
                    }],
                    sah: Some(7),
                    ..Default::default()
                }),
                revision: 2,
                log_index: 99,
                janggal: vec!["a".into(), String::new()],
                ..Default::default()
            }),
            encoded: None,
        }
    }

    #[test]
    fn an_item_decodes_from_its_own_encoding_or_from_one_it_carries() {
        let it = item();
        let bytes = it.encode_to_vec();
        assert_eq!(JanggalItem::decode(bytes.as_slice()).unwrap(), it);
        // Carried bytes are sent as they are, whatever the fields say.
        let carried = JanggalItem {
            encoded: Some(Bytes::from(bytes.clone())),
            ..Default::default()
        };
        assert_eq!(carried.encoded_len(), bytes.len());
        assert_eq!(carried.encode_to_vec(), bytes);
        assert_eq!(
            JanggalItem::decode(carried.encode_to_vec().as_slice()).unwrap(),
            it
        );
    }

    #[test]
    fn unknown_fields_are_skipped_and_an_empty_item_encodes_to_nothing() {
        let mut bytes = item().encode_to_vec();
        // Field 9, varint 5: a newer sender's field.
        bytes.extend_from_slice(&[9 << 3, 5]);
        assert_eq!(JanggalItem::decode(bytes.as_slice()).unwrap(), item());
        assert!(JanggalItem::default().encode_to_vec().is_empty());
    }
}
