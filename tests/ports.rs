//! TCP ports for test servers.
//!
//! Tests in one binary run in parallel and other programs on the machine may hold the well-known
//! etcd and Kubernetes ports, so each server (or cluster) gets its own block of ports. A cluster
//! uses the same block on every member's loopback address, as a real cluster uses the same ports
//! on every host. Blocks come from a per-process counter (no two tests of one binary share a
//! block) and are checked by binding each port on each address; the range stays below Linux's
//! ephemeral range (32768+) so outgoing connections cannot take them.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};

use anyhow::{Result, bail};

const FIRST_PORT: u16 = 20_000;
const LAST_PORT: u16 = 32_000;

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// Returns `count` consecutive ports that are free on every address in `ips`.
pub fn free_port_block(ips: &[Ipv4Addr], count: u16) -> Result<Vec<u16>> {
    let span = LAST_PORT - FIRST_PORT;
    // Spread test binaries (different PIDs) over the range so they rarely probe the same ports.
    let _ = NEXT_PORT.compare_exchange(
        0,
        FIRST_PORT + (std::process::id() % u32::from(span / 2)) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..200 {
        let mut base = NEXT_PORT.fetch_add(count, Ordering::SeqCst);
        if base < FIRST_PORT || base + count > LAST_PORT {
            NEXT_PORT.store(FIRST_PORT + count, Ordering::SeqCst);
            base = FIRST_PORT;
        }
        let ports: Vec<u16> = (base..base + count).collect();
        if ports
            .iter()
            .all(|&port| ips.iter().all(|&ip| is_free(ip, port)))
        {
            return Ok(ports);
        }
    }
    bail!("no block of {count} free ports on {ips:?} in {FIRST_PORT}..{LAST_PORT}")
}

fn is_free(ip: Ipv4Addr, port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(ip, port)).is_ok()
}

/// The loopback address of cluster member `index` (0-based): 127.0.0.1, 127.0.0.2, ...
pub fn loopback(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        0,
        0,
        u8::try_from(index + 1).expect("fewer than 255 members"),
    )
}
