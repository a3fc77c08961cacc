//! `cairn server`: the PKI and token, the replicated store (a new one-member cluster, or joined to
//! an existing one), the etcd API and the HTTPS port, until a signal stops it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cairn_kv::{Config, Member, PeerTls, Store};
use cairn_pki::{CertRequest, ServerPki, Token, Usage};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::cli::ServerArgs;
use crate::data_dir::ServerDir;
use crate::https::{self, Endpoints};
use crate::join;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The address others reach this server at.
fn advertise_address(args: &ServerArgs) -> IpAddr {
    if let Some(a) = args.advertise_address {
        return a;
    }
    if !args.bind_address.is_unspecified() {
        return args.bind_address;
    }
    // The source address of the default route; nothing is sent.
    std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| {
            s.connect((Ipv4Addr::new(10, 255, 255, 255), 1))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn token_arg(args: &ServerArgs) -> Result<Option<Token>> {
    let text = match (&args.token, &args.token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("read token file {}", f.display()))?,
        (None, None) => return Ok(None),
    };
    Ok(Some(Token::parse(&text).context("invalid --token")?))
}

/// The cluster ID: derived from the CA, so every server agrees on it without being told.
fn cluster_id(ca_pem: &str) -> u64 {
    let d = Sha256::digest(ca_pem.as_bytes());
    u64::from_be_bytes(d[..8].try_into().unwrap_or_default())
}

/// Loads the token, or creates it on the first start of the first server.
fn server_token(dir: &ServerDir, pki: &ServerPki, given: Option<&Token>) -> Result<Token> {
    let path = dir.token();
    let ca = pki.ca_bundle_pem().as_bytes();
    if path.exists() {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let token =
            Token::parse(&text).with_context(|| format!("invalid token in {}", path.display()))?;
        if let Some(g) = given
            && !token.secret_matches(g.secret())
        {
            tracing::warn!(
                "--token differs from the token this server was set up with; keeping {}",
                path.display()
            );
        }
        return Ok(token);
    }
    let token = match given {
        Some(g) => {
            if g.ca_hash().is_some() {
                cairn_pki::verify_ca(g, ca).context("--token pins another cluster's CA")?;
            }
            Token::pinned(ca, cairn_pki::SERVER_USER, g.secret())?
        }
        None => Token::generate_server(ca),
    };
    cairn_pki::write_atomic(&path, format!("{token}\n").as_bytes(), 0o600)?;
    Ok(token)
}

fn issue(
    pki: &ServerPki,
    cn: &str,
    usage: Usage,
    ips: &[IpAddr],
    dns: &[String],
) -> Result<cairn_pki::Issued> {
    let mut req = CertRequest::new(cn, usage);
    for ip in ips {
        req = req.ip_address(*ip);
    }
    for name in dns {
        req = req.dns_name(name.clone());
    }
    Ok(pki.ca().issue(&req)?)
}

/// Runs the server until `shutdown` is cancelled.
pub async fn run(args: ServerArgs, shutdown: CancellationToken) -> Result<()> {
    let dir = ServerDir::new(&args.data_dir);
    let _lock = dir.lock()?;
    let node_name = args.node_name.clone().unwrap_or_else(hostname);
    let advertise = advertise_address(&args);
    let given = token_arg(&args)?;

    // The cluster CA: our own, or the cluster's when joining for the first time.
    let ca_file = dir.tls().join(cairn_pki::CA_CERT_FILE);
    if let Some(server) = &args.server
        && !ca_file.exists()
        && !dir.db().exists()
    {
        let token = given
            .as_ref()
            .context("joining a cluster (--server) needs --token or --token-file")?;
        let b = join::bootstrap(server, token).await?;
        std::fs::create_dir_all(dir.tls())?;
        cairn_pki::write_atomic(
            &dir.tls().join(cairn_pki::CA_KEY_FILE),
            b.ca_key.as_bytes(),
            0o600,
        )?;
        cairn_pki::write_atomic(&ca_file, b.ca_cert.as_bytes(), 0o644)?;
    }
    let pki = ServerPki::load_or_create(dir.tls()).context("load the cluster CA")?;
    let token = server_token(&dir, &pki, given.as_ref())?;

    let mut ips = vec![advertise, IpAddr::V4(Ipv4Addr::LOCALHOST)];
    if !args.bind_address.is_unspecified() {
        ips.push(args.bind_address);
    }
    let mut names = vec!["localhost".to_string(), node_name.clone()];
    for san in &args.tls_san {
        match san.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => names.push(san.clone()),
        }
    }
    ips.dedup();
    let peer_cert = issue(&pki, &node_name, Usage::ServerAndClient, &ips, &names)?;
    let serving = issue(&pki, "cairn", Usage::Server, &ips, &names)?;

    let member = Member {
        name: node_name.clone(),
        peer_url: format!("https://{}", SocketAddr::new(advertise, args.raft_port)),
        client_url: format!("http://{}", args.etcd_address),
        api_url: format!(
            "https://{}",
            SocketAddr::new(advertise, args.https_listen_port)
        ),
    };
    let mut config = Config::new(
        dir.db(),
        cluster_id(pki.ca_bundle_pem()),
        member.clone(),
        SocketAddr::new(args.bind_address, args.raft_port),
    );
    config.peer_tls = Some(PeerTls {
        ca_pem: pki.ca_bundle_pem().to_string(),
        cert_pem: peer_cert.cert_pem.clone(),
        key_pem: peer_cert.key_pem.clone(),
    });
    config.compaction_retention = args.etcd_compaction_retention;
    config.snapshot_threshold = args.etcd_snapshot_count;
    let store = Store::open(config).await?;

    // The listeners come up before joining: the leader replicates to us while it adds us.
    let https_addr = SocketAddr::new(args.bind_address, args.https_listen_port);
    let https_listener = tokio::net::TcpListener::bind(https_addr)
        .await
        .with_context(|| format!("listen on {https_addr} (HTTPS)"))?;
    let etcd_listener = tokio::net::TcpListener::bind(args.etcd_address)
        .await
        .with_context(|| format!("listen on {} (etcd API)", args.etcd_address))?;
    let tls = cairn_pki::server_config(
        pki.ca_bundle_pem(),
        &serving.cert_pem,
        &serving.key_pem,
        cairn_pki::ClientAuth::Optional,
        &[cairn_pki::ALPN_H2, cairn_pki::ALPN_HTTP_1_1],
    )?;
    let endpoints = Arc::new(Endpoints {
        store: store.clone(),
        ca_cert: pki.ca_bundle_pem().to_string(),
        ca_key: pki.ca().key_pem().to_string(),
        token: token.clone(),
    });
    let tokens = match &args.token_auth_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read the token file {}", path.display()))?;
            cairn_apiserver::Tokens::parse(&text)
                .with_context(|| format!("invalid token file {}", path.display()))?
        }
        None => cairn_apiserver::Tokens::default(),
    };
    let api = cairn_apiserver::ApiServer::new(cairn_apiserver::Config {
        store: store.clone(),
        tokens,
        advertise: SocketAddr::new(advertise, args.https_listen_port).to_string(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(cairn_apiserver::serve(
        https_listener,
        tls,
        api.clone(),
        Arc::new(https::Routes(endpoints)),
        shutdown.clone(),
    ));
    let etcd_config = cairn_etcd::EtcdServerConfig {
        progress_notify_interval: args.etcd_progress_notify_interval,
        ..Default::default()
    };
    let etcd_shutdown = shutdown.clone();
    tasks.spawn(cairn_etcd::serve(
        store.clone(),
        etcd_listener,
        etcd_config,
        None,
        async move { etcd_shutdown.cancelled().await },
    ));

    if !store.is_initialized().await? {
        match &args.server {
            Some(server) => {
                tracing::info!(%server, id = format!("{:x}", store.id()), "joining the cluster");
                join::join(server, pki.ca_bundle_pem(), &token, store.id(), member).await?;
                store
                    .wait_for_voter(Duration::from_secs(120))
                    .await
                    .context("waiting to become a voter")?;
            }
            None => {
                tracing::info!(id = format!("{:x}", store.id()), "starting a new cluster");
                store.bootstrap().await?;
            }
        }
    }
    api.ensure_system_namespaces()
        .await
        .context("create the system namespaces")?;
    let local = if args.bind_address.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        args.bind_address
    };
    let api_url = format!("https://{}", SocketAddr::new(local, args.https_listen_port));
    crate::kubeconfig::write(
        &args.write_kubeconfig,
        args.write_kubeconfig_mode,
        &api_url,
        &pki,
    )?;
    let (cert, key) = crate::kubeconfig::admin_credentials(&pki)?;
    let client = cairn_client::Client::new(cairn_client::Config::new(
        api_url.clone(),
        pki.ca_bundle_pem(),
        cairn_client::Credentials::ClientCert {
            cert_pem: cert,
            key_pem: key,
        },
    ))
    .context("a client of our own API for the control loops")?;
    let identity = format!("{node_name}_{:x}", store.id());
    if !args.disable_scheduler {
        tasks.spawn(while_leader(
            client.with_field_manager(cairn_scheduler::SCHEDULER_NAME),
            "kube-scheduler",
            identity.clone(),
            shutdown.clone(),
            cairn_scheduler::run,
        ));
    }
    if !args.disable_controller_manager {
        tasks.spawn(while_leader(
            client.with_field_manager("cairn-controller-manager"),
            cairn_controllers::LEASE,
            identity,
            shutdown.clone(),
            cairn_controllers::run,
        ));
    }
    if args.disable_agent {
        tracing::debug!("agent disabled");
    }
    tracing::info!(
        node = %node_name,
        id = format!("{:x}", store.id()),
        etcd = %args.etcd_address,
        https = %https_addr,
        kubeconfig = %args.write_kubeconfig.display(),
        "cairn server is running"
    );
    // A store that failed cannot recover in place: exit, so the service manager restarts us
    // and the member recovers from its log.
    let failure = tokio::select! {
        _ = shutdown.cancelled() => None,
        reason = store.failed() => Some(reason),
    };
    tracing::info!("shutting down");
    shutdown.cancel();
    store.shutdown().await;
    tasks.shutdown().await;
    match failure {
        Some(reason) => bail!("the store failed: {reason}"),
        None => Ok(()),
    }
}

/// Runs `component` while this server holds the component's Lease in `kube-system` (one
/// active scheduler or controller manager per cluster, as upstream elects them), stopping it
/// when leadership is lost and starting it again when it is regained.
async fn while_leader<F, Fut>(
    client: cairn_client::Client,
    lease: &'static str,
    identity: String,
    shutdown: CancellationToken,
    component: F,
) where
    F: Fn(cairn_client::Client, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let config = cairn_client::LeaderElectionConfig::new("kube-system", lease, &identity);
    let elector = match cairn_client::LeaderElector::new(client.clone(), config) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(lease, error = %e, "cannot elect a leader");
            return;
        }
    };
    let mut leading = elector.subscribe();
    tokio::spawn(elector.run(shutdown.clone()));
    loop {
        // Wait to lead.
        while !*leading.borrow_and_update() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = leading.changed() => if changed.is_err() { return },
            }
        }
        tracing::info!(lease, %identity, "leading");
        let stop = shutdown.child_token();
        let running = tokio::spawn(component(client.clone(), stop.clone()));
        while *leading.borrow_and_update() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = leading.changed() => if changed.is_err() { break },
            }
        }
        stop.cancel();
        let _ = running.await;
        if shutdown.is_cancelled() {
            return;
        }
        tracing::warn!(lease, "lost the lease; stopped until it is regained");
    }
}

/// `cairn token`: prints the join token of the server at `data_dir`.
pub fn print_token(data_dir: &std::path::Path) -> Result<()> {
    let path = ServerDir::new(data_dir).token();
    match std::fs::read_to_string(&path) {
        Ok(t) => {
            println!("{}", t.trim());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "no token at {}: has a server started with this data directory?",
                path.display()
            )
        }
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}
