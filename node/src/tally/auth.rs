//! Authorization: who may do what, where. Pure, like the rest of the tally:
//! the node runs it before proposing (to refuse early, changing nothing)
//! and the state machine runs it again when it applies the command, against
//! the users and roles as of that log index.
//!
//! A scope is a region (any level; `ID` is nasional, so everything) or one
//! TPS, and covers everything below it in the registry tree. This is etcd's
//! key-range idea applied to the tree rather than to string prefixes: a TPS
//! id need not start with its desa's code (the 2019 data's do not).
//!
//! Until the first admin exists nothing is enforced: that is a cluster run
//! with `--insecure` (whose callers are `INSECURE` principals), or a TLS
//! cluster in the moment between its first election and `BootstrapAdmin`,
//! when the node refuses every user call it has no grant for anyway.

use rekap_proto::pb;

use super::rules::{code, reject};
use super::users::{normal_serial, role_name};
use super::{NASIONAL, TallyState, current};

/// What an action needs, named as in a refusal (`rule=permission:<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Perm {
    Submit,
    Correct,
    ClearFlags,
    Review,
    Object,
    Read,
    Audit,
    Registry,
    Membership,
    Users,
}

impl Perm {
    pub fn name(self) -> &'static str {
        match self {
            Perm::Submit => "submit",
            Perm::Correct => "correct",
            Perm::ClearFlags => "clear_flags",
            Perm::Review => "review",
            Perm::Object => "object",
            Perm::Read => "read",
            Perm::Audit => "audit",
            Perm::Registry => "registry",
            Perm::Membership => "membership",
            Perm::Users => "users",
        }
    }
}

use pb::Role;

/// The roles table of the README: which roles carry a permission. (An
/// operator's correction is further limited to their own, unreviewed
/// submission; a verifier's acts to results they did not submit.)
pub fn roles_with(perm: Perm) -> &'static [Role] {
    match perm {
        Perm::Submit => &[Role::Operator],
        Perm::Correct => &[Role::Verifier, Role::Operator],
        Perm::ClearFlags | Perm::Review => &[Role::Verifier],
        Perm::Object => &[Role::Witness],
        Perm::Read => &[
            Role::Operator,
            Role::Verifier,
            Role::Witness,
            Role::Observer,
            Role::Auditor,
            Role::Admin,
        ],
        Perm::Audit => &[Role::Auditor, Role::Admin],
        Perm::Registry | Perm::Membership | Perm::Users => &[Role::Admin],
    }
}

/// One thing a principal wants to do.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    Submit {
        tps: &'a str,
    },
    Correct {
        tps: &'a str,
        contest: &'a str,
    },
    ClearFlags {
        tps: &'a str,
        contest: &'a str,
    },
    Review {
        tps: &'a str,
        contest: &'a str,
    },
    Object {
        tps: &'a str,
    },
    /// A read about a region (or one TPS, by its id); empty means nasional.
    Read {
        target: &'a str,
    },
    Audit,
    Registry,
    Membership,
    Users,
    /// Cluster status and health: any node, and any user not shut out.
    Status,
    /// Becoming the first admin of a cluster with no users.
    Bootstrap {
        name: &'a str,
    },
}

impl Action<'_> {
    pub fn perm(&self) -> Option<Perm> {
        Some(match self {
            Action::Submit { .. } => Perm::Submit,
            Action::Correct { .. } => Perm::Correct,
            Action::ClearFlags { .. } => Perm::ClearFlags,
            Action::Review { .. } => Perm::Review,
            Action::Object { .. } => Perm::Object,
            Action::Read { .. } => Perm::Read,
            Action::Audit => Perm::Audit,
            Action::Registry => Perm::Registry,
            Action::Membership => Perm::Membership,
            Action::Users => Perm::Users,
            Action::Status | Action::Bootstrap { .. } => return None,
        })
    }
}

fn denied(rule: &str, msg: String) -> pb::Rejection {
    reject(code::PERMISSION_DENIED, rule, msg)
}

fn unauthenticated(rule: &str, msg: String) -> pb::Rejection {
    reject(code::UNAUTHENTICATED, rule, msg)
}

fn kind(p: Option<&pb::Principal>) -> pb::PrincipalKind {
    p.map_or(pb::PrincipalKind::Insecure, |p| {
        pb::PrincipalKind::try_from(p.kind).unwrap_or(pb::PrincipalKind::Unspecified)
    })
}

impl TallyState {
    /// Whether any user exists, and with them authorization.
    pub fn auth_enabled(&self) -> bool {
        !self.users.is_empty()
    }

    /// Decides whether `who` may do `action` now.
    pub fn authorize(
        &self,
        who: Option<&pb::Principal>,
        action: &Action,
    ) -> Result<(), pb::Rejection> {
        match kind(who) {
            pb::PrincipalKind::Insecure if !self.auth_enabled() => Ok(()),
            pb::PrincipalKind::Insecure => Err(unauthenticated(
                "authenticated",
                "this cluster has users: an unauthenticated (--insecure) caller may do nothing"
                    .into(),
            )),
            pb::PrincipalKind::Node => match action {
                Action::Status => Ok(()),
                Action::Bootstrap { .. } if !self.auth_enabled() => Ok(()),
                _ => Err(denied(
                    "node_identity",
                    "a node certificate is for Raft and forwarding only".into(),
                )),
            },
            pb::PrincipalKind::User => self.authorize_user(who.expect("user principal"), action),
            pb::PrincipalKind::Unspecified => Err(unauthenticated(
                "authenticated",
                "the command names no known kind of principal".into(),
            )),
        }
    }

    fn authorize_user(&self, p: &pb::Principal, action: &Action) -> Result<(), pb::Rejection> {
        if let Action::Bootstrap { name } = action {
            return if self.auth_enabled() {
                Err(denied(
                    "bootstrap_once",
                    "the cluster has its first admin already".into(),
                ))
            } else if *name != p.name {
                Err(denied(
                    "bootstrap_self",
                    format!(
                        "{} may only make themselves the first admin, not {name}",
                        p.name
                    ),
                ))
            } else {
                Ok(())
            };
        }
        self.not_shut_out(p)?;
        let user = self.users.get(&p.name);
        let Some(perm) = action.perm() else {
            // Status: any user not shut out, known or not.
            return Ok(());
        };
        let Some(u) = user else {
            return Err(denied(
                &format!("permission:{}", perm.name()),
                format!(
                    "{} is not a user of this cluster (rekapctl users add)",
                    p.name
                ),
            ));
        };
        // The target's chain is walked once, then looked up in each role's
        // scope set: an operator may hold hundreds of kecamatan.
        let covering = self.covering_scopes(action);
        let holds = |role: Role| {
            u.scopes(role).is_some_and(|scopes| match &covering {
                None => !scopes.is_empty(),
                Some(codes) => codes.iter().any(|c| scopes.contains(*c)),
            })
        };
        let lacking = || {
            let roles: Vec<&str> = roles_with(perm).iter().map(|r| role_name(*r)).collect();
            denied(
                &format!("permission:{}", perm.name()),
                format!(
                    "{} lacks {} on {} (needs role {} with a scope covering it)",
                    p.name,
                    perm.name(),
                    target_name(action),
                    roles.join(" or ")
                ),
            )
        };
        match action {
            Action::Correct { tps, contest } => {
                if holds(Role::Verifier) {
                    return self.four_eyes(&p.name, tps, contest);
                }
                if holds(Role::Operator) {
                    return self.own_unreviewed(&p.name, tps, contest);
                }
                Err(lacking())
            }
            Action::ClearFlags { tps, contest } | Action::Review { tps, contest } => {
                if holds(Role::Verifier) {
                    return self.four_eyes(&p.name, tps, contest);
                }
                Err(lacking())
            }
            _ if roles_with(perm).iter().any(|r| holds(*r)) => Ok(()),
            _ => Err(lacking()),
        }
    }

    /// A disabled user, or a revoked certificate, is refused everything.
    fn not_shut_out(&self, p: &pb::Principal) -> Result<(), pb::Rejection> {
        let Some(u) = self.users.get(&p.name) else {
            return Ok(());
        };
        // Normalising allocates; almost no user has a revoked serial.
        let revoked = &u.user.revoked_serials;
        if !revoked.is_empty() && revoked.contains(&normal_serial(&p.cert_serial)) {
            return Err(unauthenticated(
                "cert_revoked",
                format!("certificate {} of {} is revoked", p.cert_serial, p.name),
            ));
        }
        if u.user.disabled {
            return Err(denied(
                "user_disabled",
                format!("user {} is disabled", p.name),
            ));
        }
        Ok(())
    }

    /// A verifier never acts on a result they submitted, nor on a revision
    /// they made themselves.
    fn four_eyes(&self, who: &str, tps: &str, contest: &str) -> Result<(), pb::Rejection> {
        let Some(h) = self.history(tps, contest) else {
            return Ok(()); // nothing to review: the command itself says so
        };
        let mine = |r: &pb::Revision| r.author.as_ref().is_some_and(|a| a.name == who);
        if mine(&h.revisions[0]) || mine(current(&h)) {
            return Err(denied(
                "four_eyes",
                format!(
                    "{who} submitted or last changed this result; another verifier must act on it"
                ),
            ));
        }
        Ok(())
    }

    /// An operator corrects only their own submission, and only until
    /// someone else has acted on it (an objection does not count).
    fn own_unreviewed(&self, who: &str, tps: &str, contest: &str) -> Result<(), pb::Rejection> {
        let Some(h) = self.history(tps, contest) else {
            return Ok(());
        };
        let by = author_name;
        if by(&h.revisions[0]) != Some(who) {
            return Err(denied(
                "own_submission",
                format!("{who} may only correct results they submitted; ask a verifier"),
            ));
        }
        let reviewed = h.revisions[1..]
            .iter()
            .any(|r| by(r) != Some(who) && r.kind != pb::RevisionKind::Objected as i32);
        if reviewed {
            return Err(denied(
                "own_submission_reviewed",
                "the result has been reviewed; only a verifier can correct it now".into(),
            ));
        }
        Ok(())
    }

    /// The scopes whose grant covers what `action` touches (nasional covers
    /// everything), or `None` when any grant does: an unknown TPS cannot be
    /// written anyway, and the command should say tps_exists rather than
    /// hide it behind a refusal.
    fn covering_scopes<'s>(&'s self, action: &Action<'s>) -> Option<Vec<&'s str>> {
        let tps_chain = |tps: &'s str| {
            self.tps_desa(tps).map(|desa| {
                let mut codes = vec![tps];
                codes.extend(self.chain_of(desa));
                codes
            })
        };
        let mut codes = match action {
            Action::Submit { tps }
            | Action::Correct { tps, .. }
            | Action::ClearFlags { tps, .. }
            | Action::Review { tps, .. }
            | Action::Object { tps } => tps_chain(tps)?,
            Action::Read { target: "" } => vec![],
            Action::Read { target } => tps_chain(target).unwrap_or_else(|| self.chain_of(target)),
            _ => vec![],
        };
        if !codes.contains(&NASIONAL) {
            codes.push(NASIONAL);
        }
        Some(codes)
    }
}

fn author_name(r: &pb::Revision) -> Option<&str> {
    r.author.as_ref().map(|a| a.name.as_str())
}

fn target_name(action: &Action) -> String {
    match action {
        Action::Submit { tps }
        | Action::Correct { tps, .. }
        | Action::ClearFlags { tps, .. }
        | Action::Review { tps, .. }
        | Action::Object { tps } => format!("TPS {tps}"),
        Action::Read { target: "" } => "nasional".into(),
        Action::Read { target } => (*target).to_string(),
        _ => "the cluster".into(),
    }
}

impl TallyState {
    /// The authorization of a whole command, as `apply` decides it. The node
    /// runs it before proposing, so a refused command never reaches the log.
    /// Submissions are decided item by item (`check_submission_auth`).
    pub fn check_command(&self, cmd: &pb::Command) -> Result<(), pb::Rejection> {
        use pb::command::Kind;
        let who = cmd.principal.as_ref();
        match &cmd.kind {
            Some(Kind::LoadRegistry(_)) => self.authorize(who, &Action::Registry),
            Some(Kind::Submit(_)) | None => Ok(()),
            Some(Kind::Correct(r)) => self.authorize_revision(
                who,
                (&r.request_id, &r.tps_id, &r.contest_id),
                &Action::Correct {
                    tps: &r.tps_id,
                    contest: &r.contest_id,
                },
            ),
            Some(Kind::ClearFlags(r)) => self.authorize_revision(
                who,
                (&r.request_id, &r.tps_id, &r.contest_id),
                &Action::ClearFlags {
                    tps: &r.tps_id,
                    contest: &r.contest_id,
                },
            ),
            Some(Kind::Review(r)) => self.authorize_revision(
                who,
                (&r.request_id, &r.tps_id, &r.contest_id),
                &Action::Review {
                    tps: &r.tps_id,
                    contest: &r.contest_id,
                },
            ),
            Some(Kind::Objection(r)) => self.authorize_revision(
                who,
                (&r.request_id, &r.tps_id, &r.contest_id),
                &Action::Object { tps: &r.tps_id },
            ),
            Some(Kind::UserAdmin(_)) => self.authorize(who, &Action::Users),
            Some(Kind::BootstrapAdmin(b)) => {
                self.authorize(who, &Action::Bootstrap { name: &b.name })
            }
        }
    }

    /// A retry of a submission this same principal made gets its original
    /// outcome (DUPLICATE) even if they have lost the right since: the
    /// first attempt was applied while they had it.
    pub fn check_submission_auth(
        &self,
        who: Option<&pb::Principal>,
        s: &pb::Submission,
    ) -> Result<(), pb::Rejection> {
        self.authorize_revision(
            who,
            (&s.submission_id, &s.tps_id, &s.contest_id),
            &Action::Submit { tps: &s.tps_id },
        )
    }

    /// A retry of a submission or revision this same principal made is
    /// answered with its original outcome whatever their roles have become
    /// since (four eyes would refuse a verifier's retry: the current revision
    /// is theirs). A disabled user or a revoked certificate is still refused.
    /// Anything else is judged. `request` is the request id and the TPS and
    /// contest of the result it names.
    fn authorize_revision(
        &self,
        who: Option<&pb::Principal>,
        request: (&str, &str, &str),
        action: &Action,
    ) -> Result<(), pb::Rejection> {
        if let Some(p) = who.filter(|p| p.kind == pb::PrincipalKind::User as i32) {
            self.not_shut_out(p)?;
        }
        // The grant decides almost every call and costs no read; only a
        // refusal asks whether this is its author's retry.
        let refusal = match self.authorize(who, action) {
            Ok(()) => return Ok(()),
            Err(rej) => rej,
        };
        let (request_id, tps_id, contest_id) = request;
        if let (Some(p), Some((key, rev))) = (who, self.request(request_id, tps_id, contest_id))
            && let Some(h) = self.history(&key.0, &key.1)
            && let Some(created) = h.revisions.get((rev - 1) as usize)
            && created
                .author
                .as_ref()
                .is_some_and(|a| a.name == p.name && a.kind == p.kind)
        {
            return Ok(());
        }
        Err(refusal)
    }
}
