//! `/metrics` as Prometheus reads it: the node's registry (`crate::metrics`)
//! with the figures read off the node at the scrape, in the OpenMetrics
//! text format or the classic one.

use openraft::async_runtime::WatchReceiver;

use crate::metrics::Now;
use crate::node::Node;

/// What `encode` writes: the OpenMetrics text format, which Prometheus
/// asks for first.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic text format, for every other client (curl, `promtool check
/// metrics`).
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text as the classic format: a counter's HELP and TYPE name
/// its `_total` sample, and there are no UNIT or EOF lines.
pub fn to_classic(open: &str) -> String {
    let counters: std::collections::HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let sep = if tail.is_empty() { "" } else { " " };
                let total = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{p}{name}{total}{sep}{tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The node's metrics in the OpenMetrics text format, as of now.
pub fn render(node: &Node) -> Result<String, std::fmt::Error> {
    let raft = node.raft.metrics().borrow_watched().clone();
    let counts = node
        .sm
        .try_view()
        .ok()
        .map(|view| view.tally.kabupaten_counts());
    node.metrics.render(Now {
        raft: &raft,
        applied: node.sm.applied_index(),
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_format_names_counters_by_their_total_sample() {
        let open = "# HELP a_changes Changes.\n# TYPE a_changes counter\na_changes_total 2\n\
                    # HELP b Gauge.\n# TYPE b gauge\nb 1\n\
                    # HELP d_seconds D.\n# TYPE d_seconds histogram\n# UNIT d_seconds seconds\n\
                    d_seconds_sum 0.5\nd_seconds_count 1\n# EOF\n";
        assert_eq!(
            to_classic(open),
            "# HELP a_changes_total Changes.\n# TYPE a_changes_total counter\na_changes_total 2\n\
             # HELP b Gauge.\n# TYPE b gauge\nb 1\n\
             # HELP d_seconds D.\n# TYPE d_seconds histogram\n\
             d_seconds_sum 0.5\nd_seconds_count 1\n"
        );
    }
}
