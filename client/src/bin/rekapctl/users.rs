//! `rekapctl users`: who may do what, where (admin only). A user is the
//! name in their certificate; roles are granted over scopes (a region code
//! or a TPS id; `ID` is everything).

use clap::{Subcommand, ValueEnum};
use rekap_client::proto as pb;
use serde_json::json;

use crate::Ctx;
use crate::output::{print_json, table};

#[derive(Clone, Copy, ValueEnum)]
pub enum Role {
    /// KPPS/PPS data entry (scope: TPS, desa or kecamatan).
    Operator,
    /// PPK/KPU recap staff (scope: kecamatan and up).
    Verifier,
    /// Saksi or Bawaslu: reads, files objections.
    Witness,
    /// Reads totals, progress and results.
    Observer,
    /// Reads everything and the audit log (scope: all).
    Auditor,
    /// Ops: membership, registry, users (scope: all).
    Admin,
}

impl Role {
    fn to_pb(self) -> pb::Role {
        match self {
            Role::Operator => pb::Role::Operator,
            Role::Verifier => pb::Role::Verifier,
            Role::Witness => pb::Role::Witness,
            Role::Observer => pb::Role::Observer,
            Role::Auditor => pb::Role::Auditor,
            Role::Admin => pb::Role::Admin,
        }
    }
}

#[derive(Subcommand)]
pub enum UsersCmd {
    /// Add a user (no roles yet).
    Add { name: String },
    /// Grant a role over scopes.
    Grant {
        name: String,
        #[arg(value_enum)]
        role: Role,
        /// A region code or TPS id; repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Also every kecamatan below this region (an operator or verifier
        /// for a whole kabupaten, say).
        #[arg(long, requires = "contest")]
        each_kecamatan_of: Option<String>,
        /// A contest covering that region (the tree is read through it).
        #[arg(long)]
        contest: Option<String>,
    },
    /// Revoke a role over scopes, or everywhere when no scope is given.
    Revoke {
        name: String,
        #[arg(value_enum)]
        role: Role,
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Refuse every request of a user, in flight too (a lost laptop).
    Disable { name: String },
    /// Accept a disabled user again.
    Enable { name: String },
    /// Refuse one certificate of a user by its serial (rekapctl certs show).
    RevokeCert { name: String, serial: String },
    /// Every user and their roles.
    List,
}

pub async fn run(ctx: &Ctx, cmd: UsersCmd) -> anyhow::Result<()> {
    let c = &ctx.client;
    let user = match cmd {
        UsersCmd::Add { name } => c.add_user(&name).await?,
        UsersCmd::Grant {
            name,
            role,
            mut scopes,
            each_kecamatan_of,
            contest,
        } => {
            if let (Some(region), Some(contest)) = (each_kecamatan_of, contest) {
                scopes.extend(kecamatan_below(ctx, &region, &contest).await?);
            }
            c.grant(&name, role.to_pb(), scopes).await?
        }
        UsersCmd::Revoke { name, role, scopes } => c.revoke(&name, role.to_pb(), scopes).await?,
        UsersCmd::Disable { name } => c.set_disabled(&name, true).await?,
        UsersCmd::Enable { name } => c.set_disabled(&name, false).await?,
        UsersCmd::RevokeCert { name, serial } => c.revoke_cert(&name, &serial).await?,
        UsersCmd::List => return list(ctx).await,
    };
    show(ctx, &[user]);
    Ok(())
}

/// Kecamatan codes below `region`, walking the registry tree (needs read
/// permission there; admins have it).
async fn kecamatan_below(ctx: &Ctx, region: &str, contest: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut todo = vec![region.to_string()];
    while let Some(code) = todo.pop() {
        let resp = ctx
            .client
            .children(&code, contest, pb::Consistency::Linearizable)
            .await?;
        for ch in resp.children {
            let r = ch.region.unwrap_or_default();
            if r.level == pb::RegionLevel::Kecamatan as i32 {
                out.push(r.code);
            } else if r.level < pb::RegionLevel::Kecamatan as i32 {
                todo.push(r.code);
            }
        }
    }
    anyhow::ensure!(!out.is_empty(), "no kecamatan below {region}");
    Ok(out)
}

async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let users = ctx.client.users().await?;
    show(ctx, &users);
    Ok(())
}

fn grants(u: &pb::User) -> String {
    let mut by_role: Vec<(String, Vec<String>)> = Vec::new();
    for g in &u.grants {
        let role = pb::Role::try_from(g.role).map_or("?".into(), |r| {
            r.as_str_name().trim_start_matches("ROLE_").to_lowercase()
        });
        match by_role.iter_mut().find(|(r, _)| *r == role) {
            Some((_, s)) => s.push(g.scope.clone()),
            None => by_role.push((role, vec![g.scope.clone()])),
        }
    }
    by_role
        .iter()
        .map(|(r, s)| {
            let shown = if s.len() > 4 {
                format!("{} … ({} scopes)", s[..3].join(" "), s.len())
            } else {
                s.join(" ")
            };
            format!("{r}: {shown}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn show(ctx: &Ctx, users: &[pb::User]) {
    if ctx.json {
        let rows: Vec<_> = users
            .iter()
            .map(|u| {
                json!({
                    "name": u.name, "disabled": u.disabled,
                    "grants": u.grants.iter().map(|g| json!({"role": pb::Role::try_from(g.role).map(|r| r.as_str_name()).unwrap_or("?"), "scope": g.scope})).collect::<Vec<_>>(),
                    "revoked_serials": u.revoked_serials, "changed_index": u.changed_index,
                })
            })
            .collect();
        print_json(&json!(rows));
        return;
    }
    let rows = users
        .iter()
        .map(|u| {
            vec![
                u.name.clone(),
                if u.disabled { "disabled" } else { "enabled" }.into(),
                grants(u),
                u.revoked_serials.join(" "),
                u.changed_index.to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "user",
                "state",
                "roles",
                "revoked certificates",
                "changed at"
            ],
            rows
        )
    );
}
