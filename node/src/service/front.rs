//! The layer in front of every service, inside authentication. On the way
//! in, it refuses a shut-out caller (a disabled user, a revoked
//! certificate) at the doors that have no handler of their own to check:
//! health and reflection. On the way out, it gives every public answer the
//! `x-rekap-*` headers (which node answered, whom it takes for the leader),
//! logs refusals of shut-out callers, and rewrites tonic's own refusals of
//! a request body into statuses that name their rule:
//!
//! - too large: tonic says OUT_OF_RANGE; RESOURCE_EXHAUSTED
//!   (`message_size`), as gRPC's status-code guide and grpc-go answer it;
//! - undecodable: tonic says INTERNAL, as gRPC's guide lists it, but
//!   INTERNAL means a bug of the server here (README) and clients retry
//!   it; a body that is not a valid message is the caller's input, so
//!   INVALID_ARGUMENT (`decode`), which no client retries.
//!
//! Both are trailers-only answers, so the status is in the headers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use percent_encoding::percent_decode;
use tonic::body::Body;
use tonic::codegen::http::{HeaderMap, HeaderValue, Request, Response};
use tonic::codegen::{BoxFuture, Service};
use tonic::{Code, Status};

use crate::node::Node;
use crate::reply::{LEADER_HEADER, LEADER_ID_HEADER, NODE_ID_HEADER, RULE_HEADER, refusal};
use crate::security::Caller;
use crate::tally::Action;

const TONIC_TOO_LARGE: &str = "decoded message length too large";
const TONIC_UNDECODABLE: &str = "failed to decode Protobuf message";
/// Paths served without a handler of Rekap's that checks the caller.
const UNGUARDED: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];
/// Node-to-node traffic: its answers need no headers for clients.
const RAFT: &str = "/rekap.v1.Raft/";
/// A shut-out caller is logged at most this often (a lost laptop that
/// probes every few seconds would fill the log otherwise).
const LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct FrontLayer(Arc<Front>);

impl FrontLayer {
    pub fn new(node: Arc<Node>) -> FrontLayer {
        FrontLayer(Arc::new(Front {
            node,
            logged: Mutex::new(HashMap::new()),
        }))
    }
}

struct Front {
    node: Arc<Node>,
    /// (user, certificate serial) -> when a refusal of theirs was last logged.
    logged: Mutex<HashMap<(String, String), Instant>>,
}

impl<S> tower::Layer<S> for FrontLayer {
    type Service = FrontService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FrontService {
            inner,
            front: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct FrontService<S> {
    inner: S,
    front: Arc<Front>,
}

impl<S> Service<Request<Body>> for FrontService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let path = req.uri().path();
        let raft = path.starts_with(RAFT);
        let caller = req.extensions().get::<Caller>().cloned();
        let front = self.front.clone();
        if UNGUARDED.iter().any(|p| path.starts_with(p))
            && let Err(status) = front.admit(caller.as_ref())
        {
            let mut resp = status.into_http();
            front.finish(&mut resp, caller.as_ref(), path);
            return Box::pin(async move { Ok(resp) });
        }
        let path = (!raft).then(|| path.to_string());
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let fut = std::mem::replace(&mut self.inner, clone).call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            rewrite(&mut resp);
            if let Some(path) = path {
                front.finish(&mut resp, caller.as_ref(), &path);
            }
            Ok(resp)
        })
    }
}

impl Front {
    /// Health and reflection answer only callers Tally and Admin would:
    /// any node, and any user not shut out.
    fn admit(&self, caller: Option<&Caller>) -> Result<(), Status> {
        let Some(caller) = caller else {
            return Err(refusal(
                Code::Unauthenticated,
                "authenticated",
                "the call bypassed authentication",
            ));
        };
        let view = self.node.sm.try_view().map_err(Status::from)?;
        view.tally
            .authorize(Some(&caller.principal()), &Action::Status)
            .map_err(|rej| crate::reply::rejection_status(&rej))
    }

    /// Names this node and its leader on the answer, and logs a refusal of
    /// a shut-out caller.
    fn finish(&self, resp: &mut Response<Body>, caller: Option<&Caller>, path: &str) {
        let h = resp.headers_mut();
        annotate(&self.node, h);
        let rule = h.get(RULE_HEADER).and_then(|v| v.to_str().ok());
        if let (
            Some(rule @ ("cert_revoked" | "user_disabled")),
            Some(Caller::User { name, serial, .. }),
        ) = (rule, caller)
        {
            self.log_shut_out(rule, name, serial, path);
        }
    }

    fn log_shut_out(&self, rule: &str, name: &str, serial: &str, path: &str) {
        let mut logged = self.logged.lock().expect("front log lock");
        let key = (name.to_string(), serial.to_string());
        if logged.get(&key).is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return;
        }
        if logged.len() >= 10_000 {
            logged.clear();
        }
        logged.insert(key, Instant::now());
        tracing::warn!(
            user = name,
            cert_serial = serial,
            rule,
            method = path,
            "refused a shut-out caller (logged once a minute per certificate)"
        );
    }
}

/// The headers that name the answering node and the leader it knows.
fn annotate(node: &Node, h: &mut HeaderMap) {
    h.insert(NODE_ID_HEADER, HeaderValue::from(node.id));
    match node.leader() {
        Some((id, addr)) => {
            match HeaderValue::try_from(addr) {
                Ok(v) => h.insert(LEADER_HEADER, v),
                Err(_) => h.remove(LEADER_HEADER),
            };
            h.insert(LEADER_ID_HEADER, HeaderValue::from(id));
        }
        None => {
            // A forwarded answer carries the leader's view; this node's
            // is what the client asked.
            h.remove(LEADER_HEADER);
            h.remove(LEADER_ID_HEADER);
        }
    }
}

/// Rewrites tonic's refusal of a body that is too large or undecodable.
fn rewrite(resp: &mut Response<Body>) {
    let h = resp.headers();
    let code = match h.get("grpc-status").map(HeaderValue::as_bytes) {
        Some(b"11") => Code::OutOfRange,
        Some(b"13") => Code::Internal,
        _ => return,
    };
    // grpc-message is percent-encoded.
    let message = h
        .get("grpc-message")
        .map(|v| percent_decode(v.as_bytes()).decode_utf8_lossy().to_string())
        .unwrap_or_default();
    let detail = message.split_once(": ").map_or("", |(_, d)| d);
    let status = match code {
        Code::OutOfRange if message.contains(TONIC_TOO_LARGE) => refusal(
            Code::ResourceExhausted,
            "message_size",
            format!("the request is over this service's size limit ({detail})"),
        ),
        Code::Internal if message.starts_with(TONIC_UNDECODABLE) => refusal(
            Code::InvalidArgument,
            "decode",
            format!("the request body is not a valid message of this method ({detail})"),
        ),
        _ => return,
    };
    *resp = status.into_http();
}
