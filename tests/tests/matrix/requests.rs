//! The request each RPC of the matrix is called with. Requests that would
//! change the cluster if allowed are built to fail on their input after
//! authorization (a stale revision, an unknown node), or to change nothing
//! (a duplicate submission, an unchanged registry row).

use rekap_client::proto as pb;
use rekap_tests::CONTEST;
use rekap_tests::workload::submission;
use tonic::Status;
use tonic::transport::Channel;

use pb::admin_client::AdminClient;
use pb::raft_client::RaftClient;
use pb::tally_client::TallyClient;

fn region(code: &str) -> pb::Region {
    pb::Region {
        code: code.into(),
        parent_code: rekap_tests::KABUPATEN.into(),
        level: pb::RegionLevel::Kecamatan as i32,
        name: format!("KECAMATAN {}", &code[code.len() - 2..]),
    }
}

/// A call that lists the services over reflection version `$v` (v1, and
/// v1alpha, which older grpcurl releases ask): allowed means the list came
/// back. The two versions are twin generated modules, hence a macro.
macro_rules! reflect {
    ($name:ident, $v:ident) => {
        async fn $name(ch: Channel) -> Result<(), Status> {
            use tonic_reflection::pb::$v as r;
            let req = r::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(r::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                )),
            };
            let mut answers = r::server_reflection_client::ServerReflectionClient::new(ch)
                .server_reflection_info(futures::stream::iter([req]))
                .await?
                .into_inner();
            match answers.message().await?.and_then(|a| a.message_response) {
                Some(r::server_reflection_response::MessageResponse::ListServicesResponse(l))
                    if l.service.iter().any(|s| s.name == "rekap.v1.Tally") =>
                {
                    Ok(())
                }
                other => panic!("reflection {} answered {other:?}", stringify!($v)),
            }
        }
    };
}

reflect!(reflect_v1, v1);
reflect!(reflect_v1alpha, v1alpha);

/// Calls `rpc` on `ch` about `(tps, kecamatan)`. Ok means authorization let
/// it through (the answer may still be a refusal of its input).
pub async fn send(rpc: &str, ch: Channel, (tps, kec): &(String, String)) -> Result<(), Status> {
    let mut t = TallyClient::new(ch.clone());
    let mut a = AdminClient::new(ch.clone());
    let input_refusal = |r: Result<(), Status>| match r {
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
            ) =>
        {
            Err(s)
        }
        Err(s)
            if s.code() == tonic::Code::Unavailable
                && s.metadata().get("x-rekap-rule").is_none() =>
        {
            Err(s)
        }
        _ => Ok(()),
    };
    let stale = 99;
    let mut sub = submission(tps, 1);
    sub.submission_id = format!("matrix-{rpc}");
    let read = |consistency| consistency as i32;
    let lin = read(pb::Consistency::Linearizable);
    let page = pb::ListJanggalRequest {
        region_code: kec.clone(),
        contest_id: CONTEST.into(),
        page_size: 10,
        page_token: String::new(),
        consistency: lin,
    };
    let r: Result<(), Status> = match rpc {
        "Tally.Submit" => t
            .submit(pb::SubmitRequest {
                submission: Some(sub),
            })
            .await
            .map(drop),
        "Tally.SubmitBatch" => {
            let resp = t
                .submit_batch(pb::SubmitBatchRequest {
                    submissions: vec![sub],
                })
                .await?;
            super::batch_verdict(&resp.into_inner().items)
        }
        "Tally.GetTpsResult" => t
            .get_tps_result(pb::GetTpsResultRequest {
                tps_id: tps.clone(),
                contest_id: CONTEST.into(),
                consistency: lin,
            })
            .await
            .map(drop),
        "Tally.GetTotals" => t
            .get_totals(pb::GetTotalsRequest {
                region_code: kec.clone(),
                contest_id: CONTEST.into(),
                consistency: lin,
            })
            .await
            .map(drop),
        "Tally.GetProgress" => t
            .get_progress(pb::GetProgressRequest {
                region_code: kec.clone(),
                contest_id: CONTEST.into(),
                consistency: lin,
            })
            .await
            .map(drop),
        "Tally.ListMissingTps" => t
            .list_missing_tps(pb::ListMissingTpsRequest {
                region_code: kec.clone(),
                contest_id: CONTEST.into(),
                page_size: 10,
                page_token: String::new(),
                consistency: lin,
            })
            .await
            .map(drop),
        "Tally.Correct" => {
            let mut numbers = submission(tps, 3);
            numbers.submission_id = String::new();
            t.correct(pb::CorrectRequest {
                request_id: "matrix-correct".into(),
                tps_id: tps.clone(),
                contest_id: CONTEST.into(),
                replaces_revision: stale,
                reason: pb::CorrectionReason::EntryError as i32,
                submission: Some(numbers),
                ..Default::default()
            })
            .await
            .map(drop)
        }
        "Tally.ClearFlags" => t
            .clear_flags(pb::ClearFlagsRequest {
                request_id: "matrix-clear".into(),
                tps_id: tps.clone(),
                contest_id: CONTEST.into(),
                replaces_revision: stale,
                reason: pb::CorrectionReason::Recount as i32,
                ..Default::default()
            })
            .await
            .map(drop),
        "Tally.MarkReviewed" => t
            .mark_reviewed(pb::ReviewRequest {
                request_id: "matrix-review".into(),
                tps_id: tps.clone(),
                contest_id: CONTEST.into(),
                replaces_revision: stale,
                note: String::new(),
            })
            .await
            .map(drop),
        "Tally.FileObjection" => t
            .file_objection(pb::ObjectionRequest {
                request_id: "matrix-object".into(),
                tps_id: tps.clone(),
                contest_id: CONTEST.into(),
                replaces_revision: stale,
                text: "angka di C.Hasil tidak sama dengan salinan saksi".into(),
                evidence_sha256: String::new(),
            })
            .await
            .map(drop),
        "Tally.GetTpsHistory" => t
            .get_tps_history(pb::GetTpsHistoryRequest {
                tps_id: tps.clone(),
                contest_id: CONTEST.into(),
                consistency: lin,
            })
            .await
            .map(drop),
        "Tally.GetOperatorSlice" => t
            .get_operator_slice(pb::GetOperatorSliceRequest { consistency: lin })
            .await
            .map(drop),
        "Tally.ListChildren" => t
            .list_children(pb::ListChildrenRequest {
                region_code: kec.clone(),
                contest_id: CONTEST.into(),
                consistency: lin,
            })
            .await
            .map(drop),
        "Tally.ListJanggal" => t.list_janggal(page.clone()).await.map(drop),
        "Tally.ListResults" => t.list_results(page).await.map(drop),
        "Admin.LoadRegistry" => a
            .load_registry(pb::LoadRegistryRequest {
                regions: vec![region(kec)],
                ..Default::default()
            })
            .await
            .map(drop),
        "Admin.ClusterStatus" => a
            .cluster_status(pb::ClusterStatusRequest {})
            .await
            .map(drop),
        "Admin.InitCluster" => a
            .init_cluster(pb::InitClusterRequest { members: vec![] })
            .await
            .map(drop),
        "Admin.AddLearner" => a
            .add_learner(pb::AddLearnerRequest {
                node: Some(pb::NodeAddr {
                    node_id: 99,
                    addr: String::new(),
                }),
                blocking: false,
            })
            .await
            .map(drop),
        "Admin.ChangeMembership" => a
            .change_membership(pb::ChangeMembershipRequest {
                change: Some(pb::change_membership_request::Change::Remove(pb::NodeIds {
                    node_ids: vec![99],
                })),
            })
            .await
            .map(drop),
        "Admin.TransferLeader" => a
            .transfer_leader(pb::TransferLeaderRequest { to_node_id: 99 })
            .await
            .map(drop),
        "Admin.GetChainHead" => a
            .get_chain_head(pb::GetChainHeadRequest { index: None })
            .await
            .map(drop),
        "Admin.ListAuditLog" => a
            .list_audit_log(pb::ListAuditLogRequest {
                after_index: u64::MAX - 1,
                page_size: 1,
            })
            .await
            .map(drop),
        "Admin.AddUser" => a
            .add_user(pb::AddUserRequest {
                name: "m-dummy".into(),
            })
            .await
            .map(drop),
        "Admin.GrantRole" => a
            .grant_role(pb::GrantRoleRequest {
                name: "m-dummy".into(),
                role: pb::Role::Observer as i32,
                scopes: vec![kec.clone()],
            })
            .await
            .map(drop),
        "Admin.RevokeRole" => a
            .revoke_role(pb::RevokeRoleRequest {
                name: "m-dummy".into(),
                role: pb::Role::Witness as i32,
                scopes: vec![],
            })
            .await
            .map(drop),
        "Admin.SetUserDisabled" => a
            .set_user_disabled(pb::SetUserDisabledRequest {
                name: "m-dummy".into(),
                disabled: false,
            })
            .await
            .map(drop),
        "Admin.RevokeCertificate" => a
            .revoke_certificate(pb::RevokeCertificateRequest {
                name: "m-dummy".into(),
                serial: "ff".into(),
            })
            .await
            .map(drop),
        "Admin.ListUsers" => a.list_users(pb::ListUsersRequest {}).await.map(drop),
        "Raft.Vote" => RaftClient::new(ch)
            .vote(pb::VoteRequest {
                vote: None,
                last_log_id: None,
                leadership_transfer: false,
            })
            .await
            .map(drop),
        "Health.Check" => tonic_health::pb::health_client::HealthClient::new(ch)
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(drop),
        "Reflection.v1" => reflect_v1(ch).await,
        "Reflection.v1alpha" => reflect_v1alpha(ch).await,
        other => panic!("no request for {other}"),
    };
    input_refusal(r)
}
