//! Membership operations as ops staff run them (`rekapctl cluster ...`),
//! for the scenarios that change the cluster under load.

use std::time::Duration;

use rekap_client::Client;
use rekap_client::proto as pb;

use crate::{Nodes, status, wait_until};

fn change(c: pb::change_membership_request::Change) -> pb::ChangeMembershipRequest {
    pb::ChangeMembershipRequest { change: Some(c) }
}

/// Adds a learner and waits until it has caught up.
pub async fn add_learner(admin: &Client, id: u64, addr: String) -> pb::MembershipResponse {
    add_learner_as(admin, id, addr, true).await
}

/// Adds a learner; waits for it to catch up only if `blocking`.
pub async fn add_learner_as(
    admin: &Client,
    id: u64,
    addr: String,
    blocking: bool,
) -> pb::MembershipResponse {
    let req = pb::AddLearnerRequest {
        node: Some(pb::NodeAddr { node_id: id, addr }),
        blocking,
    };
    admin
        .admin_patient(|mut a| {
            let r = req.clone();
            async move { a.add_learner(r).await }
        })
        .await
        .expect("add learner")
}

pub async fn promote(admin: &Client, id: u64) -> pb::MembershipResponse {
    let req = change(pb::change_membership_request::Change::Promote(
        pb::NodeIds { node_ids: vec![id] },
    ));
    admin
        .admin(|mut a| {
            let r = req.clone();
            async move { a.change_membership(r).await }
        })
        .await
        .expect("promote")
}

pub async fn remove(admin: &Client, id: u64) -> pb::MembershipResponse {
    let req = change(pb::change_membership_request::Change::Remove(pb::NodeIds {
        node_ids: vec![id],
    }));
    admin
        .admin(|mut a| {
            let r = req.clone();
            async move { a.change_membership(r).await }
        })
        .await
        .expect("remove")
}

/// Waits until one of `survivors` leads a settled (non-joint) membership
/// whose voters exclude `victim`.
pub async fn wait_removed(nodes: &impl Nodes, survivors: &[u64], victim: u64, timeout: Duration) {
    wait_until("a leader without the removed node", timeout, || async {
        for &id in survivors {
            let s = status(nodes, id).await?;
            let voters: Vec<u64> = s
                .members
                .iter()
                .filter(|m| m.role == "voter")
                .map(|m| m.node_id)
                .collect();
            if s.state == "leader" && !s.joint && !voters.contains(&victim) {
                return Some(voters.len());
            }
        }
        None
    })
    .await;
}
