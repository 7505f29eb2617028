//! An operator's slice of the registry: what their station needs to work
//! offline (their TPS, the regions above them, the contests that cover
//! them), read from the tree without copying anything else.

use std::collections::BTreeSet;

use rekap_proto::pb;

use super::rules::{code, reject};
use super::{Action, TallyState, current, scope_of};

/// Most TPS one slice holds: a kabupaten has a few thousand, a whole
/// provinsi's tens of thousands are no operator's work.
pub const MAX_SLICE_TPS: usize = 20_000;

impl TallyState {
    /// The slice of the operator `who`: refused for a caller shut out or
    /// holding no operator grant, and past `MAX_SLICE_TPS`.
    pub fn operator_slice(
        &self,
        who: &pb::Principal,
    ) -> Result<pb::GetOperatorSliceResponse, pb::Rejection> {
        self.authorize(Some(who), &Action::Status)?;
        let scopes = self
            .users
            .get(&who.name)
            .and_then(|u| u.scopes(pb::Role::Operator))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                reject(
                    code::PERMISSION_DENIED,
                    "permission:submit",
                    format!(
                        "{} holds no operator grant, so has no TPS to enter",
                        who.name
                    ),
                )
            })?;
        let mut tps: BTreeSet<&str> = BTreeSet::new();
        for scope in scopes {
            if let Some(i) = self.tps.get_index_of(scope.as_str()) {
                tps.insert(self.tps_id(i as u32));
            } else if self.regions.contains_key(scope.as_str()) {
                self.tps_below(scope, &mut tps);
            }
            if tps.len() > MAX_SLICE_TPS {
                return Err(reject(
                    code::FAILED_PRECONDITION,
                    "slice_size",
                    format!(
                        "{}'s operator scopes hold over {MAX_SLICE_TPS} TPS; a station works for a kecamatan or a kabupaten",
                        who.name
                    ),
                ));
            }
        }
        let mut above: BTreeSet<&str> = BTreeSet::new();
        let rows: Vec<pb::Tps> = tps.iter().filter_map(|id| self.tps_pb(id)).collect();
        for t in &rows {
            if !above.contains(t.desa_code.as_str()) {
                above.extend(self.chain_of(&t.desa_code));
            }
        }
        let mut regions: Vec<pb::Region> = above
            .iter()
            .filter_map(|c| self.regions.get(*c).map(|n| n.region.clone()))
            .collect();
        regions.sort_by(|a, b| (a.level, &a.code).cmp(&(b.level, &b.code)));
        let contests: Vec<pb::Contest> = self
            .contests
            .values()
            .filter(|c| above.contains(scope_of(c)))
            .cloned()
            .collect();
        let reported = self.reported(&rows, &contests);
        Ok(pb::GetOperatorSliceResponse {
            user: who.name.clone(),
            scopes: scopes.iter().cloned().collect(),
            regions,
            tps: rows,
            contests,
            applied_index: 0,
            reported,
        })
    }

    /// The results the slice's TPS already have, one read per TPS and
    /// contest that covers it.
    fn reported(&self, rows: &[pb::Tps], contests: &[pb::Contest]) -> Vec<pb::ReportedResult> {
        let mut out = Vec::new();
        for t in rows {
            let chain = self.chain_of(&t.desa_code);
            for c in contests.iter().filter(|c| chain.contains(&scope_of(c))) {
                if let Some(h) = self.history(&t.tps_id, &c.contest_id) {
                    let cur = current(&h);
                    out.push(pb::ReportedResult {
                        tps_id: t.tps_id.clone(),
                        contest_id: c.contest_id.clone(),
                        revision: cur.revision,
                        log_index: cur.log_index,
                        author: cur
                            .author
                            .as_ref()
                            .map(|a| a.name.clone())
                            .unwrap_or_default(),
                    });
                }
            }
        }
        out
    }

    /// Adds the ids of every TPS below region `code` to `out`, stopping
    /// early once there are more than the slice may hold.
    fn tps_below<'a>(&'a self, code: &str, out: &mut BTreeSet<&'a str>) {
        let mut stack = vec![code];
        while let Some(c) = stack.pop() {
            let Some(node) = self.regions.get(c) else {
                continue;
            };
            out.extend(node.tps.iter().map(|&i| self.tps_id(i)));
            if out.len() > MAX_SLICE_TPS {
                return;
            }
            stack.extend(node.children.iter().map(String::as_str));
        }
    }
}

#[cfg(test)]
mod tests {
    use rekap_proto::pb;
    use rekap_proto::pb::command::Kind;
    use rekap_proto::pb::user_admin_request::Op;

    use super::super::TallyState;
    use super::super::tests::loaded;

    fn user(name: &str) -> pb::Principal {
        pb::Principal {
            kind: pb::PrincipalKind::User as i32,
            name: name.into(),
            ..Default::default()
        }
    }

    fn apply(st: &mut TallyState, index: &mut u64, kind: Kind, who: pb::Principal) {
        *index += 1;
        let cmd = pb::Command {
            kind: Some(kind),
            principal: Some(who),
            proposed_at_ms: 0,
        };
        st.apply(&cmd, *index);
    }

    #[test]
    fn an_operator_gets_their_tps_the_regions_above_and_the_covering_contests() {
        let mut st = loaded();
        let mut ix = 100;
        let node = pb::Principal {
            kind: pb::PrincipalKind::Node as i32,
            name: "node-1".into(),
            ..Default::default()
        };
        let boot = Kind::BootstrapAdmin(pb::BootstrapAdmin {
            name: "root".into(),
        });
        apply(&mut st, &mut ix, boot, node);
        let admin = |op| Kind::UserAdmin(pb::UserAdminRequest { op: Some(op) });
        for name in ["pps", "saksi"] {
            let add = Op::Add(pb::AddUserRequest { name: name.into() });
            apply(&mut st, &mut ix, admin(add), user("root"));
        }
        let grant = |name: &str, role: pb::Role, scopes: &[&str]| {
            Op::Grant(pb::GrantRoleRequest {
                name: name.into(),
                role: role as i32,
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
            })
        };
        let g = grant("pps", pb::Role::Operator, &["63.02.01", "C1"]);
        apply(&mut st, &mut ix, admin(g), user("root"));
        let g = grant("saksi", pb::Role::Witness, &["63"]);
        apply(&mut st, &mut ix, admin(g), user("root"));

        let a1 = super::super::tests::sub("s-a1", "A1", "PPWP", 10, 5, 1);
        let submit = Kind::Submit(pb::SubmitBatchRequest {
            submissions: vec![a1],
        });
        apply(&mut st, &mut ix, submit, user("pps"));
        let s = st.operator_slice(&user("pps")).expect("a slice");
        let reported: Vec<(&str, &str, u64)> = s
            .reported
            .iter()
            .map(|r| (r.tps_id.as_str(), r.contest_id.as_str(), r.log_index))
            .collect();
        assert_eq!(reported, [("A1", "PPWP", ix)], "the result A1 has already");
        assert_eq!(s.reported[0].author, "pps");
        let tps: Vec<&str> = s.tps.iter().map(|t| t.tps_id.as_str()).collect();
        assert_eq!(tps, ["A1", "A2", "C1"]);
        let contests: Vec<&str> = s.contests.iter().map(|c| c.contest_id.as_str()).collect();
        assert_eq!(
            contests,
            ["GUB-63", "PPWP"],
            "C1 (provinsi 11) adds no GUB-63 of its own"
        );
        let regions: Vec<&str> = s.regions.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(
            regions,
            [
                "ID",
                "11",
                "63",
                "11.01",
                "63.02",
                "11.01.01",
                "63.02.01",
                "11.01.01.2001",
                "63.02.01.2001"
            ],
            "parents first, nothing outside the slice (63.02.02)"
        );

        let refused = st
            .operator_slice(&user("saksi"))
            .expect_err("no operator grant");
        assert_eq!(refused.rule, "permission:submit");
        let refused = st.operator_slice(&user("nobody")).expect_err("not a user");
        assert_eq!(refused.rule, "permission:submit");
    }
}
