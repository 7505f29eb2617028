//! Sending a run of requests with a few in flight at once, so the leader's
//! log, replication and apply stay busy together instead of taking turns
//! (`import` and `registry load`).

use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesOrdered;

/// Requests sent before the first is answered.
pub const IN_FLIGHT: usize = 4;

/// Sends each item with `send`, keeping up to `IN_FLIGHT` unanswered, and
/// hands the answers to `done` in sending order. An item marked `after_all`
/// is sent only once everything before it is answered (it depends on them).
pub async fn pipelined<T, R, Fut>(
    items: impl IntoIterator<Item = (T, bool)>,
    mut send: impl FnMut(T) -> Fut,
    mut done: impl FnMut(R) -> anyhow::Result<()>,
) -> anyhow::Result<()>
where
    Fut: Future<Output = R>,
{
    let mut inflight = FuturesOrdered::new();
    for (item, after_all) in items {
        while !inflight.is_empty() && (after_all || inflight.len() >= IN_FLIGHT) {
            done(inflight.next().await.expect("not empty"))?;
        }
        inflight.push_back(send(item));
    }
    while let Some(r) = inflight.next().await {
        done(r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Each item records how many were unanswered when it was sent; answers
    /// come back in sending order.
    #[tokio::test]
    async fn keeps_a_few_in_flight_and_waits_before_an_item_that_needs_the_rest() {
        let unanswered = RefCell::new(0usize);
        let seen_at_send = RefCell::new(Vec::new());
        let mut answered = Vec::new();
        let items = (0..10).map(|i| (i, i == 6));
        pipelined(
            items,
            |i| {
                seen_at_send.borrow_mut().push((i, *unanswered.borrow()));
                *unanswered.borrow_mut() += 1;
                let unanswered = &unanswered;
                async move {
                    tokio::task::yield_now().await;
                    *unanswered.borrow_mut() -= 1;
                    i
                }
            },
            |i| {
                answered.push(i);
                Ok(())
            },
        )
        .await
        .unwrap();
        assert_eq!(answered, (0..10).collect::<Vec<_>>());
        let seen = seen_at_send.into_inner();
        assert!(seen.iter().all(|(_, n)| *n < IN_FLIGHT), "{seen:?}");
        assert!(seen.iter().any(|(_, n)| *n == IN_FLIGHT - 1), "{seen:?}");
        assert_eq!(seen[6], (6, 0), "item 6 waits for all before it");
    }
}
