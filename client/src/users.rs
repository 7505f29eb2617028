//! User and role administration (admin only): every change is one
//! replicated command, in effect on every node at one log index.

use std::future::Future;

use rekap_proto::pb;
use rekap_proto::pb::admin_client::AdminClient;
use tonic::Status;

use crate::Client;
use crate::deadline::Timed;

impl Client {
    /// One user change, retried and routed like every admin call.
    async fn user_change<Req, F, Fut>(&self, req: Req, call: F) -> Result<pb::User, Status>
    where
        Req: Clone,
        F: Fn(AdminClient<Timed>, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<pb::UserResponse>, Status>>,
    {
        self.admin(|c| call(c, req.clone()))
            .await?
            .user
            .ok_or_else(|| Status::internal("empty user response"))
    }

    pub async fn add_user(&self, name: &str) -> Result<pb::User, Status> {
        let req = pb::AddUserRequest { name: name.into() };
        self.user_change(req, |mut c, r| async move { c.add_user(r).await })
            .await
    }

    /// Grants `role` over `scopes` (region codes or TPS ids; none means all).
    pub async fn grant(
        &self,
        name: &str,
        role: pb::Role,
        scopes: Vec<String>,
    ) -> Result<pb::User, Status> {
        let req = pb::GrantRoleRequest {
            name: name.into(),
            role: role as i32,
            scopes,
        };
        self.user_change(req, |mut c, r| async move { c.grant_role(r).await })
            .await
    }

    /// Revokes `role` over `scopes`, or everywhere when `scopes` is empty.
    pub async fn revoke(
        &self,
        name: &str,
        role: pb::Role,
        scopes: Vec<String>,
    ) -> Result<pb::User, Status> {
        let req = pb::RevokeRoleRequest {
            name: name.into(),
            role: role as i32,
            scopes,
        };
        self.user_change(req, |mut c, r| async move { c.revoke_role(r).await })
            .await
    }

    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<pb::User, Status> {
        let req = pb::SetUserDisabledRequest {
            name: name.into(),
            disabled,
        };
        self.user_change(req, |mut c, r| async move { c.set_user_disabled(r).await })
            .await
    }

    pub async fn revoke_cert(&self, name: &str, serial: &str) -> Result<pb::User, Status> {
        let req = pb::RevokeCertificateRequest {
            name: name.into(),
            serial: serial.into(),
        };
        self.user_change(req, |mut c, r| async move { c.revoke_certificate(r).await })
            .await
    }

    pub async fn users(&self) -> Result<Vec<pb::User>, Status> {
        let resp = self
            .admin(|mut c| async move { c.list_users(pb::ListUsersRequest {}).await })
            .await?;
        Ok(resp.users)
    }
}
