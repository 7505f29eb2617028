//! The test harness's WAN emulator as a process, for `tests/bench/wan.sh`:
//! puts a proxy in front of each node of any system (Rekap, etcd) and
//! shapes the links as `rekap_tests::wan` does, until killed.
//!
//!   rekap-wan --front 1:127.0.0.1:7601:127.0.0.1:7501 ... [--regional]
//!             [--control FILE]
//!
//! The control file is read again whenever it changes; each line sets an
//! office: `shape ID DELAY_MS JITTER_MS STALL_PERCENT MBIT` (MBIT 0: no
//! cap), `cut ID` or `heal ID`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use rekap_tests::wan::{Shape, Wan};

#[derive(Parser)]
struct Args {
    /// OFFICE:LISTEN-HOST:PORT:UPSTREAM-HOST:PORT, one per proxied port.
    #[arg(long, required = true)]
    front: Vec<String>,
    /// Put offices 1–3 on the regional profile at start.
    #[arg(long)]
    regional: bool,
    #[arg(long)]
    control: Option<PathBuf>,
}

fn front(spec: &str) -> anyhow::Result<(u64, SocketAddr, SocketAddr)> {
    let (id, rest) = spec
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--front {spec}: no office"))?;
    let parts: Vec<&str> = rest.split(':').collect();
    anyhow::ensure!(
        parts.len() == 4,
        "--front {spec}: want OFFICE:HOST:PORT:HOST:PORT"
    );
    Ok((
        id.parse()?,
        format!("{}:{}", parts[0], parts[1]).parse()?,
        format!("{}:{}", parts[2], parts[3]).parse()?,
    ))
}

fn apply(wan: &Wan, text: &str) -> anyhow::Result<()> {
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["shape", id, delay, jitter, stall, mbit] => {
                let mut s = Shape::new(delay.parse()?, jitter.parse()?)
                    .stalls(stall.parse::<f64>()? / 100.0);
                let mbit: f64 = mbit.parse()?;
                if mbit > 0.0 {
                    s = s.mbit(mbit);
                }
                wan.shape_both(id.parse()?, s);
            }
            ["cut", id] => wan.cut(id.parse()?, true),
            ["heal", id] => wan.cut(id.parse()?, false),
            _ => anyhow::bail!("control line {line:?} not understood"),
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let wan = Wan::new();
    for spec in &args.front {
        let (id, listen, upstream) = front(spec)?;
        wan.front_at(id, listen, upstream);
    }
    if args.regional {
        wan.regional();
    }
    let mut seen = None;
    loop {
        if let Some(path) = &args.control
            && let Ok(meta) = std::fs::metadata(path)
        {
            let stamp = meta.modified().ok();
            if stamp != seen {
                seen = stamp;
                if let Err(e) = apply(&wan, &std::fs::read_to_string(path)?) {
                    eprintln!("{e}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
