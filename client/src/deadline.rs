//! A channel that tells the server each attempt's deadline (the
//! `grpc-timeout` header), so a follower that forwards the call to the
//! leader gives the forward as long as the client will wait: a blocking
//! add-learner that may take a minute is not cut off at the forward's
//! default few seconds.

use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{HeaderValue, Request};
use tonic::transport::Channel;

#[derive(Clone)]
pub struct Timed {
    inner: Channel,
    header: HeaderValue,
}

impl Timed {
    pub fn new(inner: Channel, timeout: Duration) -> Self {
        // At most 8 digits (about 27 hours in milliseconds).
        let ms = timeout.as_millis().clamp(1, 99_999_999);
        let header = HeaderValue::from_str(&format!("{ms}m")).expect("digits and a unit");
        Timed { inner, header }
    }
}

impl Service<Request<Body>> for Timed {
    type Response = <Channel as Service<Request<Body>>>::Response;
    type Error = <Channel as Service<Request<Body>>>::Error;
    type Future = <Channel as Service<Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<Body>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // A deadline the call set itself wins.
        req.headers_mut()
            .entry("grpc-timeout")
            .or_insert_with(|| self.header.clone());
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tonic::service::interceptor::InterceptedService;
    use tonic::transport::{Endpoint, Server};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    #[tokio::test]
    async fn each_attempt_tells_the_server_its_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let svc = InterceptedService::new(health, move |req: tonic::Request<()>| {
            let t = req
                .metadata()
                .get("grpc-timeout")
                .map(|v| v.to_str().unwrap().to_string());
            log.lock().unwrap().push(t);
            Ok(req)
        });
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(
            Server::builder()
                .add_service(svc)
                .serve_with_incoming(incoming),
        );
        let ch = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();

        let mut c = HealthClient::new(Timed::new(ch.clone(), Duration::from_millis(1500)));
        c.check(HealthCheckRequest::default()).await.unwrap();
        // A deadline set on the request itself is kept.
        let mut own = tonic::Request::new(HealthCheckRequest::default());
        own.set_timeout(Duration::from_secs(3));
        c.check(own).await.unwrap();
        // Without the wrapper the server hears of no deadline.
        HealthClient::new(ch)
            .check(HealthCheckRequest::default())
            .await
            .unwrap();

        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                Some("1500m".to_string()),
                Some("3000000u".to_string()),
                None
            ]
        );
    }
}
