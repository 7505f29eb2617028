//! What a certificate says about its holder: the identity in its URI
//! subject alternative name, its serial number and its validity.

use rekap_proto::identity::{self, Named};
use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub named: Named,
    /// Serial number, lower-case hex without leading zeros.
    pub serial: String,
    /// Validity, in Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

/// Reads the identity of a certificate that has already been verified.
/// Exactly one Rekap URI SAN must be present.
pub fn parse(der: &CertificateDer<'_>) -> Result<CertInfo, String> {
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| format!("certificate does not parse: {e}"))?;
    let mut named = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && uri.starts_with("urn:rekap:")
            {
                named.push(
                    identity::parse_uri(uri)
                        .ok_or_else(|| format!("malformed identity {uri:?} in the certificate"))?,
                );
            }
        }
    }
    let named = match named.len() {
        1 => named.pop().expect("one identity"),
        0 => {
            return Err(
                "the certificate names no Rekap identity (a URI SAN urn:rekap:node:<id> or urn:rekap:user:<name>); make it with rekapctl certs"
                    .into(),
            );
        }
        _ => return Err("the certificate names more than one Rekap identity".into()),
    };
    Ok(CertInfo {
        named,
        serial: format!("{:x}", cert.serial),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// A verification failure in words an operator can act on.
pub fn explain(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => "certificate expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "certificate is not valid yet".into(),
            C::UnknownIssuer => "certificate is not signed by a CA this cluster trusts".into(),
            C::BadSignature => {
                "certificate is not signed by a CA this cluster trusts (its signature does not verify)".into()
            }
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "certificate is not meant for this use (extended key usage)".into()
            }
            C::Revoked => "certificate is revoked".into(),
            other => format!("certificate refused: {other:?}"),
        },
        other => format!("certificate refused: {other}"),
    }
}
