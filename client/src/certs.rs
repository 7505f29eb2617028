//! Certificates for a Rekap cluster, made with rcgen (`rekapctl certs`): a
//! CA, node certificates (server and client use; the node's identity and
//! the host names and addresses it is reached at) and user certificates
//! (client use only). The identity is a URI SAN (`rekap_proto::identity`).
//! Private keys are written with mode 0600.
//!
//! File names follow CockroachDB's: `ca.crt`/`ca.key`; `node.crt`/`node.key`;
//! `client.<user>.crt`/`client.<user>.key`. Every output folder also gets the
//! CA certificate as `ca.crt`, so a folder is all a node or a user needs.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rekap_proto::identity;
use time::{Duration, OffsetDateTime};

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const NODE_CERT: &str = "node.crt";
pub const NODE_KEY: &str = "node.key";
/// The caching front's (nginx's) certificate and key.
pub const WEB_CERT: &str = "web.crt";
pub const WEB_KEY: &str = "web.key";

pub fn user_cert_file(name: &str) -> String {
    format!("client.{name}.crt")
}

pub fn user_key_file(name: &str) -> String {
    format!("client.{name}.key")
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From an hour ago (clocks differ a little) for `days` days.
    pub fn days(days: i64) -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }
}

fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // A positive DER integer, and never zero.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn base(common_name: &str, validity: Validity) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Rekap");
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    p.not_before = validity.not_before;
    p.not_after = validity.not_after;
    p.serial_number = Some(serial());
    p
}

/// Writes `contents` to `path`, readable by its owner only.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // An existing file keeps its mode on open: set it.
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn write_public(path: &Path, contents: &str) -> anyhow::Result<()> {
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// Creates a CA in `dir` (`ca.crt`, `ca.key`). Refuses to overwrite one.
pub fn init_ca(dir: &Path, name: &str, validity: Validity) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let (crt, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    if key.exists() || crt.exists() {
        bail!(
            "{} already holds a CA; refusing to overwrite it",
            dir.display()
        );
    }
    let mut p = base(name, validity);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let kp = KeyPair::generate()?;
    let cert = p.self_signed(&kp)?;
    write_private(&key, &kp.serialize_pem())?;
    write_public(&crt, &cert.pem())?;
    Ok(crt)
}

/// The CA in `ca_dir`, ready to sign, and its certificate's PEM.
fn load_ca(ca_dir: &Path) -> anyhow::Result<(Issuer<'static, KeyPair>, String)> {
    let (crt, key) = (ca_dir.join(CA_CERT), ca_dir.join(CA_KEY));
    let ca_pem = fs::read_to_string(&crt).with_context(|| format!("reading {}", crt.display()))?;
    let key_pem = fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
    let kp = KeyPair::from_pem(&key_pem).with_context(|| format!("parsing {}", key.display()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, kp)
        .with_context(|| format!("parsing {}", crt.display()))?;
    Ok((issuer, ca_pem))
}

/// Puts the CA certificate into `out/ca.crt`; a bundle already there that
/// lacks it gets it appended (old and new CA side by side in a rotation).
fn place_ca(out: &Path, ca_pem: &str) -> anyhow::Result<()> {
    let path = out.join(CA_CERT);
    match fs::read_to_string(&path) {
        Ok(existing) if existing.contains(ca_pem.trim()) => Ok(()),
        Ok(existing) => write_public(&path, &format!("{}\n{}", existing.trim_end(), ca_pem)),
        Err(_) => write_public(&path, ca_pem),
    }
}

fn sign(
    ca_dir: &Path,
    out: &Path,
    mut p: CertificateParams,
    files: (&str, &str),
) -> anyhow::Result<PathBuf> {
    let (issuer, ca_pem) = load_ca(ca_dir)?;
    fs::create_dir_all(out)?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    let kp = KeyPair::generate()?;
    let cert = p.signed_by(&kp, &issuer)?;
    let crt = out.join(files.0);
    write_private(&out.join(files.1), &kp.serialize_pem())?;
    write_public(&crt, &cert.pem())?;
    place_ca(out, &ca_pem)?;
    Ok(crt)
}

/// A node certificate for node `id`, reachable at `hosts` (DNS names or IP
/// addresses), into `out/node.crt` and `out/node.key`.
pub fn issue_node(
    ca_dir: &Path,
    out: &Path,
    id: u64,
    hosts: &[String],
    validity: Validity,
) -> anyhow::Result<PathBuf> {
    if id == 0 {
        bail!("node ids start at 1");
    }
    if hosts.is_empty() {
        bail!("a node certificate needs at least one --host its peers and clients reach it by");
    }
    let mut p = base(&format!("node-{id}"), validity);
    p.subject_alt_names
        .push(SanType::URI(identity::node_uri(id).try_into()?));
    for h in hosts {
        p.subject_alt_names.push(san(h)?);
    }
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    sign(ca_dir, out, p, (NODE_CERT, NODE_KEY))
}

/// A certificate for the dashboard's caching front (nginx) at `hosts`, into
/// `out/web.crt` and `out/web.key`. It names no node and no user and is
/// good for serving only, so it opens nothing on a node's gRPC port. A
/// public dashboard would present a certificate browsers trust instead;
/// this one is for a front that only the office's own machines read.
pub fn issue_web(
    ca_dir: &Path,
    out: &Path,
    hosts: &[String],
    validity: Validity,
) -> anyhow::Result<PathBuf> {
    if hosts.is_empty() {
        bail!("a web certificate needs at least one --host its readers reach it by");
    }
    let mut p = base("rekap-web", validity);
    for h in hosts {
        p.subject_alt_names.push(san(h)?);
    }
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sign(ca_dir, out, p, (WEB_CERT, WEB_KEY))
}

fn san(h: &str) -> anyhow::Result<SanType> {
    Ok(match h.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            h.to_string()
                .try_into()
                .with_context(|| format!("bad host name {h:?}"))?,
        ),
    })
}

/// A user certificate for `name` into `out/client.<name>.crt` and `.key`.
pub fn issue_user(
    ca_dir: &Path,
    out: &Path,
    name: &str,
    validity: Validity,
) -> anyhow::Result<PathBuf> {
    if !identity::valid_user_name(name) {
        bail!(
            "{name:?} is not a valid user name (1-64 of letters, digits and . _ @ -, starting with a letter or digit)"
        );
    }
    let mut p = base(name, validity);
    p.subject_alt_names
        .push(SanType::URI(identity::user_uri(name).try_into()?));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    sign(
        ca_dir,
        out,
        p,
        (&user_cert_file(name), &user_key_file(name)),
    )
}

/// Everything a new cluster needs, made once: a CA in `out/ca`, each node's
/// folder `out/node-<id>` and each user's `out/<user>`. What exists already
/// is kept, so this can run on every start (a compose or Kubernetes init
/// step). With `web` hosts, also the caching front's folder `out/web`.
/// Returns the folders it created.
pub fn ensure_cluster(
    out: &Path,
    nodes: &[(u64, Vec<String>)],
    users: &[String],
    web: &[String],
    days: i64,
) -> anyhow::Result<Vec<PathBuf>> {
    let ca = out.join("ca");
    let mut made = Vec::new();
    if !ca.join(CA_KEY).exists() {
        init_ca(&ca, "Rekap CA", Validity::days(days.max(3650)))?;
        made.push(ca.clone());
    }
    for (id, hosts) in nodes {
        let dir = out.join(format!("node-{id}"));
        if !dir.join(NODE_CERT).exists() {
            issue_node(&ca, &dir, *id, hosts, Validity::days(days))?;
            made.push(dir);
        }
    }
    for u in users {
        let dir = out.join(u);
        if !dir.join(user_cert_file(u)).exists() {
            issue_user(&ca, &dir, u, Validity::days(days))?;
            made.push(dir);
        }
    }
    let dir = out.join("web");
    if !web.is_empty() && !dir.join(WEB_CERT).exists() {
        issue_web(&ca, &dir, web, Validity::days(days))?;
        made.push(dir);
    }
    Ok(made)
}
