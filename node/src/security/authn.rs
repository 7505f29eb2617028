//! Authentication: every call, on every service, is tied to a `Caller`
//! before it reaches a handler, or refused with UNAUTHENTICATED saying why.
//!
//! A tower layer in front of the whole router validates the connection's
//! client certificate against the current CAs (cached per certificate and
//! TLS generation, re-checked against its validity on every call), reads the
//! identity it names, and puts the `Caller` into the request's extensions.
//! A node may call on behalf of a user (a forwarded call) by naming the user
//! in metadata; a user may not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use rekap_proto::identity::{self, Named};
use rekap_proto::pb;
use rustls::pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use tonic::body::Body;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tonic::codegen::{BoxFuture, Service};
use tonic::{Code, Status};

use super::acceptor::ConnInfo;
use super::certinfo::{self, CertInfo};
use super::tls::Tls;
use crate::raft::NodeId;
use crate::reply::refusal;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A cluster node, by its node certificate.
    Node(NodeId),
    /// A person or program, by a user certificate; `via` is the node that
    /// forwarded the call, if any.
    User {
        name: String,
        serial: String,
        via: Option<NodeId>,
    },
    /// Anyone, on a node started with `--insecure`.
    Insecure,
}

impl Caller {
    /// The principal a replicated command carries.
    pub fn principal(&self) -> pb::Principal {
        match self {
            Caller::Node(id) => pb::Principal {
                kind: pb::PrincipalKind::Node as i32,
                name: format!("node-{id}"),
                node_id: *id,
                cert_serial: String::new(),
            },
            Caller::User { name, serial, .. } => pb::Principal {
                kind: pb::PrincipalKind::User as i32,
                name: name.clone(),
                node_id: 0,
                cert_serial: serial.clone(),
            },
            Caller::Insecure => pb::Principal {
                kind: pb::PrincipalKind::Insecure as i32,
                name: "insecure".into(),
                node_id: 0,
                cert_serial: String::new(),
            },
        }
    }
}

/// Checks certificates; shared by every connection.
pub struct Authenticator {
    tls: Option<Arc<Tls>>,
    /// SHA-256 of a leaf certificate -> the TLS generation it was checked
    /// under and the outcome.
    cache: Mutex<HashMap<[u8; 32], Checked>>,
}

/// A certificate's check: the TLS generation it ran under, and the outcome.
type Checked = (u64, Result<CertInfo, String>);

/// Certificates remembered at most; the cache is cleared when it is full.
const CACHE_MAX: usize = 10_000;

fn unauthenticated(why: impl std::fmt::Display) -> Status {
    refusal(Code::Unauthenticated, "authenticated", why)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Authenticator {
    pub fn new(tls: Option<Arc<Tls>>) -> Arc<Self> {
        Arc::new(Authenticator {
            tls,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The caller of one request, or the status refusing it.
    pub fn caller(&self, conn: Option<&ConnInfo>, headers: &HeaderMap) -> Result<Caller, Status> {
        let Some(tls) = &self.tls else {
            return Ok(Caller::Insecure);
        };
        let conn = conn.ok_or_else(|| unauthenticated("no connection information"))?;
        if !conn.tls {
            return Err(unauthenticated(
                "this node accepts only TLS connections with a client certificate (https, see rekapctl certs)",
            ));
        }
        let certs = conn
            .certs
            .as_ref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| unauthenticated("no client certificate was presented"))?;
        let info = self.check(tls, certs)?;
        let now = now_secs();
        if now > info.not_after {
            return Err(unauthenticated("certificate expired"));
        }
        if now < info.not_before {
            return Err(unauthenticated("certificate is not valid yet"));
        }
        let asserted = headers
            .get(identity::ON_BEHALF_OF_HEADER)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        match (info.named, asserted) {
            (Named::Node(id), None) => Ok(Caller::Node(id)),
            (Named::Node(id), Some(name)) => {
                if !identity::valid_user_name(&name) {
                    return Err(unauthenticated(format!(
                        "malformed asserted principal {name:?}"
                    )));
                }
                let serial = headers
                    .get(identity::ON_BEHALF_SERIAL_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                Ok(Caller::User {
                    name,
                    serial,
                    via: Some(id),
                })
            }
            (Named::User(_), Some(_)) => Err(refusal(
                Code::PermissionDenied,
                "assert_principal",
                "only a node may call on behalf of another principal",
            )),
            (Named::User(name), None) => Ok(Caller::User {
                name,
                serial: info.serial,
                via: None,
            }),
        }
    }

    fn check(&self, tls: &Tls, certs: &[CertificateDer<'static>]) -> Result<CertInfo, Status> {
        let key: [u8; 32] = Sha256::digest(certs[0].as_ref()).into();
        let generation = tls.generation();
        {
            let cache = self.cache.lock().expect("authn cache");
            if let Some((g, outcome)) = cache.get(&key)
                && *g == generation
            {
                return outcome.clone().map_err(unauthenticated);
            }
        }
        let material = tls.current();
        let outcome = material
            .verifier
            .verify_client_cert(&certs[0], &certs[1..], UnixTime::now())
            .map_err(|e| certinfo::explain(&e))
            .and_then(|_| certinfo::parse(&certs[0]));
        let mut cache = self.cache.lock().expect("authn cache");
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (generation, outcome.clone()));
        outcome.map_err(unauthenticated)
    }
}

/// The tower layer that runs the `Authenticator` in front of every service.
#[derive(Clone)]
pub struct AuthLayer(pub Arc<Authenticator>);

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            auth: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S> Service<Request<Body>> for Authenticated<S>
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

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let caller = self
            .auth
            .caller(req.extensions().get::<ConnInfo>(), req.headers());
        match caller {
            Ok(c) => {
                req.extensions_mut().insert(c);
                // The clone that was made ready is the one to call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(inner.call(req))
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

/// The caller of a request that went through the layer.
pub fn caller_of<T>(req: &tonic::Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| unauthenticated("the call bypassed authentication"))
}
