//! The command line. Every flag can also come from `CAIRN_<FLAG>` and from the config file
//! (`/etc/cairn/config.yaml`, keys = long flag names); the command line wins over the environment,
//! which wins over the file.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The default log filter.
pub const DEFAULT_LOG: &str = "info,openraft=warn";

/// cairn: a small Kubernetes distribution in one binary.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, args_override_self = true)]
pub struct Cli {
    /// The config file whose keys are long flag names.
    #[arg(
        long,
        global = true,
        env = "CAIRN_CONFIG",
        default_value = "/etc/cairn/config.yaml"
    )]
    pub config: PathBuf,
    /// Log filter (tracing's syntax, e.g. `info,cairn_kv=debug`).
    #[arg(long, global = true, env = "CAIRN_LOG", default_value = DEFAULT_LOG)]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server: the replicated store and the control plane.
    Server(Box<ServerArgs>),
    /// Print the join token of a server.
    Token(TokenArgs),
    /// Save or restore a snapshot of the store.
    #[command(subcommand, name = "etcd-snapshot")]
    EtcdSnapshot(SnapshotCommand),
    /// Images and containers on this node (like k3s's ctr and crictl).
    Ctr(crate::ctr::CtrArgs),
    /// The container shim the runtime re-executes (not for people).
    #[command(hide = true)]
    Shim(crate::ctr::ShimArgs),
}

/// `cairn server`.
#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// Where the server keeps its state.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "/var/lib/cairn")]
    pub data_dir: PathBuf,
    /// The address the HTTPS and Raft ports listen on.
    #[arg(long, env = "CAIRN_BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The address other servers and agents use to reach this one (default: the bind address,
    /// or this host's primary address when binding to all).
    #[arg(long, env = "CAIRN_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<IpAddr>,
    /// The HTTPS port: the Kubernetes API and the join endpoints.
    #[arg(long, env = "CAIRN_HTTPS_LISTEN_PORT", default_value_t = 6443)]
    pub https_listen_port: u16,
    /// The port for Raft traffic between servers (mutual TLS).
    #[arg(long, env = "CAIRN_RAFT_PORT", default_value_t = 2380)]
    pub raft_port: u16,
    /// Where the etcd v3 API listens.
    #[arg(long, env = "CAIRN_ETCD_ADDRESS", default_value = "127.0.0.1:2379")]
    pub etcd_address: std::net::SocketAddr,
    /// The join token (or, on the first server, the secret to use in it).
    #[arg(
        long,
        env = "CAIRN_TOKEN",
        conflicts_with = "token_file",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A file holding the join token.
    #[arg(long, env = "CAIRN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// An existing server to join (`https://HOST:6443`).
    #[arg(long, env = "CAIRN_SERVER")]
    pub server: Option<String>,
    /// This node's name (default: the host name).
    #[arg(long, env = "CAIRN_NODE_NAME")]
    pub node_name: Option<String>,
    /// Do not run an agent on this server.
    #[arg(long, env = "CAIRN_DISABLE_AGENT")]
    pub disable_agent: bool,
    /// Do not run the controller manager on this server.
    #[arg(long, env = "CAIRN_DISABLE_CONTROLLER_MANAGER")]
    pub disable_controller_manager: bool,
    /// Do not run the scheduler on this server.
    #[arg(long, env = "CAIRN_DISABLE_SCHEDULER")]
    pub disable_scheduler: bool,
    /// Extra names or addresses for the serving certificate.
    #[arg(long, env = "CAIRN_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Where to write the admin kubeconfig.
    #[arg(
        long,
        env = "CAIRN_WRITE_KUBECONFIG",
        default_value = "/etc/cairn/cairn.yaml"
    )]
    pub write_kubeconfig: PathBuf,
    /// The file mode of the admin kubeconfig (octal).
    #[arg(long, env = "CAIRN_WRITE_KUBECONFIG_MODE", default_value = "0600", value_parser = parse_mode)]
    pub write_kubeconfig_mode: u32,
    /// A file of bearer tokens for the Kubernetes API: `token,user,uid,"group1,group2"` per line.
    #[arg(long, env = "CAIRN_TOKEN_AUTH_FILE")]
    pub token_auth_file: Option<PathBuf>,
    /// How much history the store keeps before compacting it (`0` turns automatic compaction
    /// off).
    #[arg(long, env = "CAIRN_ETCD_COMPACTION_RETENTION", default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_retention: Duration,
    /// Build a Raft snapshot (and purge the log) after this many entries (etcd 3.4: 100,000).
    #[arg(long, env = "CAIRN_ETCD_SNAPSHOT_COUNT", default_value_t = 100_000)]
    pub etcd_snapshot_count: u64,
    /// How often a watch with progress notification enabled gets one (k3s runs etcd with 5s).
    #[arg(long, env = "CAIRN_ETCD_PROGRESS_NOTIFY_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub etcd_progress_notify_interval: Duration,
}

/// `cairn token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The server's data directory.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "/var/lib/cairn")]
    pub data_dir: PathBuf,
}

/// `cairn etcd-snapshot`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save a snapshot of a running server's store to FILE.
    Save {
        /// The file to write.
        file: PathBuf,
        /// The server's etcd API.
        #[arg(long, env = "CAIRN_ETCD_ADDRESS", default_value = "127.0.0.1:2379")]
        etcd_address: std::net::SocketAddr,
    },
    /// Restore FILE into a new data directory; a server started on it forms a new one-member
    /// cluster with the same data.
    Restore {
        /// The snapshot file.
        file: PathBuf,
        /// The new server's data directory (must not hold a store yet).
        #[arg(long, env = "CAIRN_DATA_DIR", default_value = "/var/lib/cairn")]
        data_dir: PathBuf,
    },
}

/// Parses an octal file mode (`0600`, `644`).
pub fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim().trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("invalid file mode {s:?} (use octal, e.g. 0600)"))
}

/// Parses `90s`, `5m`, `1h`, `250ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert!(parse_mode("999").is_err());
    }
}
