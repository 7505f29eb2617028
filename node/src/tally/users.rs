//! Users and their roles, in the replicated state: adding users, granting
//! and revoking roles, disabling users and revoking certificates, and the
//! first admin of a new cluster. Also the node ids removed from the cluster,
//! which are never admitted again.

use std::collections::{BTreeSet, HashMap};

use rustc_hash::FxHashSet;

use prost::Message;
use rekap_proto::identity::valid_user_name;
use rekap_proto::pb::{self, Role};
use sha2::Digest;

use super::rules::{code, invalid, reject};
use super::{NASIONAL, TallyState, Write, keys};

/// A user and an index of their grants by role.
#[derive(Debug, Clone)]
pub struct UserEntry {
    pub user: pb::User,
    /// FxHash sets: an operator may hold every kecamatan of the country,
    /// and each submission asks for a few codes (a `BTreeSet` of 7,000
    /// codes cost a twentieth of a follower's apply in the 2019 import).
    scopes: HashMap<i32, FxHashSet<String>>,
}

impl UserEntry {
    pub fn new(user: pb::User) -> Self {
        let mut scopes: HashMap<i32, FxHashSet<String>> = HashMap::new();
        for g in &user.grants {
            scopes.entry(g.role).or_default().insert(g.scope.clone());
        }
        UserEntry { user, scopes }
    }

    pub fn scopes(&self, role: Role) -> Option<&FxHashSet<String>> {
        self.scopes.get(&(role as i32))
    }
}

/// A certificate serial as compared: hex, lower case, no `0x`, no leading
/// zeros ("0" for zero).
pub fn normal_serial(s: &str) -> String {
    let s = s.trim().trim_start_matches("0x").to_ascii_lowercase();
    let t = s.trim_start_matches('0');
    if t.is_empty() && !s.is_empty() {
        "0".into()
    } else {
        t.to_string()
    }
}

fn role_of(r: i32) -> Result<Role, pb::Rejection> {
    match Role::try_from(r) {
        Ok(Role::Unspecified) | Err(_) => Err(invalid("role", format!("unknown role {r}"))),
        Ok(role) => Ok(role),
    }
}

impl TallyState {
    pub fn users(&self) -> impl Iterator<Item = &pb::User> {
        self.users.values().map(|u| &u.user)
    }

    pub fn removed_nodes(&self) -> &BTreeSet<u64> {
        &self.removed_nodes
    }

    pub fn is_removed(&self, node_id: u64) -> bool {
        self.removed_nodes.contains(&node_id)
    }

    /// Records node ids that a membership change dropped, so they are never
    /// admitted again. Returns the record to persist, if anything changed.
    pub fn note_membership(&mut self, before: &BTreeSet<u64>, after: &BTreeSet<u64>) -> Vec<Write> {
        let gone: Vec<u64> = before.difference(after).copied().collect();
        if gone.iter().all(|id| self.removed_nodes.contains(id)) {
            return Vec::new();
        }
        self.removed_nodes.extend(gone);
        let rec = pb::RemovedNodes {
            node_ids: self.removed_nodes.iter().copied().collect(),
        };
        self.put(keys::removed_nodes(), Some(rec.encode_to_vec()));
        std::mem::take(&mut self.log)
    }

    /// Names the cluster when its first membership is applied: a digest of
    /// that membership (ids and addresses) and its log index, the same on
    /// every node. Nothing once a cluster has an id.
    pub fn note_first_membership(&mut self, index: u64, members: &[(u64, String)]) -> Vec<Write> {
        if !self.cluster_id.is_empty() {
            return Vec::new();
        }
        let mut h = sha2::Sha256::new();
        h.update(b"rekap cluster\n");
        h.update(index.to_be_bytes());
        for (id, addr) in members {
            h.update(id.to_be_bytes());
            h.update(addr.as_bytes());
            h.update([0]);
        }
        let id = rekap_proto::backup::hex(&h.finalize()[..8]);
        self.set_cluster_id(id)
    }

    /// Gives the state a cluster id (a restore names its new cluster).
    pub fn set_cluster_id(&mut self, id: String) -> Vec<Write> {
        self.put(keys::cluster(), Some(id.clone().into_bytes()));
        self.cluster_id = id;
        std::mem::take(&mut self.log)
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Forgets that these node ids were removed: a restore's new cluster
    /// may reuse ids the old cluster had removed.
    pub fn readmit_nodes(&mut self, ids: &BTreeSet<u64>) -> Vec<Write> {
        if ids.is_disjoint(&self.removed_nodes) {
            return Vec::new();
        }
        self.removed_nodes.retain(|id| !ids.contains(id));
        let rec = pb::RemovedNodes {
            node_ids: self.removed_nodes.iter().copied().collect(),
        };
        self.put(keys::removed_nodes(), Some(rec.encode_to_vec()));
        std::mem::take(&mut self.log)
    }

    pub(super) fn bootstrap_admin(
        &mut self,
        req: &pb::BootstrapAdmin,
        log_index: u64,
    ) -> Result<pb::UserResponse, pb::Rejection> {
        if !valid_user_name(&req.name) {
            return Err(invalid(
                "user_name",
                format!("{:?} is not a valid user name", req.name),
            ));
        }
        let user = pb::User {
            name: req.name.clone(),
            grants: vec![pb::Grant {
                role: Role::Admin as i32,
                scope: NASIONAL.into(),
            }],
            created_index: log_index,
            changed_index: log_index,
            ..Default::default()
        };
        Ok(self.save_user(user, log_index))
    }

    pub(super) fn user_admin(
        &mut self,
        req: &pb::UserAdminRequest,
        log_index: u64,
    ) -> Result<pb::UserResponse, pb::Rejection> {
        use pb::user_admin_request::Op;
        let op = req
            .op
            .as_ref()
            .ok_or_else(|| invalid("required_field", "a user change names an operation"))?;
        if let Op::Add(a) = op {
            if !valid_user_name(&a.name) {
                return Err(invalid(
                    "user_name",
                    format!("{:?} is not a valid user name", a.name),
                ));
            }
            if let Some(u) = self.users.get(&a.name) {
                return Ok(pb::UserResponse {
                    user: Some(u.user.clone()),
                    log_index,
                });
            }
            let user = pb::User {
                name: a.name.clone(),
                created_index: log_index,
                ..Default::default()
            };
            return Ok(self.save_user(user, log_index));
        }
        let name = match op {
            Op::Grant(g) => &g.name,
            Op::Revoke(r) => &r.name,
            Op::SetDisabled(d) => &d.name,
            Op::RevokeCert(c) => &c.name,
            Op::Add(_) => unreachable!("handled above"),
        };
        let mut user = self
            .users
            .get(name)
            .ok_or_else(|| reject(code::NOT_FOUND, "user_exists", format!("no user {name}")))?
            .user
            .clone();
        match op {
            Op::Grant(g) => {
                let role = role_of(g.role)?;
                let scopes = if g.scopes.is_empty() {
                    vec![String::new()]
                } else {
                    g.scopes.clone()
                };
                for s in scopes {
                    let scope = self.check_scope(role, &s)?;
                    if !user
                        .grants
                        .iter()
                        .any(|x| x.role == g.role && x.scope == scope)
                    {
                        user.grants.push(pb::Grant {
                            role: g.role,
                            scope,
                        });
                    }
                }
                user.grants
                    .sort_by(|a, b| (a.role, &a.scope).cmp(&(b.role, &b.scope)));
            }
            Op::Revoke(r) => {
                let role = role_of(r.role)?;
                user.grants.retain(|x| {
                    x.role != r.role || !(r.scopes.is_empty() || r.scopes.contains(&x.scope))
                });
                if role == Role::Admin {
                    self.keep_an_admin(&user)?;
                }
            }
            Op::SetDisabled(d) => {
                user.disabled = d.disabled;
                self.keep_an_admin(&user)?;
            }
            Op::RevokeCert(c) => {
                let serial = c.serial.trim_start_matches("0x").to_ascii_lowercase();
                if serial.is_empty() || !serial.chars().all(|ch| ch.is_ascii_hexdigit()) {
                    return Err(invalid(
                        "serial",
                        format!("{:?} is not a hex serial number", c.serial),
                    ));
                }
                let serial = serial.trim_start_matches('0').to_string();
                if !user.revoked_serials.contains(&serial) {
                    user.revoked_serials.push(serial);
                }
            }
            Op::Add(_) => unreachable!("handled above"),
        }
        Ok(self.save_user(user, log_index))
    }

    /// Refuses a change that would leave the cluster without an enabled
    /// admin: nobody could manage it any more.
    fn keep_an_admin(&self, changed: &pb::User) -> Result<(), pb::Rejection> {
        let admin =
            |u: &pb::User| !u.disabled && u.grants.iter().any(|g| g.role == Role::Admin as i32);
        let others = self
            .users()
            .filter(|u| u.name != changed.name && admin(u))
            .count();
        if others == 0 && !admin(changed) {
            return Err(reject(
                code::FAILED_PRECONDITION,
                "last_admin",
                format!(
                    "{} is the last enabled admin; grant admin to someone else first",
                    changed.name
                ),
            ));
        }
        Ok(())
    }

    /// Checks a scope for a role and returns it normalised ("" is "ID").
    fn check_scope(&self, role: Role, scope: &str) -> Result<String, pb::Rejection> {
        let scope = if scope.is_empty() { NASIONAL } else { scope };
        let level = if self.tps.contains_key(scope) {
            None
        } else {
            let r = self.regions.get(scope).ok_or_else(|| {
                reject(
                    code::NOT_FOUND,
                    "scope_exists",
                    format!("no region or TPS {scope} in the registry"),
                )
            })?;
            Some(pb::RegionLevel::try_from(r.region.level).unwrap_or(pb::RegionLevel::Unspecified))
        };
        use pb::RegionLevel as L;
        let ok = match role {
            Role::Admin | Role::Auditor => level == Some(L::Nasional),
            Role::Operator => matches!(level, None | Some(L::Desa) | Some(L::Kecamatan)),
            Role::Verifier => matches!(
                level,
                Some(L::Kecamatan) | Some(L::Kabupaten) | Some(L::Provinsi) | Some(L::Nasional)
            ),
            Role::Witness | Role::Observer => true,
            Role::Unspecified => false,
        };
        if !ok {
            let allowed = match role {
                Role::Admin | Role::Auditor => "the whole cluster (ID)",
                Role::Operator => "a TPS, desa or kecamatan",
                Role::Verifier => "a kecamatan or above",
                _ => "a region or TPS",
            };
            return Err(invalid(
                "scope_level",
                format!("role {} takes {allowed}, not {scope}", role_name(role)),
            ));
        }
        Ok(scope.to_string())
    }

    fn save_user(&mut self, mut user: pb::User, log_index: u64) -> pb::UserResponse {
        user.changed_index = log_index;
        self.put(keys::user(&user.name), Some(user.encode_to_vec()));
        self.users
            .insert(user.name.clone(), UserEntry::new(user.clone()));
        pb::UserResponse {
            user: Some(user),
            log_index,
        }
    }
}

/// A role as the README and `rekapctl users` name it.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Unspecified => "unspecified",
        Role::Operator => "operator",
        Role::Verifier => "verifier",
        Role::Witness => "witness",
        Role::Observer => "observer",
        Role::Auditor => "auditor",
        Role::Admin => "admin",
    }
}
