//! Named crash points, for tests that must kill a node at one exact step
//! (part-way through receiving a snapshot, or through installing one)
//! rather than whenever a timer happens to fire. They are inert unless
//! `FAILPOINTS` names one when the node starts, in the `fail` crate's
//! syntax (`name=return`, several joined by `;`); a node started with any
//! says so in its log.

/// Ends the process here, as `kill -9` would (no destructor runs, nothing
/// is flushed), when this point is set.
pub fn point(name: &str) {
    if fail::eval(name, |_| ()).is_some() {
        tracing::warn!(point = name, "crash point reached: killing this process");
        // SAFETY: sends this process a signal; nothing runs after it.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Sets the points `FAILPOINTS` names, if any.
pub fn setup() -> anyhow::Result<()> {
    let points = std::env::var("FAILPOINTS").unwrap_or_default();
    // Unset is the normal case: no warning in the log of every real node.
    if points.trim().is_empty() {
        return Ok(());
    }
    // A trailing or doubled `;` (easy to leave in a shell string) is not a
    // point without an action.
    for p in points.split(';').filter(|p| !p.trim().is_empty()) {
        let (name, action) = p
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("FAILPOINTS: {p:?} is not name=action"))?;
        fail::cfg(name.trim(), action.trim())
            .map_err(|e| anyhow::anyhow!("FAILPOINTS: {name}: {e}"))?;
    }
    tracing::warn!(%points, "crash points set (FAILPOINTS): this node is under test");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unset_point_does_nothing_and_a_bad_action_is_refused() {
        super::point("no-such-point");
        assert!(fail::cfg("crash-test-point", "no-such-action").is_err());
    }
}
