//! How a certificate names its holder, and how a node asserts the caller
//! of a call it forwards.
//!
//! The identity is one URI subject alternative name: `urn:rekap:node:<id>`
//! for a cluster node, `urn:rekap:user:<name>` for a person or program. The
//! common name is for people reading the certificate and is never trusted.
//! Node and user identities are disjoint by construction, so a user
//! certificate can never pass for a node (hashicorp/consul#792).

pub const NODE_URI_PREFIX: &str = "urn:rekap:node:";
pub const USER_URI_PREFIX: &str = "urn:rekap:user:";

/// Metadata keys a node sets when it forwards a user's call to the leader:
/// the user's name and certificate serial. Honoured only from a caller
/// holding a node certificate.
pub const ON_BEHALF_OF_HEADER: &str = "x-rekap-on-behalf-of";
pub const ON_BEHALF_SERIAL_HEADER: &str = "x-rekap-on-behalf-serial";

/// The holder a certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Named {
    Node(u64),
    User(String),
}

pub fn node_uri(id: u64) -> String {
    format!("{NODE_URI_PREFIX}{id}")
}

pub fn user_uri(name: &str) -> String {
    format!("{USER_URI_PREFIX}{name}")
}

/// A user name: 1 to 64 of letters, digits and `. _ @ -`, starting with a
/// letter or digit (so it never looks like an option or a path).
pub fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// The holder named by a URI SAN, if it is one of ours and well formed.
pub fn parse_uri(uri: &str) -> Option<Named> {
    if let Some(id) = uri.strip_prefix(NODE_URI_PREFIX) {
        let id: u64 = id.parse().ok().filter(|i| *i > 0)?;
        // No leading zeros or signs: one id, one spelling.
        return (id.to_string() == uri[NODE_URI_PREFIX.len()..]).then_some(Named::Node(id));
    }
    let name = uri.strip_prefix(USER_URI_PREFIX)?;
    valid_user_name(name).then(|| Named::User(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_reject_lookalikes() {
        assert_eq!(parse_uri(&node_uri(3)), Some(Named::Node(3)));
        assert_eq!(
            parse_uri(&user_uri("siti.a")),
            Some(Named::User("siti.a".into()))
        );
        for bad in [
            "urn:rekap:node:0",
            "urn:rekap:node:03",
            "urn:rekap:node:+3",
            "urn:rekap:node:",
            "urn:rekap:user:",
            "urn:rekap:user:-x",
            "urn:rekap:user:a b",
            "urn:rekap:admin:x",
            "spiffe://rekap/node/1",
        ] {
            assert_eq!(parse_uri(bad), None, "{bad}");
        }
    }
}
