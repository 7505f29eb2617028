//! Finding every node for `cluster status` and `verify`: each configured
//! endpoint first, then every member none of them turned out to be, at its
//! advertised address. A dead node is one row, not two: the endpoint that
//! failed and the member that did not answer are the same node when their
//! addresses resolve to the same socket, or when they are the only ones
//! left unexplained (behind port mapping the advertised address may not
//! even resolve here). It is then asked once, at the endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use rekap_client::proto as pb;

/// One node asked for its status.
pub struct Probe {
    /// Where it was asked.
    pub addr: String,
    /// Its id: from its answer, or from the membership when it is a member
    /// that did not answer.
    pub node_id: Option<u64>,
    /// The address the membership gives it, when that differs from `addr`.
    pub advertised: Option<String>,
    pub answer: Result<pb::ClusterStatusResponse, tonic::Status>,
}

pub async fn discover(c: &rekap_client::Client) -> Vec<Probe> {
    let mut out = Vec::new();
    let mut members = BTreeMap::new();
    for addr in c.endpoints() {
        let answer = c.status_of(&addr).await;
        if let Ok(s) = &answer {
            members.extend(s.members.iter().map(|m| (m.node_id, m.addr.clone())));
        }
        out.push(Probe {
            node_id: answer.as_ref().ok().map(|s| s.node_id),
            advertised: None,
            addr,
            answer,
        });
    }
    let seen: BTreeSet<u64> = out.iter().filter_map(|p| p.node_id).collect();
    let asked: BTreeSet<String> = out.iter().map(|p| p.addr.clone()).collect();
    let unseen: Vec<(u64, String)> = members
        .into_iter()
        .filter(|(id, addr)| !seen.contains(id) && !asked.contains(addr))
        .collect();
    let left = attribute(&mut out, unseen).await;
    let mut dead = Vec::new();
    for (id, addr) in left {
        let answer = c.status_of(&addr).await;
        match answer {
            Ok(s) => out.push(Probe {
                node_id: Some(s.node_id),
                advertised: None,
                addr,
                answer: Ok(s),
            }),
            Err(e) => dead.push((id, addr, e)),
        }
    }
    eliminate(&mut out, dead);
    out
}

/// Names the failed endpoints whose address resolves to a socket an
/// unseen member's does (the same node, its address written differently);
/// returns the members left.
async fn attribute(out: &mut [Probe], unseen: Vec<(u64, String)>) -> Vec<(u64, String)> {
    let mut left = Vec::new();
    for (id, addr) in unseen {
        match same_socket(out, &addr).await {
            Some(i) => name(&mut out[i], id, addr),
            None => left.push((id, addr)),
        }
    }
    left
}

/// Adds the members that did not answer at their advertised address: by
/// elimination, one failed endpoint nobody answered for and one such
/// member are the same node.
fn eliminate(out: &mut Vec<Probe>, mut dead: Vec<(u64, String, tonic::Status)>) {
    let failed: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].answer.is_err() && out[i].node_id.is_none())
        .collect();
    if let ([i], [_]) = (failed.as_slice(), dead.as_slice()) {
        let (id, addr, _) = dead.pop().expect("one dead member");
        name(&mut out[*i], id, addr);
    }
    for (id, addr, e) in dead {
        out.push(Probe {
            addr,
            node_id: Some(id),
            advertised: None,
            answer: Err(e),
        });
    }
}

/// Marks a failed endpoint as member `id`, advertised at `addr`.
fn name(p: &mut Probe, id: u64, addr: String) {
    p.node_id = Some(id);
    p.advertised = (addr != p.addr).then_some(addr);
}

/// The failed, unidentified endpoint whose address resolves to a socket
/// `addr` resolves to.
async fn same_socket(out: &[Probe], addr: &str) -> Option<usize> {
    let wanted = resolve(addr).await;
    if wanted.is_empty() {
        return None;
    }
    for (i, p) in out.iter().enumerate() {
        if p.answer.is_err() && p.node_id.is_none() && !resolve(&p.addr).await.is_disjoint(&wanted)
        {
            return Some(i);
        }
    }
    None
}

async fn resolve(addr: &str) -> BTreeSet<SocketAddr> {
    match tokio::time::timeout(
        std::time::Duration::from_secs(1),
        tokio::net::lookup_host(addr),
    )
    .await
    {
        Ok(Ok(found)) => found.collect(),
        _ => BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(id: u64, addr: &str) -> Probe {
        Probe {
            addr: addr.into(),
            node_id: Some(id),
            advertised: None,
            answer: Ok(pb::ClusterStatusResponse {
                node_id: id,
                ..Default::default()
            }),
        }
    }

    fn down(addr: &str) -> Probe {
        Probe {
            addr: addr.into(),
            node_id: None,
            advertised: None,
            answer: Err(tonic::Status::unavailable("connection refused")),
        }
    }

    #[tokio::test]
    async fn a_dead_member_written_differently_is_its_endpoints_row() {
        let mut out = vec![up(1, "127.0.0.1:7001"), down("127.0.0.1:7004")];
        let left = attribute(&mut out, vec![(4, "localhost:7004".into())]).await;
        assert!(left.is_empty());
        assert_eq!(out[1].node_id, Some(4));
        assert_eq!(out[1].advertised.as_deref(), Some("localhost:7004"));
        // Another port is another node.
        let mut out = vec![down("127.0.0.1:7005")];
        let left = attribute(&mut out, vec![(4, "localhost:7004".into())]).await;
        assert_eq!(left.len(), 1);
        assert_eq!(out[0].node_id, None);
    }

    #[test]
    fn one_failed_endpoint_and_one_silent_member_are_one_node() {
        let silent =
            |id: u64, addr: &str| (id, addr.to_string(), tonic::Status::unavailable("dns"));
        // Behind port mapping: the advertised name does not resolve here.
        let mut out = vec![up(1, "127.0.0.1:17001"), down("127.0.0.1:17002")];
        eliminate(&mut out, vec![silent(2, "rekap-2:7001")]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].node_id, Some(2));
        assert_eq!(out[1].advertised.as_deref(), Some("rekap-2:7001"));
        // Two of each cannot be told apart: every one is listed.
        let mut out = vec![down("127.0.0.1:17002"), down("127.0.0.1:17003")];
        eliminate(
            &mut out,
            vec![silent(2, "rekap-2:7001"), silent(3, "rekap-3:7001")],
        );
        assert_eq!(out.len(), 4);
        // A silent member with every endpoint answering is its own row.
        let mut out = vec![up(1, "127.0.0.1:17001")];
        eliminate(&mut out, vec![silent(5, "10.0.0.5:7001")]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].node_id, Some(5));
    }
}
