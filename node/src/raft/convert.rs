//! Conversions between openraft's values and the `rekap.v1` protobuf
//! messages used on the wire and on disk.

use std::collections::{BTreeMap, BTreeSet};

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, StreamAppendError, StreamAppendResult,
    TransferLeaderRequest, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, EntryPayload};
use rekap_proto::pb;

use super::cmd::Cmd;
use super::types::{
    Entry, LeaderId, LogId, Membership, NodeId, SnapshotMeta, StoredMembership, TypeConfig, Vote,
};

/// A protobuf message that does not describe a valid openraft value.
#[derive(Debug, thiserror::Error)]
#[error("malformed {0}")]
pub struct Malformed(pub &'static str);

impl From<Malformed> for tonic::Status {
    fn from(e: Malformed) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

impl From<Malformed> for std::io::Error {
    fn from(e: Malformed) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

pub type Res<T> = Result<T, Malformed>;

fn need<T>(v: Option<T>, what: &'static str) -> Res<T> {
    v.ok_or(Malformed(what))
}

pub fn leader_id_to_pb(l: &LeaderId) -> pb::LeaderId {
    pb::LeaderId {
        term: l.term,
        node_id: l.node_id,
    }
}

pub fn leader_id_from_pb(l: pb::LeaderId) -> LeaderId {
    LeaderId {
        term: l.term,
        node_id: l.node_id,
    }
}

pub fn log_id_to_pb(l: &LogId) -> pb::LogId {
    pb::LogId {
        leader_id: Some(leader_id_to_pb(&l.leader_id)),
        index: l.index,
    }
}

/// A log id (tests, and the position a restore seeds).
pub(crate) fn log_id(term: u64, node_id: NodeId, index: u64) -> LogId {
    LogId {
        leader_id: LeaderId { term, node_id },
        index,
    }
}

pub fn log_id_from_pb(l: pb::LogId) -> Res<LogId> {
    Ok(LogId {
        leader_id: leader_id_from_pb(need(l.leader_id, "log id")?),
        index: l.index,
    })
}

pub fn opt_log_id_to_pb(l: Option<&LogId>) -> Option<pb::LogId> {
    l.map(log_id_to_pb)
}

pub fn opt_log_id_from_pb(l: Option<pb::LogId>) -> Res<Option<LogId>> {
    l.map(log_id_from_pb).transpose()
}

pub fn vote_to_pb(v: &Vote) -> pb::Vote {
    pb::Vote {
        leader_id: Some(leader_id_to_pb(&v.leader_id)),
        committed: v.committed,
    }
}

pub fn vote_from_pb(v: Option<pb::Vote>) -> Res<Vote> {
    let v = need(v, "vote")?;
    Ok(Vote {
        leader_id: leader_id_from_pb(need(v.leader_id, "vote")?),
        committed: v.committed,
    })
}

pub fn membership_to_pb(m: &Membership) -> pb::Membership {
    pb::Membership {
        configs: m
            .get_joint_config()
            .iter()
            .map(|set| pb::VoterSet {
                node_ids: set.iter().copied().collect(),
            })
            .collect(),
        nodes: m
            .nodes()
            .map(|(id, n)| pb::NodeAddr {
                node_id: *id,
                addr: n.addr.clone(),
            })
            .collect(),
    }
}

pub fn membership_from_pb(m: Option<pb::Membership>) -> Res<Membership> {
    let m = need(m, "membership")?;
    let configs: Vec<BTreeSet<NodeId>> = m
        .configs
        .into_iter()
        .map(|s| s.node_ids.into_iter().collect())
        .collect();
    let nodes: BTreeMap<NodeId, BasicNode> = m
        .nodes
        .into_iter()
        .map(|n| (n.node_id, BasicNode { addr: n.addr }))
        .collect();
    Membership::new(configs, nodes).map_err(|_| Malformed("membership"))
}

pub fn stored_membership_to_pb(m: &StoredMembership) -> pb::StoredMembership {
    pb::StoredMembership {
        log_id: opt_log_id_to_pb(m.log_id().as_ref()),
        membership: Some(membership_to_pb(m.membership())),
    }
}

pub fn stored_membership_from_pb(m: Option<pb::StoredMembership>) -> Res<StoredMembership> {
    let m = need(m, "stored membership")?;
    Ok(StoredMembership::new(
        opt_log_id_from_pb(m.log_id)?,
        membership_from_pb(m.membership)?,
    ))
}

pub fn entry_to_pb(e: &Entry) -> pb::Entry {
    use pb::entry::Payload;
    let payload = match &e.payload {
        EntryPayload::Blank => Payload::Blank(pb::Empty {}),
        EntryPayload::Normal(cmd) => Payload::Normal((**cmd).clone()),
        EntryPayload::Membership(m) => Payload::Membership(membership_to_pb(m)),
    };
    pb::Entry {
        log_id: Some(log_id_to_pb(&e.log_id)),
        payload: Some(payload),
    }
}

/// The bytes of `entry_to_pb(e).encode_to_vec()`, without cloning the
/// command into a `pb::Entry` first: prost writes a message's fields in
/// field order, so the log id (1) and then the one payload field.
pub fn encode_entry(e: &Entry, buf: &mut Vec<u8>) {
    use prost::encoding::message;
    message::encode(1, &log_id_to_pb(&e.log_id), buf);
    match &e.payload {
        EntryPayload::Blank => message::encode(2, &pb::Empty {}, buf),
        EntryPayload::Normal(cmd) => {
            // The command's kept encoding, as a length-delimited field.
            let bytes = cmd.encoded();
            prost::encoding::encode_key(3, prost::encoding::WireType::LengthDelimited, buf);
            prost::encoding::encode_varint(bytes.len() as u64, buf);
            buf.extend_from_slice(bytes);
        }
        EntryPayload::Membership(m) => message::encode(4, &membership_to_pb(m), buf),
    }
}

pub fn entry_from_pb(e: pb::Entry) -> Res<Entry> {
    use pb::entry::Payload;
    let payload = match need(e.payload, "entry payload")? {
        Payload::Blank(_) => EntryPayload::Blank,
        Payload::Normal(cmd) => EntryPayload::Normal(std::sync::Arc::new(Cmd::new(cmd))),
        Payload::Membership(m) => EntryPayload::Membership(membership_from_pb(Some(m))?),
    };
    Ok(Entry {
        log_id: log_id_from_pb(need(e.log_id, "entry log id")?)?,
        payload,
    })
}

pub fn snapshot_meta_to_pb(m: &SnapshotMeta) -> pb::SnapshotMeta {
    pb::SnapshotMeta {
        last_log_id: opt_log_id_to_pb(m.last_log_id.as_ref()),
        last_membership: Some(stored_membership_to_pb(&m.last_membership)),
    }
}

pub fn snapshot_meta_from_pb(m: Option<pb::SnapshotMeta>) -> Res<SnapshotMeta> {
    let m = need(m, "snapshot meta")?;
    Ok(SnapshotMeta {
        last_log_id: opt_log_id_from_pb(m.last_log_id)?,
        last_membership: stored_membership_from_pb(m.last_membership)?,
    })
}

pub fn append_request_to_pb(r: &AppendEntriesRequest<TypeConfig>) -> pb::AppendRequest {
    pb::AppendRequest {
        vote: Some(vote_to_pb(&r.vote)),
        prev_log_id: opt_log_id_to_pb(r.prev_log_id.as_ref()),
        entries: r.entries.iter().map(entry_to_pb).collect(),
        leader_commit: opt_log_id_to_pb(r.leader_commit.as_ref()),
    }
}

/// The request `append_request_to_pb` describes, for `StreamAppend`, with
/// each entry encoded by `encode_entry` (so each command's kept encoding is
/// copied, never re-encoded or cloned).
pub fn append_request_out(r: &AppendEntriesRequest<TypeConfig>) -> pb::AppendRequestOut {
    pb::AppendRequestOut {
        vote: Some(vote_to_pb(&r.vote)),
        prev_log_id: opt_log_id_to_pb(r.prev_log_id.as_ref()),
        entries: r
            .entries
            .iter()
            .map(|e| {
                let mut buf = Vec::new();
                encode_entry(e, &mut buf);
                buf
            })
            .collect(),
        leader_commit: opt_log_id_to_pb(r.leader_commit.as_ref()),
    }
}

pub fn append_request_from_pb(r: pb::AppendRequest) -> Res<AppendEntriesRequest<TypeConfig>> {
    Ok(AppendEntriesRequest {
        vote: vote_from_pb(r.vote)?,
        prev_log_id: opt_log_id_from_pb(r.prev_log_id)?,
        entries: r
            .entries
            .into_iter()
            .map(entry_from_pb)
            .collect::<Res<_>>()?,
        leader_commit: opt_log_id_from_pb(r.leader_commit)?,
    })
}

pub fn append_response_to_pb(r: &AppendEntriesResponse<TypeConfig>) -> pb::AppendResponse {
    use pb::append_response::Result as R;
    let result = match r {
        AppendEntriesResponse::Success => R::Success(pb::Empty {}),
        AppendEntriesResponse::PartialSuccess(l) => R::PartialSuccess(pb::OptionalLogId {
            log_id: opt_log_id_to_pb(l.as_ref()),
        }),
        AppendEntriesResponse::Conflict => R::Conflict(pb::Empty {}),
        AppendEntriesResponse::HigherVote(v) => R::HigherVote(vote_to_pb(v)),
    };
    pb::AppendResponse {
        result: Some(result),
    }
}

pub fn append_response_from_pb(r: pb::AppendResponse) -> Res<AppendEntriesResponse<TypeConfig>> {
    use pb::append_response::Result as R;
    Ok(match need(r.result, "append response")? {
        R::Success(_) => AppendEntriesResponse::Success,
        R::PartialSuccess(l) => {
            AppendEntriesResponse::PartialSuccess(opt_log_id_from_pb(l.log_id)?)
        }
        R::Conflict(_) => AppendEntriesResponse::Conflict,
        R::HigherVote(v) => AppendEntriesResponse::HigherVote(vote_from_pb(Some(v))?),
    })
}

pub fn stream_result_to_pb(r: &StreamAppendResult<TypeConfig>) -> pb::StreamAppendResponse {
    use pb::stream_append_response::Result as R;
    let result = match r {
        Ok(l) => R::Success(pb::OptionalLogId {
            log_id: opt_log_id_to_pb(l.as_ref()),
        }),
        Err(StreamAppendError::Conflict(l)) => R::Conflict(log_id_to_pb(l)),
        Err(StreamAppendError::HigherVote(v)) => R::HigherVote(vote_to_pb(v)),
    };
    pb::StreamAppendResponse {
        result: Some(result),
        durable: None,
    }
}

pub fn stream_result_from_pb(r: pb::StreamAppendResponse) -> Res<StreamAppendResult<TypeConfig>> {
    use pb::stream_append_response::Result as R;
    Ok(match need(r.result, "stream append response")? {
        R::Success(l) => Ok(opt_log_id_from_pb(l.log_id)?),
        R::Conflict(l) => Err(StreamAppendError::Conflict(log_id_from_pb(l)?)),
        R::HigherVote(v) => Err(StreamAppendError::HigherVote(vote_from_pb(Some(v))?)),
    })
}

pub fn vote_request_to_pb(r: &VoteRequest<TypeConfig>) -> pb::VoteRequest {
    pb::VoteRequest {
        vote: Some(vote_to_pb(&r.vote)),
        last_log_id: opt_log_id_to_pb(r.last_log_id.as_ref()),
        leadership_transfer: r.leadership_transfer,
    }
}

pub fn vote_request_from_pb(r: pb::VoteRequest) -> Res<VoteRequest<TypeConfig>> {
    Ok(VoteRequest {
        vote: vote_from_pb(r.vote)?,
        last_log_id: opt_log_id_from_pb(r.last_log_id)?,
        leadership_transfer: r.leadership_transfer,
    })
}

pub fn vote_response_to_pb(r: &VoteResponse<TypeConfig>) -> pb::VoteResponse {
    pb::VoteResponse {
        vote: Some(vote_to_pb(&r.vote)),
        vote_granted: r.vote_granted,
        last_log_id: opt_log_id_to_pb(r.last_log_id.as_ref()),
    }
}

pub fn vote_response_from_pb(r: pb::VoteResponse) -> Res<VoteResponse<TypeConfig>> {
    Ok(VoteResponse {
        vote: vote_from_pb(r.vote)?,
        vote_granted: r.vote_granted,
        last_log_id: opt_log_id_from_pb(r.last_log_id)?,
    })
}

pub fn transfer_request_to_pb(
    r: &TransferLeaderRequest<TypeConfig>,
) -> pb::RaftTransferLeaderRequest {
    pb::RaftTransferLeaderRequest {
        from_leader: Some(vote_to_pb(r.from_leader())),
        to_node_id: *r.to_node_id(),
        last_log_id: opt_log_id_to_pb(r.last_log_id()),
    }
}

pub fn transfer_request_from_pb(
    r: pb::RaftTransferLeaderRequest,
) -> Res<TransferLeaderRequest<TypeConfig>> {
    Ok(TransferLeaderRequest::new(
        vote_from_pb(r.from_leader)?,
        r.to_node_id,
        opt_log_id_from_pb(r.last_log_id)?,
    ))
}

pub fn transfer_response_to_pb(
    r: &openraft::raft::TransferLeaderResponse<TypeConfig>,
) -> pb::RaftTransferLeaderReply {
    use openraft::raft::TransferLeaderError as E;
    use pb::raft_transfer_leader_reply::Result as R;
    let result = match r {
        Ok(()) => R::Ok(pb::Empty {}),
        Err(E::VoteChanged { expected, actual }) => R::VoteChanged(pb::VoteChanged {
            expected: Some(vote_to_pb(expected)),
            actual: Some(vote_to_pb(actual)),
        }),
        Err(E::LogNotFlushed { expected, actual }) => R::LogNotFlushed(pb::LogNotFlushed {
            expected: opt_log_id_to_pb(expected.as_ref()),
            actual: opt_log_id_to_pb(actual.as_ref()),
        }),
    };
    pb::RaftTransferLeaderReply {
        result: Some(result),
    }
}

pub fn transfer_response_from_pb(
    r: pb::RaftTransferLeaderReply,
) -> Res<openraft::raft::TransferLeaderResponse<TypeConfig>> {
    use openraft::raft::TransferLeaderError as E;
    use pb::raft_transfer_leader_reply::Result as R;
    Ok(match need(r.result, "transfer leader reply")? {
        R::Ok(_) => Ok(()),
        R::VoteChanged(v) => Err(E::VoteChanged {
            expected: vote_from_pb(v.expected)?,
            actual: vote_from_pb(v.actual)?,
        }),
        R::LogNotFlushed(v) => Err(E::LogNotFlushed {
            expected: opt_log_id_from_pb(v.expected)?,
            actual: opt_log_id_from_pb(v.actual)?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn encode_entry_writes_the_bytes_of_the_pb_entry() {
        let log_id = log_id(7, 2, 1234);
        let cmd = pb::Command {
            principal: Some(pb::Principal {
                name: "op-1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let members: BTreeMap<NodeId, BasicNode> =
            [(1, BasicNode::new("a:1")), (2, BasicNode::new("b:2"))].into();
        let membership = Membership::new(vec![members.keys().copied().collect()], members).unwrap();
        for payload in [
            EntryPayload::Blank,
            EntryPayload::Normal(std::sync::Arc::new(Cmd::new(cmd))),
            EntryPayload::Membership(membership),
        ] {
            let e = Entry { log_id, payload };
            let mut buf = Vec::new();
            encode_entry(&e, &mut buf);
            assert_eq!(buf, entry_to_pb(&e).encode_to_vec());
            let back = entry_from_pb(pb::Entry::decode(buf.as_slice()).unwrap()).unwrap();
            assert_eq!(entry_to_pb(&back), entry_to_pb(&e));
        }
    }

    #[test]
    fn an_outgoing_append_is_the_bytes_of_the_append_request() {
        let cmd = |name: &str| {
            EntryPayload::Normal(std::sync::Arc::new(Cmd::new(pb::Command {
                principal: Some(pb::Principal {
                    name: name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })))
        };
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(3, 1, 40)),
            entries: vec![
                Entry {
                    log_id: log_id(3, 1, 41),
                    payload: cmd("op-1"),
                },
                Entry {
                    log_id: log_id(3, 1, 42),
                    payload: EntryPayload::Blank,
                },
                Entry {
                    log_id: log_id(3, 1, 43),
                    payload: cmd("op-2"),
                },
            ],
            leader_commit: Some(log_id(3, 1, 41)),
        };
        let out = append_request_out(&req).encode_to_vec();
        assert_eq!(out, append_request_to_pb(&req).encode_to_vec());
        let back =
            append_request_from_pb(pb::AppendRequest::decode(out.as_slice()).unwrap()).unwrap();
        assert_eq!(
            append_request_to_pb(&back).encode_to_vec(),
            append_request_to_pb(&req).encode_to_vec()
        );
    }
}
