//! How `cairn server` treats its data directory: a directory in use by another process and a
//! corrupt database are refused with a clear error and left untouched; and under a steady update
//! load with automatic compaction the database file levels off instead of growing.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cairn_tests::cairn_server::{Ports, Server, ServerOpts};
use cairn_tests::client::connect_with_timeout;
use cairn_tests::ports::loopback;
use cairn_tests::target::Target;

fn db_file(server: &Server) -> std::path::PathBuf {
    server.data_dir().join("server/db/state.redb")
}

#[tokio::test]
async fn data_dir_in_use_is_refused() -> Result<()> {
    if !Target::Cairn.available()? {
        return Ok(());
    }
    let first = Server::start(ServerOpts::single()?).await?;
    // A second server on other ports but the same data directory.
    let mut opts = ServerOpts::single()?;
    opts.extra_args = vec!["--data-dir".into(), first.data_dir().display().to_string()];
    let mut second = Server::create(opts)?;
    second.spawn()?;
    let status = second.wait_exit(Duration::from_secs(30)).await?;
    ensure!(
        !status.success(),
        "a second server on a data dir in use started"
    );
    let stderr = second.stderr();
    ensure!(
        stderr.contains("in use"),
        "unclear error for a data dir in use: {stderr}"
    );
    // The first server is unharmed.
    let mut client = connect_with_timeout(&first.endpoint(), Duration::from_secs(5)).await?;
    client.put("still", "here", None).await?;
    Ok(())
}

#[tokio::test]
async fn corrupt_database_is_refused_and_left_untouched() -> Result<()> {
    if !Target::Cairn.available()? {
        return Ok(());
    }
    let mut server = Server::start(ServerOpts::single()?).await?;
    let mut client = connect_with_timeout(&server.endpoint(), Duration::from_secs(5)).await?;
    client.put("k", "v", None).await?;
    server.kill9();
    let db = db_file(&server);
    let mut bytes = std::fs::read(&db)?;
    // Scribble over the header and the first pages.
    for b in bytes.iter_mut().take(8192) {
        *b ^= 0x5a;
    }
    std::fs::write(&db, &bytes)?;
    server.spawn()?;
    let status = server.wait_exit(Duration::from_secs(30)).await?;
    ensure!(
        !status.success(),
        "the server started on a corrupt database"
    );
    let stderr = server.stderr();
    ensure!(
        stderr.contains("cannot be opened") && stderr.contains("state.redb"),
        "unclear error for a corrupt database: {stderr}"
    );
    ensure!(
        std::fs::read(&db)? == bytes,
        "the corrupt database was modified"
    );
    Ok(())
}

/// Rewrites the same keys over and over from several clients for `rounds` rounds; returns the
/// bytes of values written.
async fn rewrite(endpoint: &str, rounds: usize) -> Result<u64> {
    let value = "x".repeat(1024);
    let mut tasks = Vec::new();
    for w in 0..4 {
        let endpoint = endpoint.to_string();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = connect_with_timeout(&endpoint, Duration::from_secs(5)).await?;
            let mut written = 0;
            for round in 0..rounds {
                for k in 0..50 {
                    let value = format!("{round}{value}");
                    written += value.len() as u64;
                    client.put(format!("level/{w}/{k}"), value, None).await?;
                }
            }
            anyhow::Ok(written)
        }));
    }
    let mut written = 0;
    for t in tasks {
        written += t.await.context("writer panicked")??;
    }
    Ok(written)
}

#[tokio::test]
async fn database_levels_off_under_steady_updates() -> Result<()> {
    if !Target::Cairn.available()? {
        return Ok(());
    }
    let mut opts = ServerOpts::member(0, Ports::allocate(&[loopback(0)])?);
    opts.extra_args = vec!["--etcd-compaction-retention".into(), "1s".into()];
    let server = Server::start(opts).await?;
    let endpoint = server.endpoint();
    // Warm up until compaction has run at least once, then rewrite the same keys for a long
    // phase. Without compaction the file would grow by at least the bytes written; with it,
    // the file holds the live keys plus about one retention period of history. redb grows its
    // file in steps (it may double once when a burst outruns compaction), so the bound is half
    // of what the phase wrote, not a fixed size.
    let settle = Duration::from_secs(3);
    rewrite(&endpoint, 20).await?;
    tokio::time::sleep(settle).await;
    rewrite(&endpoint, 20).await?;
    tokio::time::sleep(settle).await;
    let before = std::fs::metadata(db_file(&server))?.len();
    let written = rewrite(&endpoint, 100).await?;
    tokio::time::sleep(settle).await;
    let after = std::fs::metadata(db_file(&server))?.len();
    println!("db size before: {before} bytes, after writing {written} bytes: {after} bytes");
    ensure!(
        after <= before + written / 2,
        "the database kept growing: {before} -> {after} bytes while {written} bytes were written"
    );
    // History really was compacted: the first revisions are gone.
    let mut client = connect_with_timeout(&endpoint, Duration::from_secs(5)).await?;
    let old = client
        .get(
            "level/0/0",
            Some(etcd_client::GetOptions::new().with_revision(2)),
        )
        .await;
    ensure!(
        old.is_err(),
        "revision 2 is still readable: automatic compaction did not run"
    );
    Ok(())
}
