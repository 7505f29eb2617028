//! How long a forwarded call may take, from the caller's `grpc-timeout`.

use std::time::Duration;

/// How long a forward may take: the caller's deadline (its `grpc-timeout`)
/// less a fifth, so the answer (or the news that the leader is slow) gets
/// back in time: 4 s of the client library's 5 s attempt, and most of a
/// long deadline to a call that waits on purpose (a blocking add-learner).
/// `default` (the timing's, `Timing::forward_default`) when the caller set
/// none.
pub fn forward_budget(md: &tonic::metadata::MetadataMap, default: Duration) -> Duration {
    let Some(t) = md
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(grpc_timeout)
    else {
        return default;
    };
    t.saturating_sub((t / 5).max(Duration::from_millis(100)))
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit.
fn grpc_timeout(v: &str) -> Option<Duration> {
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    if n.is_empty() || n.len() > 8 {
        return None;
    }
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Duration = Duration::from_secs(4);

    fn budget(header: Option<&str>) -> Duration {
        let mut md = tonic::metadata::MetadataMap::new();
        if let Some(h) = header {
            md.insert("grpc-timeout", h.parse().unwrap());
        }
        forward_budget(&md, DEFAULT)
    }

    #[test]
    fn a_forward_keeps_a_fifth_of_the_callers_deadline_in_hand() {
        assert_eq!(budget(Some("5000m")), Duration::from_secs(4));
        assert_eq!(budget(Some("120S")), Duration::from_secs(96));
        assert_eq!(budget(Some("2M")), Duration::from_secs(96));
        assert_eq!(budget(Some("300m")), Duration::from_millis(200));
        assert_eq!(budget(None), DEFAULT);
        for bad in ["", "m", "12x", "123456789S", "-5S"] {
            assert_eq!(budget(Some(bad)), DEFAULT, "{bad:?}");
        }
    }
}
