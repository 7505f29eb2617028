//! Oversized requests: RESOURCE_EXHAUSTED naming the limit, as gRPC's
//! status-code guide and grpc-go answer them. tonic's decoder says
//! OUT_OF_RANGE; this layer, in front of every service, rewrites exactly that
//! answer (a trailers-only response, so the status is in the headers).

use std::task::{Context, Poll};

use percent_encoding::percent_decode;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{BoxFuture, Service};
use tonic::metadata::MetadataValue;

use crate::node::RULE_HEADER;

const TONIC_TOO_LARGE: &str = "decoded message length too large";

#[derive(Clone)]
pub struct SizeLimitLayer;

impl<S> tower::Layer<S> for SizeLimitLayer {
    type Service = SizeLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SizeLimit { inner }
    }
}

#[derive(Clone)]
pub struct SizeLimit<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for SizeLimit<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            rewrite(&mut resp);
            Ok(resp)
        })
    }
}

fn rewrite(resp: &mut Response<Body>) {
    let h = resp.headers();
    if h.get("grpc-status").is_none_or(|v| v != "11") {
        return;
    }
    // grpc-message is percent-encoded.
    let message = h
        .get("grpc-message")
        .map(|v| percent_decode(v.as_bytes()).decode_utf8_lossy().to_string())
        .unwrap_or_default();
    if !message.contains(TONIC_TOO_LARGE) {
        return;
    }
    let detail = message.split_once(": ").map_or("", |(_, d)| d);
    let mut status = Status::resource_exhausted(format!(
        "rule=message_size: the request is over this service's size limit ({detail})"
    ));
    status
        .metadata_mut()
        .insert(RULE_HEADER, MetadataValue::from_static("message_size"));
    *resp = status.into_http();
}
