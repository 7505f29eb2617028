//! `rekapctl health`: the standard gRPC health check of one node, for
//! container health checks and scripts. Exits 0 only when SERVING.

use std::time::Duration;

use clap::Args;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::Ctx;

#[derive(Args)]
pub struct HealthArgs {
    /// The node to ask (not the cluster: health is per node).
    #[arg(long)]
    addr: String,
    /// Service to ask about; empty for the node as a whole.
    #[arg(long, default_value = "")]
    service: String,
}

pub async fn run(ctx: &Ctx, a: HealthArgs) -> anyhow::Result<()> {
    let ch = ctx.client.channel(&a.addr)?;
    let mut req = tonic::Request::new(HealthCheckRequest { service: a.service });
    req.set_timeout(Duration::from_secs(2));
    let status = HealthClient::new(ch)
        .check(req)
        .await?
        .into_inner()
        .status();
    println!("{}", status.as_str_name());
    anyhow::ensure!(
        status == tonic_health::pb::health_check_response::ServingStatus::Serving,
        "not serving"
    );
    Ok(())
}
