//! `rekapctl certs`: make the cluster's certificates (rcgen). No cluster
//! needed: these only write files.

use std::path::PathBuf;

use clap::Subcommand;
use rekap_client::certs::{self, Validity};

#[derive(Subcommand)]
pub enum CertsCmd {
    /// Create a CA: ca.crt and ca.key (keep ca.key offline once the
    /// certificates are made).
    Init {
        /// Folder for the CA's files.
        #[arg(long, default_value = "certs/ca")]
        ca_dir: PathBuf,
        /// Name in the CA certificate, e.g. the election and the office.
        #[arg(long, default_value = "Rekap CA")]
        name: String,
        #[arg(long, default_value_t = 3650)]
        days: i64,
    },
    /// A node certificate: node.crt, node.key and ca.crt in --out.
    Node {
        /// The node id the certificate is for.
        id: u64,
        /// Every host name or IP address peers and clients reach the node by.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long, default_value = "certs/ca")]
        ca_dir: PathBuf,
        /// Folder to write to (the node's --certs-dir).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// Everything a new cluster needs, once: a CA (OUT/ca), a folder per
    /// node (OUT/node-ID) and per user (OUT/USER). Keeps what exists, so it
    /// can run on every start.
    Cluster {
        #[arg(long)]
        out: PathBuf,
        /// ID=HOST[,HOST...], e.g. 1=rekap1,127.0.0.1; repeat per node.
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
        /// A user certificate to make, e.g. the first admin; repeatable.
        #[arg(long = "user")]
        users: Vec<String>,
        /// Hosts of the dashboard's caching front (deploy/nginx), for a
        /// certificate in OUT/web; repeatable.
        #[arg(long = "web")]
        web: Vec<String>,
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// A certificate for the dashboard's caching front (deploy/nginx):
    /// web.crt, web.key and ca.crt in --out. Good for serving only: it
    /// names no node or user.
    Web {
        /// Every host name or IP address readers reach the front by.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long, default_value = "certs/ca")]
        ca_dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// What a certificate says: identity, serial, validity.
    Show { file: PathBuf },
    /// A user certificate: client.NAME.crt, client.NAME.key and ca.crt in
    /// --out. The name is what roles are granted to (rekapctl users).
    User {
        name: String,
        #[arg(long, default_value = "certs/ca")]
        ca_dir: PathBuf,
        /// Folder to write to (the user's --certs-dir).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
}

pub fn run(cmd: CertsCmd) -> anyhow::Result<()> {
    let path = match cmd {
        CertsCmd::Show { file } => return show(&file),
        CertsCmd::Cluster {
            out,
            nodes,
            users,
            web,
            days,
        } => {
            let nodes = nodes
                .iter()
                .map(|n| parse_node(n))
                .collect::<anyhow::Result<Vec<_>>>()?;
            for dir in certs::ensure_cluster(&out, &nodes, &users, &web, days)? {
                println!("made {}", dir.display());
            }
            return Ok(());
        }
        CertsCmd::Init { ca_dir, name, days } => {
            certs::init_ca(&ca_dir, &name, Validity::days(days))?
        }
        CertsCmd::Node {
            id,
            hosts,
            ca_dir,
            out,
            days,
        } => certs::issue_node(&ca_dir, &out, id, &hosts, Validity::days(days))?,
        CertsCmd::User {
            name,
            ca_dir,
            out,
            days,
        } => certs::issue_user(&ca_dir, &out, &name, Validity::days(days))?,
        CertsCmd::Web {
            hosts,
            ca_dir,
            out,
            days,
        } => certs::issue_web(&ca_dir, &out, &hosts, Validity::days(days))?,
    };
    println!("wrote {}", path.display());
    Ok(())
}

fn show(file: &std::path::Path) -> anyhow::Result<()> {
    use x509_parser::extensions::GeneralName;
    use x509_parser::pem::Pem;
    let bytes = std::fs::read(file)?;
    for pem in Pem::iter_from_buffer(&bytes) {
        let pem = pem?;
        let cert = pem.parse_x509()?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::URI(u) => names.push(u.to_string()),
                    GeneralName::DNSName(d) => names.push(format!("dns:{d}")),
                    GeneralName::IPAddress(ip) => names.push(format!("ip:{ip:?}")),
                    _ => {}
                }
            }
        }
        println!("subject:  {}", cert.subject());
        println!("issuer:   {}", cert.issuer());
        println!("serial:   {:x}", cert.serial);
        println!(
            "valid:    {} .. {}",
            cert.validity().not_before,
            cert.validity().not_after
        );
        println!("names:    {}", names.join(", "));
        println!("ca:       {}", cert.is_ca());
        println!();
    }
    Ok(())
}

/// `ID=HOST[,HOST...]`.
fn parse_node(s: &str) -> anyhow::Result<(u64, Vec<String>)> {
    let (id, hosts) = s
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--node {s:?} is not ID=HOST[,HOST...]"))?;
    let id: u64 = id.trim().parse()?;
    let hosts: Vec<String> = hosts.split(',').map(|h| h.trim().to_string()).collect();
    Ok((id, hosts))
}
