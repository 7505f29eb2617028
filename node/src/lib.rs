//! Rekap node: a vote-tally state machine replicated with openraft over
//! gRPC, stored in RocksDB.
//!
//! - [`tally`]: the pure state machine (validation, idempotency, aggregates).
//! - [`store`]: RocksDB log and state-machine storage, snapshot files.
//! - [`raft`]: openraft type configuration and protobuf conversions.
//! - [`network`]: the Raft client side over tonic.
//! - [`security`]: TLS, certificate identities and authentication.
//! - [`service`]: the gRPC services (public Tally and Admin, internal Raft).
//! - [`node`], [`forward`], [`coalesce`]: routing calls to the leader, and why one is refused.
//! - [`reply`]: what every answer carries: the `x-rekap-*` headers, refusals as statuses.
//! - [`watch`]: live views of watched regions, for `Tally.Watch` and the dashboard.
//! - [`metrics`]: the node's Prometheus registry.
//! - [`http`]: the HTTP listener (`/metrics`, the public dashboard).
//! - [`restore`]: seeding a new cluster's node from a backup file.
//! - [`timing`]: every consensus duration, from --heartbeat-interval and --election-timeout.
//! - [`server`], [`bootstrap`], [`config`], [`shutdown`]: wiring and operations.

pub mod bootstrap;
pub mod coalesce;
pub mod config;
pub mod crash;
pub mod forward;
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod network;
pub mod node;
pub mod raft;
pub mod reply;
pub mod restore;
pub mod security;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod tally;
pub mod timing;
pub mod watch;
