//! The authorization decision against a reference: users with arbitrary
//! grants, states and revoked certificates, a result T1 submitted by u0 and
//! corrected by u1, and an arbitrary principal asking for an arbitrary
//! action. The reference is the role table written out as data,
//! with scope coverage from the reference tree, not the tally's code.

use arbitrary::Unstructured;
use prost::Message;
use rekap_proto::pb::{self, Role};

use super::world::{self, SCOPES, TPS};
use crate::tally::{Action, TallyState, keys};

const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];
const ROLES: [Role; 6] = [
    Role::Operator,
    Role::Verifier,
    Role::Witness,
    Role::Observer,
    Role::Auditor,
    Role::Admin,
];

/// The reference table: may `role` take this kind of action at all?
fn table(role: Role, action: &str) -> bool {
    use Role::*;
    match action {
        "submit" => role == Operator,
        "correct" => matches!(role, Operator | Verifier),
        "clear_flags" | "review" => role == Verifier,
        "object" => role == Witness,
        "read" => matches!(
            role,
            Operator | Verifier | Witness | Observer | Auditor | Admin
        ),
        "audit" => matches!(role, Auditor | Admin),
        "registry" | "membership" | "users" => role == Admin,
        _ => unreachable!("{action}"),
    }
}

/// Which scopes each role may be granted (the grant command refuses others).
fn level_ok(role: Role, scope: &str) -> bool {
    let depth = SCOPES
        .iter()
        .find(|(s, _)| *s == scope)
        .map_or(6, |(_, a)| a.len());
    match role {
        Role::Admin | Role::Auditor => scope == "ID",
        Role::Operator => depth >= 3 && scope != "63.02" && scope != "63" && scope != "ID",
        Role::Verifier => depth <= 3 && !scope.contains(".D") && !scope.starts_with('T'),
        Role::Witness | Role::Observer => true,
        Role::Unspecified => false,
    }
}

fn principal(kind: pb::PrincipalKind, name: &str, serial: &str) -> pb::Principal {
    pb::Principal {
        kind: kind as i32,
        name: name.into(),
        node_id: 0,
        cert_serial: serial.into(),
    }
}

fn apply(
    st: &mut TallyState,
    index: &mut u64,
    kind: pb::command::Kind,
    who: &pb::Principal,
) -> pb::CommandResponse {
    *index += 1;
    let cmd = pb::Command {
        kind: Some(kind),
        principal: Some(who.clone()),
        proposed_at_ms: 0,
    };
    st.apply(&cmd, *index).0
}

struct Setup {
    disabled: [bool; 3],
    revoked: [bool; 3],
    grants: Vec<(usize, Role, &'static str)>,
}

fn setup(u: &mut Unstructured) -> arbitrary::Result<(TallyState, Setup)> {
    let mut st = world::state();
    let mut index = 10;
    let admin = principal(pb::PrincipalKind::User, "root", "0a");
    let node = principal(pb::PrincipalKind::Node, "node-1", "");
    use pb::command::Kind;
    use pb::user_admin_request::Op;
    let users = |op| Kind::UserAdmin(pb::UserAdminRequest { op: Some(op) });
    apply(
        &mut st,
        &mut index,
        Kind::BootstrapAdmin(pb::BootstrapAdmin {
            name: "root".into(),
        }),
        &node,
    );
    let mut s = Setup {
        disabled: [false; 3],
        revoked: [false; 3],
        grants: Vec::new(),
    };
    for (i, name) in USERS.iter().take(3).enumerate() {
        apply(
            &mut st,
            &mut index,
            users(Op::Add(pb::AddUserRequest {
                name: (*name).into(),
            })),
            &admin,
        );
        for _ in 0..u.int_in_range(0..=3)? {
            let role = *u.choose(&ROLES)?;
            let scope = u.choose(&SCOPES)?.0;
            let grant = pb::GrantRoleRequest {
                name: (*name).into(),
                role: role as i32,
                scopes: vec![scope.into()],
            };
            let resp = apply(&mut st, &mut index, users(Op::Grant(grant)), &admin);
            let granted = matches!(resp.kind, Some(pb::command_response::Kind::User(_)));
            assert_eq!(
                granted,
                level_ok(role, scope),
                "grant {role:?} over {scope}: {resp}"
            );
            if granted {
                s.grants.push((i, role, scope));
            }
        }
        if u.ratio(1, 6)? {
            let d = pb::SetUserDisabledRequest {
                name: (*name).into(),
                disabled: true,
            };
            apply(&mut st, &mut index, users(Op::SetDisabled(d)), &admin);
            s.disabled[i] = true;
        }
        if u.ratio(1, 6)? {
            let r = pb::RevokeCertificateRequest {
                name: (*name).into(),
                serial: "0b".into(),
            };
            apply(&mut st, &mut index, users(Op::RevokeCert(r)), &admin);
            s.revoked[i] = true;
        }
    }
    Ok((st, s))
}

/// T1 has a result submitted by u0 and corrected by u1, planted as a
/// record (the state is restored with it, as after a snapshot).
fn plant_result(st: &mut TallyState) {
    let numbers = |id: &str, v1| pb::Submission {
        submission_id: id.into(),
        tps_id: "T1".into(),
        contest_id: world::CONTEST.into(),
        votes: vec![
            pb::CandidateVotes {
                candidate_id: "01".into(),
                votes: v1,
            },
            pb::CandidateVotes {
                candidate_id: "02".into(),
                votes: 5,
            },
        ],
        sah: Some(v1 + 5),
        tidak_sah: Some(1),
        total: Some(v1 + 6),
        ..Default::default()
    };
    let rev = |n: u64, kind: pb::RevisionKind, id: &str, v1, by: &str| pb::Revision {
        revision: n,
        kind: kind as i32,
        submission: Some(numbers(id, v1)),
        log_index: n + 1,
        author: Some(principal(pb::PrincipalKind::User, by, "01")),
        ..Default::default()
    };
    let history = pb::ResultHistory {
        revisions: vec![
            rev(1, pb::RevisionKind::Submitted, "s", 10, "u0"),
            rev(2, pb::RevisionKind::Corrected, "c", 20, "u1"),
        ],
    };
    let mut records = st.records();
    records.push((keys::result("T1", world::CONTEST), history.encode_to_vec()));
    *st = TallyState::restore(records).expect("restore");
    // Counted and indexed as if it had been applied.
    *st = world::recounted(st);
}

/// Decides one arbitrary request both ways and compares.
pub fn authorization(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((mut st, s)) = setup(&mut u) else {
        return;
    };
    plant_result(&mut st);
    let Ok(who) = u.int_in_range(0..=5u8) else {
        return;
    };
    let serial = if u.ratio(1, 3).unwrap_or(false) {
        "0b"
    } else {
        "0c"
    };
    let p = match who {
        0..=3 => principal(pb::PrincipalKind::User, USERS[who as usize], serial),
        4 => principal(pb::PrincipalKind::Node, "node-2", ""),
        _ => principal(pb::PrincipalKind::Insecure, "insecure", ""),
    };
    let target = TPS[u.int_in_range(0..=TPS.len() - 1).unwrap_or(0)];
    let region = SCOPES[u.int_in_range(0..=SCOPES.len() - 1).unwrap_or(0)].0;
    let c = world::CONTEST;
    let (name, action) = match u.int_in_range(0..=10u8).unwrap_or(0) {
        0 => ("submit", Action::Submit { tps: target }),
        1 => (
            "correct",
            Action::Correct {
                tps: target,
                contest: c,
            },
        ),
        2 => (
            "clear_flags",
            Action::ClearFlags {
                tps: target,
                contest: c,
            },
        ),
        3 => (
            "review",
            Action::Review {
                tps: target,
                contest: c,
            },
        ),
        4 => ("object", Action::Object { tps: target }),
        5 => ("read", Action::Read { target: region }),
        6 => ("audit", Action::Audit),
        7 => ("registry", Action::Registry),
        8 => ("membership", Action::Membership),
        9 => ("users", Action::Users),
        _ => ("status", Action::Status),
    };
    let got = st.authorize(Some(&p), &action).is_ok();
    let want = reference(&s, &p, name, &action);
    assert_eq!(
        got, want,
        "{} asks {name} {action:?}: tally {got}, reference {want}",
        p.name
    );
}

fn reference(s: &Setup, p: &pb::Principal, name: &str, action: &Action) -> bool {
    let Some(i) = USERS.iter().take(3).position(|u| *u == p.name) else {
        // Unknown users may ask for status; nodes only for status; an
        // insecure caller nothing, once the cluster has users.
        return name == "status" && p.kind != pb::PrincipalKind::Insecure as i32;
    };
    if p.kind != pb::PrincipalKind::User as i32 {
        return false;
    }
    if (s.revoked[i] && p.cert_serial == "0b") || s.disabled[i] {
        return false;
    }
    if name == "status" {
        return true;
    }
    let target = match action {
        Action::Submit { tps }
        | Action::Correct { tps, .. }
        | Action::ClearFlags { tps, .. }
        | Action::Review { tps, .. }
        | Action::Object { tps } => *tps,
        Action::Read { target } => *target,
        _ => "ID",
    };
    let holds = |role: Role| {
        s.grants.iter().any(|(u, r, scope)| {
            *u == i && *r == role && table(role, name) && world::covers(scope, target)
        })
    };
    // T1 was submitted by u0 and last changed by u1.
    let on_t1 = target == "T1";
    let verifier_may = holds(Role::Verifier) && !(on_t1 && (p.name == "u0" || p.name == "u1"));
    match name {
        // A verifier is judged as a verifier; an operator may correct only
        // their own unreviewed result, and T1 has been changed by u1.
        "correct" if holds(Role::Verifier) => verifier_may,
        "correct" => holds(Role::Operator) && !on_t1,
        "clear_flags" | "review" => verifier_may,
        _ => ROLES.iter().any(|r| holds(*r)),
    }
}
