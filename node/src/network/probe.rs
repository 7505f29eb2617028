//! Telling a peer whose process is gone from one that is slow or cut off:
//! the first refuses a new connection, the others leave it unanswered.

use std::error::Error as _;
use std::time::Duration;

use super::{ChannelPool, endpoint};

impl ChannelPool {
    /// Whether `addr` refuses a new connection: it is refused, or closed
    /// or reset before it answers, within `within` (a process that is gone
    /// from a host that is up). `false` when it connects, and when nothing
    /// answers (a dead host, a cut link, a frozen process): silence proves
    /// nothing. A fresh connection, not the pool's: a pooled one may be
    /// half dead, or still open.
    pub async fn refuses(&self, addr: &str, within: Duration) -> bool {
        let Ok(ep) = endpoint(addr, self.tls.as_deref()) else {
            return false;
        };
        let ep = ep
            .local_address(self.links.source)
            .connect_timeout(within)
            .tcp_nodelay(true);
        let start = std::time::Instant::now();
        let ch = match tokio::time::timeout(within, ep.connect()).await {
            Ok(Ok(ch)) => ch,
            Ok(Err(e)) => return refused(&e),
            Err(_) => return false,
        };
        // Plaintext HTTP/2 connects without hearing from the far end: ask.
        let left = within.saturating_sub(start.elapsed());
        let mut health = tonic_health::pb::health_client::HealthClient::new(ch);
        let req = tonic_health::pb::HealthCheckRequest::default();
        match tokio::time::timeout(left, health.check(req)).await {
            // Closed under the call by the far end, not answered by it.
            Ok(Err(status)) => {
                refused(&status)
                    || status
                        .source()
                        .is_some_and(|e| e.is::<tonic::transport::Error>())
            }
            _ => false,
        }
    }
}

/// Whether a failed connect was turned away by the far end, rather than
/// failing on this side (an address, a certificate) or timing out.
fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::*;
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | UnexpectedEof
                    | BrokenPipe
            );
        }
        cause = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Links;
    use crate::timing::Timing;
    use tokio::net::TcpListener;

    const WITHIN: Duration = Duration::from_millis(500);

    fn pool() -> ChannelPool {
        ChannelPool::new(None, Links::new(None, None, Timing::default()))
    }

    #[tokio::test]
    async fn a_closed_port_refuses() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        assert!(pool().refuses(&addr, WITHIN).await);
    }

    #[tokio::test]
    async fn a_proxy_that_closes_at_once_refuses() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((conn, _)) = l.accept().await {
                drop(conn);
            }
        });
        assert!(pool().refuses(&addr, WITHIN).await);
    }

    #[tokio::test]
    async fn silence_and_a_live_server_do_not() {
        // Accepts and never answers: a frozen process, or a cut link.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = l.local_addr().unwrap().to_string();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = l.accept().await {
                open.push(conn);
            }
        });
        assert!(!pool().refuses(&silent, WITHIN).await);
        held.abort();

        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = l.local_addr().unwrap().to_string();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(tonic_health::server::health_reporter().1)
                .serve_with_incoming(incoming),
        );
        assert!(!pool().refuses(&live, WITHIN).await);
    }
}
