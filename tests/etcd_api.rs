//! etcd v3 API conformance: every operation through `etcdctl` 3.4 and through the etcd-client
//! crate, run once against real etcd (which validates the test) and once against cairn.
//!
//! Select a side with a name filter: `cargo test -p cairn-tests --test etcd_api -- etcd::` or
//! `-- cairn::`. Error checks compare the exact gRPC code and message, because Go clients
//! (kube-apiserver included) turn errors back into typed values by their message text.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use cairn_tests::target::eventually;
use cairn_tests::{
    Endpoint, OutputExt, Target, conformance_tests, connect, etcdctl, etcdctl_with_input,
    expect_grpc_error,
};
use etcd_client::{
    AlarmAction, AlarmType, Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions,
    LeaseTimeToLiveOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
    WatchOptions, WatchResponse, WatchStream,
};
use tonic::Code;

conformance_tests! {
    put_get_single_key,
    get_prefix_and_range,
    get_limit,
    get_at_past_revision,
    get_keys_only_and_count_only,
    get_sorted,
    delete_with_prev_kv,
    txn_compares_with_etcdctl,
    txn_compares_with_client,
    txn_nested,
    lease_lifecycle_with_etcdctl,
    lease_lifecycle_with_client,
    lease_expiry_deletes_keys,
    compaction,
    future_revision,
    request_too_large,
    too_many_operations_in_txn,
    duplicate_key_in_txn,
    lease_not_found,
    watch_key,
    watch_prefix,
    watch_from_past_revision,
    watch_prev_kv,
    watch_progress_request,
    watch_progress_notify,
    watch_cancel,
    watch_compacted_revision,
    member_list,
    endpoint_status,
    endpoint_health,
    snapshot_save,
    defrag,
    alarm_list,
    endpoint_hashkv,
}

const ERR_COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
const ERR_FUTURE_REV: &str = "etcdserver: mvcc: required revision is a future revision";
const ERR_TOO_LARGE: &str = "etcdserver: request is too large";
const ERR_TOO_MANY_OPS: &str = "etcdserver: too many operations in txn request";
const ERR_DUPLICATE_KEY: &str = "etcdserver: duplicate key given in txn request";
const ERR_LEASE_NOT_FOUND: &str = "etcdserver: requested lease not found";

/// The lowest etcd version kube-apiserver accepts (watch progress fixes, etcd#17507).
const MIN_CAIRN_VERSION: (u64, u64, u64) = (3, 5, 13);

/// Fails unless `actual == expected`, showing both.
macro_rules! check_eq {
    ($actual:expr, $expected:expr $(,)?) => {{
        let (actual, expected) = (&$actual, &$expected);
        ensure!(
            actual == expected,
            "{} == {}\n  actual: {actual:?}\nexpected: {expected:?}",
            stringify!($actual),
            stringify!($expected)
        );
    }};
}

// ---- helpers -------------------------------------------------------------------------------

/// Runs etcdctl and returns stdout, failing on a non-zero exit.
fn ctl(ep: &Endpoint, args: &[&str]) -> Result<String> {
    etcdctl(&ep.url, args)?.expect_success()
}

/// Runs etcdctl with `-w json` and parses the output.
fn ctl_json(ep: &Endpoint, args: &[&str]) -> Result<serde_json::Value> {
    let mut args = args.to_vec();
    args.extend(["-w", "json"]);
    etcdctl(&ep.url, &args)?.json()
}

/// Runs etcdctl, expecting it to fail with the line `Error: <message>` on stderr.
fn ctl_error(ep: &Endpoint, args: &[&str], message: &str) -> Result<()> {
    let stderr = etcdctl(&ep.url, args)?.expect_failure()?;
    expect_error_line(&stderr, message)
}

fn expect_error_line(stderr: &str, message: &str) -> Result<()> {
    let wanted = format!("Error: {message}");
    ensure!(
        stderr.lines().any(|line| line.trim() == wanted),
        "expected the line {wanted:?} on stderr, got:\n{stderr}"
    );
    Ok(())
}

/// Runs `etcdctl txn` with the given stdin (compares, blank line, success ops, blank line,
/// failure ops, blank line).
fn ctl_txn(ep: &Endpoint, input: &str) -> Result<String> {
    etcdctl_with_input(&ep.url, &["txn"], input.as_bytes())?.expect_success()
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<i64> {
    Ok(header.context("response without header")?.revision())
}

async fn put(client: &mut Client, key: &str, value: &str) -> Result<i64> {
    header_revision(client.put(key, value, None).await?.header())
}

/// `(key, value)` pairs of a range response, as strings.
fn pairs(response: &etcd_client::GetResponse) -> Vec<(String, String)> {
    response
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
            )
        })
        .collect()
}

fn keys(response: &etcd_client::GetResponse) -> Vec<String> {
    pairs(response).into_iter().map(|(k, _)| k).collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn value_of(client: &mut Client, key: &str) -> Result<Option<String>> {
    let response = client.get(key, None).await?;
    Ok(response
        .kvs()
        .first()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
}

async fn current_revision(client: &mut Client) -> Result<i64> {
    header_revision(client.get("cairn-tests/revision", None).await?.header())
}

/// Parses `lease <hex> granted with TTL(<n>s)` into the hex id.
fn granted_lease(stdout: &str) -> Result<String> {
    let mut words = stdout.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("lease"), Some(id), Some("granted")) => Ok(id.to_owned()),
        _ => bail!("unexpected lease grant output: {stdout:?}"),
    }
}

// ---- KV ------------------------------------------------------------------------------------

async fn put_get_single_key(ep: Endpoint) -> Result<()> {
    check_eq!(ctl(&ep, &["put", "ctl/a", "one"])?, "OK\n");
    check_eq!(ctl(&ep, &["get", "ctl/a"])?, "ctl/a\none\n");
    check_eq!(ctl(&ep, &["put", "ctl/a", "two"])?, "OK\n");
    check_eq!(ctl(&ep, &["get", "ctl/a", "--print-value-only"])?, "two\n");
    check_eq!(ctl(&ep, &["get", "ctl/missing"])?, "");
    check_eq!(
        ctl(&ep, &["get", "ctl/a", "--consistency=s"])?,
        "ctl/a\ntwo\n"
    );

    let mut client = connect(&ep.url).await?;
    let first = put(&mut client, "cli/a", "one").await?;
    let second = client
        .put("cli/a", "two", Some(PutOptions::new().with_prev_key()))
        .await?;
    let prev = second.prev_key().context("prev_kv requested")?;
    check_eq!(prev.value(), b"one");
    let second_revision = header_revision(second.header())?;
    check_eq!(second_revision, first + 1);

    let response = client.get("cli/a", None).await?;
    check_eq!(response.count(), 1);
    let kv = &response.kvs()[0];
    check_eq!(kv.value(), b"two");
    check_eq!(kv.version(), 2);
    check_eq!(kv.create_revision(), first);
    check_eq!(kv.mod_revision(), second_revision);
    check_eq!(header_revision(response.header())?, second_revision);

    let serializable = client
        .get("cli/a", Some(GetOptions::new().with_serializable()))
        .await?;
    check_eq!(pairs(&serializable), owned(&[("cli/a", "two")]));

    let missing = client.get("cli/missing", None).await?;
    ensure!(missing.kvs().is_empty());
    check_eq!(missing.count(), 0);
    Ok(())
}

async fn seed_range_keys(ep: &Endpoint) -> Result<Client> {
    let mut client = connect(&ep.url).await?;
    for (key, value) in [("r/a", "1"), ("r/b", "2"), ("r/c", "3"), ("s/x", "9")] {
        put(&mut client, key, value).await?;
    }
    Ok(client)
}

async fn get_prefix_and_range(ep: Endpoint) -> Result<()> {
    let mut client = seed_range_keys(&ep).await?;
    check_eq!(
        ctl(&ep, &["get", "--prefix", "r/"])?,
        "r/a\n1\nr/b\n2\nr/c\n3\n"
    );
    check_eq!(ctl(&ep, &["get", "r/a", "r/c"])?, "r/a\n1\nr/b\n2\n");
    check_eq!(
        ctl(&ep, &["get", "--from-key", "r/b"])?,
        "r/b\n2\nr/c\n3\ns/x\n9\n"
    );

    let prefix = client
        .get("r/", Some(GetOptions::new().with_prefix()))
        .await?;
    check_eq!(
        pairs(&prefix),
        owned(&[("r/a", "1"), ("r/b", "2"), ("r/c", "3")])
    );
    check_eq!(prefix.count(), 3);
    let range = client
        .get("r/a", Some(GetOptions::new().with_range("r/c")))
        .await?;
    check_eq!(keys(&range), ["r/a", "r/b"]);
    let from = client
        .get("r/b", Some(GetOptions::new().with_from_key()))
        .await?;
    check_eq!(keys(&from), ["r/b", "r/c", "s/x"]);
    let all = client
        .get("", Some(GetOptions::new().with_all_keys()))
        .await?;
    // A cairn server also holds its Kubernetes objects (the system namespaces).
    let ours: Vec<String> = keys(&all)
        .into_iter()
        .filter(|k| !k.starts_with("/registry/"))
        .collect();
    check_eq!(ours, ["r/a", "r/b", "r/c", "s/x"]);
    Ok(())
}

async fn get_limit(ep: Endpoint) -> Result<()> {
    let mut client = seed_range_keys(&ep).await?;
    let json = ctl_json(&ep, &["get", "--prefix", "r/", "--limit=2"])?;
    check_eq!(json["kvs"].as_array().map(Vec::len), Some(2));
    check_eq!(json["more"], serde_json::json!(true));
    check_eq!(json["count"], serde_json::json!(3));
    check_eq!(
        ctl(&ep, &["get", "--prefix", "r/", "--limit=2"])?,
        "r/a\n1\nr/b\n2\n"
    );

    let limited = client
        .get("r/", Some(GetOptions::new().with_prefix().with_limit(2)))
        .await?;
    check_eq!(keys(&limited), ["r/a", "r/b"]);
    ensure!(
        limited.more(),
        "more must be set when the limit cut the range"
    );
    check_eq!(limited.count(), 3);
    let exact = client
        .get("r/", Some(GetOptions::new().with_prefix().with_limit(3)))
        .await?;
    ensure!(!exact.more(), "more must be false when nothing was cut");
    Ok(())
}

async fn get_at_past_revision(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let first = put(&mut client, "h/k", "v1").await?;
    let second = put(&mut client, "h/k", "v2").await?;
    client.delete("h/k", None).await?;

    check_eq!(
        ctl(&ep, &["get", "h/k", &format!("--rev={first}")])?,
        "h/k\nv1\n"
    );
    check_eq!(
        ctl(&ep, &["get", "h/k", &format!("--rev={second}")])?,
        "h/k\nv2\n"
    );
    check_eq!(ctl(&ep, &["get", "h/k"])?, "");
    check_eq!(
        ctl(&ep, &["get", "h/k", &format!("--rev={}", first - 1)])?,
        ""
    );

    let old = client
        .get("h/k", Some(GetOptions::new().with_revision(first)))
        .await?;
    check_eq!(pairs(&old), owned(&[("h/k", "v1")]));
    check_eq!(old.kvs()[0].mod_revision(), first);
    let newer = client
        .get("h/k", Some(GetOptions::new().with_revision(second)))
        .await?;
    check_eq!(pairs(&newer), owned(&[("h/k", "v2")]));
    check_eq!(newer.kvs()[0].version(), 2);
    Ok(())
}

async fn get_keys_only_and_count_only(ep: Endpoint) -> Result<()> {
    let mut client = seed_range_keys(&ep).await?;
    // etcdctl 3.4 has no --count-only; its JSON output carries the count.
    check_eq!(
        ctl(&ep, &["get", "--prefix", "r/", "--keys-only"])?,
        "r/a\n\nr/b\n\nr/c\n\n"
    );
    let json = ctl_json(&ep, &["get", "--prefix", "r/", "--keys-only"])?;
    check_eq!(json["count"], serde_json::json!(3));
    ensure!(
        json["kvs"]
            .as_array()
            .context("kvs")?
            .iter()
            .all(|kv| kv.get("value").is_none()),
        "keys-only results carry no values: {json}"
    );

    let keys_only = client
        .get("r/", Some(GetOptions::new().with_prefix().with_keys_only()))
        .await?;
    check_eq!(keys(&keys_only), ["r/a", "r/b", "r/c"]);
    ensure!(keys_only.kvs().iter().all(|kv| kv.value().is_empty()));
    ensure!(keys_only.kvs().iter().all(|kv| kv.mod_revision() > 0));
    let count_only = client
        .get(
            "r/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await?;
    ensure!(count_only.kvs().is_empty(), "count-only returns no kvs");
    check_eq!(count_only.count(), 3);
    Ok(())
}

async fn get_sorted(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    // Modification order c, a, b; value order b, c, a.
    for (key, value) in [("s/c", "2"), ("s/a", "3"), ("s/b", "1")] {
        put(&mut client, key, value).await?;
    }
    let sorted = |args: &[&str]| -> Result<String> {
        let mut all = vec!["get", "--prefix", "s/", "--keys-only"];
        all.extend_from_slice(args);
        Ok(ctl(&ep, &all)?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "))
    };
    check_eq!(
        sorted(&["--sort-by=MODIFY", "--order=DESCEND"])?,
        "s/b s/a s/c"
    );
    check_eq!(
        sorted(&["--sort-by=MODIFY", "--order=ASCEND"])?,
        "s/c s/a s/b"
    );
    check_eq!(
        sorted(&["--sort-by=KEY", "--order=DESCEND"])?,
        "s/c s/b s/a"
    );
    check_eq!(
        sorted(&["--sort-by=VALUE", "--order=ASCEND"])?,
        "s/b s/c s/a"
    );
    check_eq!(
        sorted(&["--sort-by=CREATE", "--order=DESCEND"])?,
        "s/b s/a s/c"
    );

    let get = |target, order| GetOptions::new().with_prefix().with_sort(target, order);
    let by_mod = client
        .get("s/", Some(get(SortTarget::Mod, SortOrder::Descend)))
        .await?;
    check_eq!(keys(&by_mod), ["s/b", "s/a", "s/c"]);
    let by_value = client
        .get("s/", Some(get(SortTarget::Value, SortOrder::Ascend)))
        .await?;
    check_eq!(keys(&by_value), ["s/b", "s/c", "s/a"]);
    let by_key = client
        .get("s/", Some(get(SortTarget::Key, SortOrder::Descend)))
        .await?;
    check_eq!(keys(&by_key), ["s/c", "s/b", "s/a"]);
    let by_version = client
        .get("s/", Some(get(SortTarget::Version, SortOrder::Ascend)))
        .await?;
    check_eq!(by_version.kvs().len(), 3);
    Ok(())
}

async fn delete_with_prev_kv(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    for (key, value) in [("d/a", "x"), ("d/b", "y"), ("d/c", "z")] {
        put(&mut client, key, value).await?;
    }
    check_eq!(ctl(&ep, &["del", "d/a", "--prev-kv"])?, "1\nd/a\nx\n");
    check_eq!(ctl(&ep, &["del", "d/missing"])?, "0\n");
    check_eq!(ctl(&ep, &["get", "d/a"])?, "");

    let before = current_revision(&mut client).await?;
    let deleted = client
        .delete(
            "d/",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await?;
    check_eq!(deleted.deleted(), 2);
    let prev: Vec<_> = deleted
        .prev_kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
        .collect();
    check_eq!(prev, ["y", "z"]);
    // One delete of two keys is one revision.
    check_eq!(header_revision(deleted.header())?, before + 1);
    let nothing = client
        .delete("d/", Some(DeleteOptions::new().with_prefix()))
        .await?;
    check_eq!(nothing.deleted(), 0);
    check_eq!(header_revision(nothing.header())?, before + 1);
    Ok(())
}

// ---- transactions --------------------------------------------------------------------------

async fn txn_compares_with_etcdctl(ep: Endpoint) -> Result<()> {
    check_eq!(ctl(&ep, &["put", "t/v", "a"])?, "OK\n");
    // value
    let out = ctl_txn(&ep, "value(\"t/v\") = \"a\"\n\nput t/v b\n\nput t/v c\n\n")?;
    check_eq!(out, "SUCCESS\n\nOK\n");
    let out = ctl_txn(&ep, "value(\"t/v\") = \"a\"\n\nput t/v b\n\nput t/v c\n\n")?;
    check_eq!(out, "FAILURE\n\nOK\n");
    check_eq!(ctl(&ep, &["get", "t/v", "--print-value-only"])?, "c\n");
    // version: a, b, c -> 3
    let out = ctl_txn(&ep, "version(\"t/v\") = \"3\"\n\nget t/v\n\n\n")?;
    check_eq!(out, "SUCCESS\n\nt/v\nc\n");
    // create revision 0 means the key does not exist
    let create = "create(\"t/new\") = \"0\"\n\nput t/new x\n\nget t/new\n\n";
    check_eq!(ctl_txn(&ep, create)?, "SUCCESS\n\nOK\n");
    check_eq!(ctl_txn(&ep, create)?, "FAILURE\n\nt/new\nx\n");
    // mod revision, then a delete in the success branch
    let out = ctl_txn(&ep, "mod(\"t/v\") > \"0\"\n\ndel t/v\n\n\n")?;
    check_eq!(out, "SUCCESS\n\n1\n");
    // no compares: success branch
    let out = ctl_txn(&ep, "\nput t/x 1\nput t/y 2\n\n\n")?;
    check_eq!(out, "SUCCESS\n\nOK\n\nOK\n");
    // etcdctl 3.4 cannot express lease compares (it panics parsing them); see the client test.
    Ok(())
}

async fn txn_compares_with_client(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let created = put(&mut client, "t/v", "a").await?;
    let modified = put(&mut client, "t/v", "b").await?;

    let txn = |compare: Compare| {
        Txn::new()
            .when([compare])
            .and_then([TxnOp::put("t/then", "yes", None), TxnOp::get("t/v", None)])
            .or_else([TxnOp::get("t/v", None), TxnOp::delete("t/then", None)])
    };
    let cases = [
        (Compare::value("t/v", CompareOp::Equal, "b"), true),
        (Compare::value("t/v", CompareOp::Equal, "a"), false),
        (Compare::value("t/v", CompareOp::Greater, "a"), true),
        (Compare::value("t/v", CompareOp::NotEqual, "b"), false),
        (Compare::version("t/v", CompareOp::Equal, 2), true),
        (Compare::version("t/v", CompareOp::Less, 2), false),
        (
            Compare::create_revision("t/v", CompareOp::Equal, created),
            true,
        ),
        (
            Compare::create_revision("t/missing", CompareOp::Equal, 0),
            true,
        ),
        (
            Compare::mod_revision("t/v", CompareOp::Equal, modified),
            true,
        ),
        (
            Compare::mod_revision("t/v", CompareOp::Less, modified),
            false,
        ),
        // A value compare on a missing key is always false.
        (Compare::value("t/missing", CompareOp::NotEqual, "x"), false),
    ];
    for (index, (compare, expected)) in cases.into_iter().enumerate() {
        let response = client.txn(txn(compare)).await?;
        ensure!(
            response.succeeded() == expected,
            "case {index}: succeeded = {}",
            response.succeeded()
        );
        let responses = response.op_responses();
        check_eq!(responses.len(), 2);
        if expected {
            ensure!(
                matches!(responses[0], TxnOpResponse::Put(_)),
                "case {index}"
            );
            let TxnOpResponse::Get(get) = &responses[1] else {
                bail!("case {index}: second response is not a get");
            };
            check_eq!(pairs(get), owned(&[("t/v", "b")]));
        } else {
            let TxnOpResponse::Get(get) = &responses[0] else {
                bail!("case {index}: first response is not a get");
            };
            check_eq!(pairs(get), owned(&[("t/v", "b")]));
            ensure!(
                matches!(responses[1], TxnOpResponse::Delete(_)),
                "case {index}"
            );
        }
        check_eq!(
            value_of(&mut client, "t/then").await?,
            expected.then(|| "yes".to_owned())
        );
    }

    // Multiple compares are a conjunction; a range compare covers every key in it.
    let both = client
        .txn(
            Txn::new()
                .when([
                    Compare::value("t/v", CompareOp::Equal, "b"),
                    Compare::version("t/v", CompareOp::Equal, 3),
                ])
                .and_then([TxnOp::put("t/and", "1", None)]),
        )
        .await?;
    ensure!(!both.succeeded(), "one false compare fails the conjunction");
    let range = client
        .txn(
            Txn::new()
                .when([Compare::create_revision("t/", CompareOp::Greater, 0).with_prefix()])
                .and_then([TxnOp::put("t/range", "1", None)]),
        )
        .await?;
    ensure!(range.succeeded(), "every key under t/ exists");

    // Lease compares.
    let lease = client.lease_grant(60, None).await?.id();
    client
        .put("t/leased", "x", Some(PutOptions::new().with_lease(lease)))
        .await?;
    let with_lease = client
        .txn(
            Txn::new()
                .when([Compare::lease("t/leased", CompareOp::Equal, lease)])
                .and_then([TxnOp::put("t/lease-ok", "1", None)]),
        )
        .await?;
    ensure!(
        with_lease.succeeded(),
        "lease compare on the attached lease"
    );
    let other_lease = client
        .txn(Txn::new().when([Compare::lease("t/leased", CompareOp::Equal, lease + 1)]))
        .await?;
    ensure!(!other_lease.succeeded(), "lease compare on another lease");
    let no_lease = client
        .txn(Txn::new().when([Compare::lease("t/v", CompareOp::Equal, 0)]))
        .await?;
    ensure!(no_lease.succeeded(), "a key without a lease has lease 0");

    // All writes of a txn share one revision.
    let before = current_revision(&mut client).await?;
    let multi = client
        .txn(Txn::new().and_then([
            TxnOp::put("t/m1", "1", None),
            TxnOp::put("t/m2", "2", None),
            TxnOp::delete("t/then", None),
        ]))
        .await?;
    check_eq!(header_revision(multi.header())?, before + 1);
    let m = client
        .get("t/m", Some(GetOptions::new().with_prefix()))
        .await?;
    ensure!(m.kvs().iter().all(|kv| kv.mod_revision() == before + 1));
    // A read-only txn does not create a revision.
    let read_only = client
        .txn(Txn::new().and_then([TxnOp::get("t/m1", None)]))
        .await?;
    check_eq!(header_revision(read_only.header())?, before + 1);
    Ok(())
}

async fn txn_nested(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    put(&mut client, "n/x", "1").await?;
    let inner = Txn::new()
        .when([Compare::version("n/y", CompareOp::Equal, 0)])
        .and_then([TxnOp::put("n/y", "new", None), TxnOp::get("n/x", None)])
        .or_else([TxnOp::get("n/y", None)]);
    let outer = Txn::new()
        .when([Compare::value("n/x", CompareOp::Equal, "1")])
        .and_then([TxnOp::txn(inner.clone()), TxnOp::put("n/z", "outer", None)]);

    let response = client.txn(outer.clone()).await?;
    ensure!(response.succeeded());
    let responses = response.op_responses();
    check_eq!(responses.len(), 2);
    let TxnOpResponse::Txn(nested) = &responses[0] else {
        bail!("first response is not a txn");
    };
    ensure!(
        nested.succeeded(),
        "inner txn should succeed the first time"
    );
    let nested_responses = nested.op_responses();
    check_eq!(nested_responses.len(), 2);
    let TxnOpResponse::Get(get) = &nested_responses[1] else {
        bail!("inner second response is not a get");
    };
    check_eq!(pairs(get), owned(&[("n/x", "1")]));
    check_eq!(value_of(&mut client, "n/y").await?, Some("new".to_owned()));
    check_eq!(
        value_of(&mut client, "n/z").await?,
        Some("outer".to_owned())
    );

    // Second time: the inner compare fails and its else branch reads n/y.
    let again = client
        .txn(
            Txn::new()
                .when([Compare::value("n/x", CompareOp::Equal, "1")])
                .and_then([TxnOp::txn(inner)]),
        )
        .await?;
    let TxnOpResponse::Txn(nested) = &again.op_responses()[0] else {
        bail!("first response is not a txn");
    };
    ensure!(!nested.succeeded());
    let TxnOpResponse::Get(get) = &nested.op_responses()[0] else {
        bail!("inner else response is not a get");
    };
    check_eq!(pairs(get), owned(&[("n/y", "new")]));
    Ok(())
}

// ---- leases --------------------------------------------------------------------------------

async fn lease_lifecycle_with_etcdctl(ep: Endpoint) -> Result<()> {
    let id = granted_lease(&ctl(&ep, &["lease", "grant", "60"])?)?;
    check_eq!(
        ctl(&ep, &["put", "l/k", "v", &format!("--lease={id}")])?,
        "OK\n"
    );
    check_eq!(
        ctl(&ep, &["lease", "keep-alive", "--once", &id])?,
        format!("lease {id} keepalived with TTL(60)\n")
    );
    let ttl = ctl(&ep, &["lease", "timetolive", &id, "--keys"])?;
    ensure!(
        ttl.starts_with(&format!("lease {id} granted with TTL(60s), remaining("))
            && ttl.ends_with("attached keys([l/k])\n"),
        "timetolive output: {ttl:?}"
    );
    let list = ctl(&ep, &["lease", "list"])?;
    ensure!(
        list.starts_with("found 1 leases\n") && list.lines().any(|l| l == id),
        "lease list output: {list:?}"
    );
    check_eq!(
        ctl(&ep, &["lease", "revoke", &id])?,
        format!("lease {id} revoked\n")
    );
    check_eq!(ctl(&ep, &["get", "l/k"])?, "");
    check_eq!(
        ctl(&ep, &["lease", "timetolive", &id])?,
        format!("lease {id} already expired\n")
    );
    check_eq!(ctl(&ep, &["lease", "list"])?, "found 0 leases\n");
    Ok(())
}

async fn lease_lifecycle_with_client(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let granted = client.lease_grant(60, None).await?;
    check_eq!(granted.ttl(), 60);
    ensure!(granted.id() > 0, "lease ids are positive");
    check_eq!(granted.error(), "");
    let id = granted.id();
    client
        .put("l/a", "1", Some(PutOptions::new().with_lease(id)))
        .await?;
    client
        .put("l/b", "2", Some(PutOptions::new().with_lease(id)))
        .await?;
    let kv = client.get("l/a", None).await?;
    check_eq!(kv.kvs()[0].lease(), id);

    let (mut keeper, mut stream) = client.lease_keep_alive(id).await?;
    keeper.keep_alive().await?;
    let response = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .context("no keep-alive response")??
        .context("keep-alive stream ended")?;
    check_eq!(response.id(), id);
    check_eq!(response.ttl(), 60);

    let ttl = client
        .lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await?;
    check_eq!(ttl.id(), id);
    check_eq!(ttl.granted_ttl(), 60);
    ensure!(
        (55..=60).contains(&ttl.ttl()),
        "remaining ttl {}",
        ttl.ttl()
    );
    let mut attached: Vec<_> = ttl.keys().to_vec();
    attached.sort();
    check_eq!(attached, [b"l/a".to_vec(), b"l/b".to_vec()]);

    let leases = client.leases().await?;
    check_eq!(
        leases.leases().iter().map(|l| l.id()).collect::<Vec<_>>(),
        [id]
    );

    client.lease_revoke(id).await?;
    let gone = client
        .get("l/", Some(GetOptions::new().with_prefix()))
        .await?;
    ensure!(gone.kvs().is_empty(), "revoking deletes attached keys");
    let expired = client.lease_time_to_live(id, None).await?;
    check_eq!(expired.ttl(), -1);
    ensure!(client.leases().await?.leases().is_empty());
    Ok(())
}

async fn lease_expiry_deletes_keys(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let granted_at = Instant::now();
    let lease = client.lease_grant(2, None).await?;
    client
        .put(
            "x/leased",
            "v",
            Some(PutOptions::new().with_lease(lease.id())),
        )
        .await?;
    put(&mut client, "x/kept", "v").await?;
    ensure!(value_of(&mut client, "x/leased").await?.is_some());
    eventually(Duration::from_secs(10), "leased key expires", || {
        let mut client = client.clone();
        async move { Ok(value_of(&mut client, "x/leased").await?.is_none()) }
    })
    .await?;
    let elapsed = granted_at.elapsed();
    ensure!(
        elapsed >= Duration::from_millis(1500),
        "key expired after {elapsed:?}, before its 2 s TTL"
    );
    check_eq!(ctl(&ep, &["get", "x/leased"])?, "");
    check_eq!(value_of(&mut client, "x/kept").await?, Some("v".to_owned()));
    check_eq!(client.lease_time_to_live(lease.id(), None).await?.ttl(), -1);
    Ok(())
}

// ---- errors --------------------------------------------------------------------------------

async fn compaction(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let r1 = put(&mut client, "c/k", "v1").await?;
    let r2 = put(&mut client, "c/k", "v2").await?;
    let r3 = put(&mut client, "c/k", "v3").await?;

    check_eq!(
        ctl(&ep, &["compaction", &r2.to_string()])?,
        format!("compacted revision {r2}\n")
    );
    ctl_error(&ep, &["get", "c/k", &format!("--rev={r1}")], ERR_COMPACTED)?;
    // The compaction revision itself stays readable.
    check_eq!(
        ctl(&ep, &["get", "c/k", &format!("--rev={r2}")])?,
        "c/k\nv2\n"
    );
    ctl_error(&ep, &["compaction", &r2.to_string()], ERR_COMPACTED)?;

    client.compact(r3, None).await?;
    expect_grpc_error(
        client
            .get("c/k", Some(GetOptions::new().with_revision(r2)))
            .await,
        Code::OutOfRange,
        ERR_COMPACTED,
    )?;
    expect_grpc_error(
        client.compact(r2, None).await,
        Code::OutOfRange,
        ERR_COMPACTED,
    )?;
    expect_grpc_error(
        client.compact(r3 + 100, None).await,
        Code::OutOfRange,
        ERR_FUTURE_REV,
    )?;
    check_eq!(value_of(&mut client, "c/k").await?, Some("v3".to_owned()));
    Ok(())
}

async fn future_revision(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let revision = put(&mut client, "f/k", "v").await?;
    let future = revision + 100;
    ctl_error(
        &ep,
        &["get", "f/k", &format!("--rev={future}")],
        ERR_FUTURE_REV,
    )?;
    expect_grpc_error(
        client
            .get("f/k", Some(GetOptions::new().with_revision(future)))
            .await,
        Code::OutOfRange,
        ERR_FUTURE_REV,
    )?;
    // The current revision itself is fine.
    let now = client
        .get("f/k", Some(GetOptions::new().with_revision(revision)))
        .await?;
    check_eq!(pairs(&now), owned(&[("f/k", "v")]));
    Ok(())
}

async fn request_too_large(ep: Endpoint) -> Result<()> {
    // etcd's limit is 1.5 MiB per request; gRPC itself accepts 2 MiB, so a 1.6 MB put reaches
    // the server and gets etcd's own error.
    let big = vec![b'x'; 1_600_000];
    let output = etcdctl_with_input(&ep.url, &["put", "big/ctl"], &big)?;
    expect_error_line(&output.expect_failure()?, ERR_TOO_LARGE)?;

    let mut client = connect(&ep.url).await?;
    expect_grpc_error(
        client.put("big/client", big.clone(), None).await,
        Code::InvalidArgument,
        ERR_TOO_LARGE,
    )?;
    // 1 MB is under the limit.
    client.put("big/ok", vec![b'y'; 1_000_000], None).await?;
    let got = client.get("big/ok", None).await?;
    check_eq!(got.kvs()[0].value().len(), 1_000_000);
    Ok(())
}

async fn too_many_operations_in_txn(ep: Endpoint) -> Result<()> {
    let ops = |n: usize| -> String {
        let puts: String = (0..n).map(|i| format!("put m/{i} v\n")).collect();
        format!("\n{puts}\n\n")
    };
    let output = ctl_txn(&ep, &ops(128))?;
    ensure!(
        output.starts_with("SUCCESS"),
        "128 ops are allowed: {output}"
    );
    let output = etcdctl_with_input(&ep.url, &["txn"], ops(129).as_bytes())?;
    expect_error_line(&output.expect_failure()?, ERR_TOO_MANY_OPS)?;

    let mut client = connect(&ep.url).await?;
    let puts = |n: usize| -> Vec<TxnOp> {
        (0..n)
            .map(|i| TxnOp::put(format!("mc/{i}"), "v", None))
            .collect()
    };
    client.txn(Txn::new().and_then(puts(128))).await?;
    expect_grpc_error(
        client.txn(Txn::new().and_then(puts(129))).await,
        Code::InvalidArgument,
        ERR_TOO_MANY_OPS,
    )?;
    Ok(())
}

async fn duplicate_key_in_txn(ep: Endpoint) -> Result<()> {
    let output = etcdctl_with_input(&ep.url, &["txn"], b"\nput dk 1\nput dk 2\n\n\n")?;
    expect_error_line(&output.expect_failure()?, ERR_DUPLICATE_KEY)?;

    let mut client = connect(&ep.url).await?;
    expect_grpc_error(
        client
            .txn(Txn::new().and_then([TxnOp::put("dk", "1", None), TxnOp::put("dk", "2", None)]))
            .await,
        Code::InvalidArgument,
        ERR_DUPLICATE_KEY,
    )?;
    // A put inside a deleted range counts as a duplicate too.
    expect_grpc_error(
        client
            .txn(Txn::new().and_then([
                TxnOp::delete("dk/", Some(DeleteOptions::new().with_prefix())),
                TxnOp::put("dk/a", "1", None),
            ]))
            .await,
        Code::InvalidArgument,
        ERR_DUPLICATE_KEY,
    )?;
    // The same key in the two branches is fine, and so are two gets.
    client
        .txn(
            Txn::new()
                .and_then([TxnOp::put("dk", "1", None), TxnOp::get("dk", None)])
                .or_else([TxnOp::put("dk", "2", None)]),
        )
        .await?;
    Ok(())
}

async fn lease_not_found(ep: Endpoint) -> Result<()> {
    // 1234 = 0x4d2, never granted.
    ctl_error(
        &ep,
        &["put", "ln/k", "v", "--lease=4d2"],
        ERR_LEASE_NOT_FOUND,
    )?;
    ctl_error(
        &ep,
        &["lease", "revoke", "4d2"],
        &format!("failed to revoke lease ({ERR_LEASE_NOT_FOUND})"),
    )?;
    ctl_error(
        &ep,
        &["lease", "keep-alive", "--once", "4d2"],
        ERR_LEASE_NOT_FOUND,
    )?;
    check_eq!(
        ctl(&ep, &["lease", "timetolive", "4d2"])?,
        "lease 00000000000004d2 already expired\n"
    );

    let mut client = connect(&ep.url).await?;
    expect_grpc_error(
        client
            .put("ln/k", "v", Some(PutOptions::new().with_lease(1234)))
            .await,
        Code::NotFound,
        ERR_LEASE_NOT_FOUND,
    )?;
    expect_grpc_error(
        client.lease_revoke(1234).await,
        Code::NotFound,
        ERR_LEASE_NOT_FOUND,
    )?;
    // Keep-alive of an unknown lease answers TTL 0 on the stream, not a gRPC error; etcd-client
    // turns a first answer with TTL <= 0 into this error.
    match client.lease_keep_alive(1234).await {
        Err(etcd_client::Error::LeaseKeepAliveError(message)) => {
            check_eq!(message, "lease not found");
        }
        other => bail!("keep-alive of a missing lease: {other:?}"),
    }
    check_eq!(client.lease_time_to_live(1234, None).await?.ttl(), -1);
    // A put with a missing lease inside a txn fails the whole txn.
    expect_grpc_error(
        client
            .txn(Txn::new().and_then([TxnOp::put(
                "ln/t",
                "v",
                Some(PutOptions::new().with_lease(1234)),
            )]))
            .await,
        Code::NotFound,
        ERR_LEASE_NOT_FOUND,
    )?;
    Ok(())
}

// ---- watch ---------------------------------------------------------------------------------

/// One watch event, flattened for comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    kind: EventType,
    key: String,
    value: String,
    mod_revision: i64,
    prev: Option<String>,
}

async fn next_response(stream: &mut WatchStream) -> Result<WatchResponse> {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .context("no watch response within 10 s")??
        .context("watch stream ended")
}

/// Reads the creation response and returns the watch id.
async fn created(stream: &mut WatchStream) -> Result<i64> {
    let response = next_response(stream).await?;
    ensure!(
        response.created(),
        "first response must confirm creation: {response:?}"
    );
    Ok(response.watch_id())
}

/// Collects exactly `n` events (failing on more within one response), skipping empty responses.
async fn next_events(stream: &mut WatchStream, n: usize) -> Result<Vec<Seen>> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let response = next_response(stream).await?;
        ensure!(!response.canceled(), "watch canceled: {response:?}");
        for event in response.events() {
            let kv = event.kv().context("event without kv")?;
            seen.push(Seen {
                kind: event.event_type(),
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                value: String::from_utf8_lossy(kv.value()).into_owned(),
                mod_revision: kv.mod_revision(),
                prev: event
                    .prev_kv()
                    .map(|p| String::from_utf8_lossy(p.value()).into_owned()),
            });
        }
    }
    ensure!(seen.len() == n, "expected {n} events, got {seen:?}");
    Ok(seen)
}

fn seen(kind: EventType, key: &str, value: &str, mod_revision: i64, prev: Option<&str>) -> Seen {
    Seen {
        kind,
        key: key.into(),
        value: value.into(),
        mod_revision,
        prev: prev.map(str::to_owned),
    }
}

/// Fails if a response arrives within `wait`.
async fn expect_quiet(stream: &mut WatchStream, wait: Duration) -> Result<()> {
    if let Ok(response) = tokio::time::timeout(wait, stream.message()).await {
        bail!("expected no watch response, got {response:?}");
    }
    Ok(())
}

async fn watch_key(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let mut stream = client.watch("w/a", None).await?;
    created(&mut stream).await?;
    let r1 = put(&mut client, "w/a", "1").await?;
    put(&mut client, "w/b", "other key").await?;
    let r3 = header_revision(client.delete("w/a", None).await?.header())?;
    check_eq!(
        next_events(&mut stream, 2).await?,
        [
            seen(EventType::Put, "w/a", "1", r1, None),
            seen(EventType::Delete, "w/a", "", r3, None),
        ]
    );
    expect_quiet(&mut stream, Duration::from_millis(300)).await
}

async fn watch_prefix(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let mut stream = client
        .watch("w/", Some(WatchOptions::new().with_prefix()))
        .await?;
    created(&mut stream).await?;
    let r1 = put(&mut client, "w/a", "1").await?;
    put(&mut client, "x/b", "outside").await?;
    let r3 = put(&mut client, "w/c", "3").await?;
    check_eq!(
        next_events(&mut stream, 2).await?,
        [
            seen(EventType::Put, "w/a", "1", r1, None),
            seen(EventType::Put, "w/c", "3", r3, None),
        ]
    );
    // All events of one revision arrive in one response, in txn order.
    let txn = client
        .txn(Txn::new().and_then([TxnOp::put("w/t2", "b", None), TxnOp::put("w/t1", "a", None)]))
        .await?;
    let revision = header_revision(txn.header())?;
    let response = next_response(&mut stream).await?;
    let events: Vec<_> = response
        .events()
        .iter()
        .map(|e| {
            let kv = e.kv().expect("event kv");
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.mod_revision(),
            )
        })
        .collect();
    check_eq!(
        events,
        [("w/t2".to_owned(), revision), ("w/t1".to_owned(), revision)]
    );
    Ok(())
}

async fn watch_from_past_revision(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let r1 = put(&mut client, "p/k", "1").await?;
    let r2 = put(&mut client, "p/k", "2").await?;
    let r3 = header_revision(client.delete("p/k", None).await?.header())?;
    let mut stream = client
        .watch("p/k", Some(WatchOptions::new().with_start_revision(r1)))
        .await?;
    created(&mut stream).await?;
    check_eq!(
        next_events(&mut stream, 3).await?,
        [
            seen(EventType::Put, "p/k", "1", r1, None),
            seen(EventType::Put, "p/k", "2", r2, None),
            seen(EventType::Delete, "p/k", "", r3, None),
        ]
    );
    // And it keeps going with new events.
    let r4 = put(&mut client, "p/k", "4").await?;
    check_eq!(
        next_events(&mut stream, 1).await?,
        [seen(EventType::Put, "p/k", "4", r4, None)]
    );
    Ok(())
}

async fn watch_prev_kv(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let mut stream = client
        .watch("pk/k", Some(WatchOptions::new().with_prev_key()))
        .await?;
    created(&mut stream).await?;
    let r1 = put(&mut client, "pk/k", "a").await?;
    let r2 = put(&mut client, "pk/k", "b").await?;
    let r3 = header_revision(client.delete("pk/k", None).await?.header())?;
    check_eq!(
        next_events(&mut stream, 3).await?,
        [
            seen(EventType::Put, "pk/k", "a", r1, None),
            seen(EventType::Put, "pk/k", "b", r2, Some("a")),
            seen(EventType::Delete, "pk/k", "", r3, Some("b")),
        ]
    );
    Ok(())
}

async fn watch_progress_request(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let mut stream = client.watch("pr/k", None).await?;
    created(&mut stream).await?;
    let revision = put(&mut client, "pr/other", "x").await?;
    stream.request_progress().await?;
    let response = next_response(&mut stream).await?;
    ensure!(
        response.events().is_empty() && !response.created() && !response.canceled(),
        "progress response: {response:?}"
    );
    check_eq!(header_revision(response.header())?, revision);
    // A progress response belongs to the whole stream, not one watch: etcd sends watch id -1.
    check_eq!(response.watch_id(), -1);
    Ok(())
}

async fn watch_progress_notify(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let revision = put(&mut client, "pn/other", "x").await?;
    let mut stream = client
        .watch("pn/k", Some(WatchOptions::new().with_progress_notify()))
        .await?;
    let id = created(&mut stream).await?;
    // k3s runs etcd with a 5 s progress notify interval; cairn must notify at least as often.
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(12), stream.message())
        .await
        .context("no progress notification within 12 s")??
        .context("watch stream ended")?;
    ensure!(
        response.events().is_empty() && !response.canceled(),
        "progress notification: {response:?}"
    );
    check_eq!(header_revision(response.header())?, revision);
    check_eq!(response.watch_id(), id);
    eprintln!(
        "{}: progress notification after {:?}",
        ep.target,
        started.elapsed()
    );
    Ok(())
}

async fn watch_cancel(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let mut stream = client.watch("wc/k", None).await?;
    let id = created(&mut stream).await?;
    stream.cancel(id).await?;
    let response = next_response(&mut stream).await?;
    ensure!(response.canceled(), "cancel confirmation: {response:?}");
    check_eq!(response.watch_id(), id);
    put(&mut client, "wc/k", "after cancel").await?;
    expect_quiet(&mut stream, Duration::from_millis(500)).await?;

    // A second watch on the same stream gets a new id and works.
    stream
        .watch("wc/k", Some(WatchOptions::new().with_prev_key()))
        .await?;
    let second = created(&mut stream).await?;
    ensure!(second != id, "watch ids are not reused on a stream");
    let revision = put(&mut client, "wc/k", "again").await?;
    check_eq!(
        next_events(&mut stream, 1).await?,
        [seen(
            EventType::Put,
            "wc/k",
            "again",
            revision,
            Some("after cancel")
        )]
    );
    Ok(())
}

async fn watch_compacted_revision(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let r1 = put(&mut client, "wk/k", "1").await?;
    put(&mut client, "wk/k", "2").await?;
    let r3 = put(&mut client, "wk/k", "3").await?;
    client.compact(r3, None).await?;
    let mut stream = client
        .watch("wk/k", Some(WatchOptions::new().with_start_revision(r1)))
        .await?;
    // etcd confirms creation, then cancels with the compaction revision.
    let mut responses = Vec::new();
    loop {
        let response = next_response(&mut stream).await?;
        let canceled = response.canceled();
        responses.push(response);
        if canceled || responses.len() > 3 {
            break;
        }
    }
    let last = responses.last().context("no response")?;
    ensure!(
        last.canceled(),
        "watch from a compacted revision: {responses:?}"
    );
    check_eq!(last.compact_revision(), r3);
    ensure!(last.events().is_empty());

    // Watching from the compaction revision itself works.
    let mut ok = client
        .watch("wk/k", Some(WatchOptions::new().with_start_revision(r3)))
        .await?;
    created(&mut ok).await?;
    check_eq!(
        next_events(&mut ok, 1).await?,
        [seen(EventType::Put, "wk/k", "3", r3, None)]
    );
    Ok(())
}

// ---- cluster and maintenance ---------------------------------------------------------------

async fn member_id(client: &mut Client) -> Result<u64> {
    Ok(client
        .status()
        .await?
        .header()
        .context("status header")?
        .member_id())
}

async fn member_list(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let id = member_id(&mut client).await?;

    let json = ctl_json(&ep, &["member", "list"])?;
    let members = json["members"].as_array().context("members")?;
    check_eq!(members.len(), 1);
    check_eq!(members[0]["ID"].as_u64(), Some(id));
    check_eq!(json["header"]["member_id"].as_u64(), Some(id));
    let client_urls: Vec<_> = members[0]["clientURLs"]
        .as_array()
        .context("clientURLs")?
        .iter()
        .filter_map(|u| u.as_str())
        .collect();
    ensure!(
        client_urls.contains(&ep.url.as_str()),
        "clientURLs {client_urls:?} must contain {}",
        ep.url
    );
    let simple = ctl(&ep, &["member", "list"])?;
    ensure!(
        simple.lines().count() == 1 && simple.contains(&format!("{id:x}, started, ")),
        "member list output: {simple:?}"
    );

    let list = client.member_list().await?;
    check_eq!(list.members().len(), 1);
    let member = &list.members()[0];
    check_eq!(member.id(), id);
    ensure!(!member.name().is_empty(), "a started member has a name");
    ensure!(!member.peer_urls().is_empty(), "a member has peer URLs");
    ensure!(member.client_urls().contains(&ep.url));
    ensure!(!member.is_learner());
    Ok(())
}

/// Parses `major.minor.patch` (ignoring any suffix).
fn parse_version(version: &str) -> Result<(u64, u64, u64)> {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(str::parse::<u64>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Ok((a, b, c)),
        _ => bail!("version {version:?} is not major.minor.patch"),
    }
}

async fn endpoint_status(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    let revision = put(&mut client, "st/k", "v").await?;

    let json = ctl_json(&ep, &["endpoint", "status"])?;
    let entry = &json[0];
    check_eq!(entry["Endpoint"].as_str(), Some(ep.url.as_str()));
    let status = &entry["Status"];
    let id = status["header"]["member_id"]
        .as_u64()
        .context("member_id")?;
    check_eq!(status["leader"].as_u64(), Some(id));
    ensure!(status["header"]["revision"].as_i64() >= Some(revision));
    ensure!(status["dbSize"].as_i64() > Some(0), "dbSize: {status}");
    ensure!(
        status["raftIndex"].as_u64() > Some(0),
        "raftIndex: {status}"
    );
    ensure!(status["raftTerm"].as_u64() > Some(0), "raftTerm: {status}");
    let version = status["version"].as_str().context("version")?;
    let parsed = parse_version(version)?;
    if ep.target == Target::Cairn {
        ensure!(
            parsed >= MIN_CAIRN_VERSION,
            "cairn must report etcd version >= 3.5.13 (kube-apiserver's minimum), got {version}"
        );
    }
    let table = ctl(&ep, &["endpoint", "status"])?;
    ensure!(
        table.starts_with(&format!("{}, {id:x}, {version}, ", ep.url)),
        "endpoint status output: {table:?}"
    );

    let status = client.status().await?;
    check_eq!(status.leader(), id);
    check_eq!(status.version(), version);
    ensure!(status.db_size() > 0);
    ensure!(status.raft_index() > 0 && status.raft_term() > 0);
    ensure!(header_revision(status.header())? >= revision);
    ensure!(!status.is_learner());
    Ok(())
}

async fn endpoint_health(ep: Endpoint) -> Result<()> {
    let output = etcdctl(&ep.url, &["endpoint", "health"])?;
    let stdout = output.expect_success()?;
    let both = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    ensure!(
        both.contains(&format!(
            "{} is healthy: successfully committed proposal",
            ep.url
        )),
        "endpoint health output: {both}"
    );
    Ok(())
}

async fn snapshot_save(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    for i in 0..100 {
        put(&mut client, &format!("snap/{i}"), "value").await?;
    }
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("snapshot.db");
    let file_arg = file.to_string_lossy().into_owned();
    let stdout = ctl(&ep, &["snapshot", "save", &file_arg])?;
    ensure!(
        stdout.contains(&format!("Snapshot saved at {file_arg}")),
        "snapshot save output: {stdout}"
    );
    let size = std::fs::metadata(&file)?.len();
    ensure!(size > 0, "snapshot file is empty");

    let mut stream = client.snapshot().await?;
    let mut bytes = 0usize;
    let mut last_remaining = None;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .context("snapshot stream stalled")??
    {
        bytes += chunk.blob().len();
        last_remaining = Some(chunk.remaining_bytes());
    }
    ensure!(bytes > 0, "snapshot stream sent no data");
    check_eq!(last_remaining, Some(0));
    Ok(())
}

async fn defrag(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    for i in 0..50 {
        put(&mut client, &format!("df/{i}"), "value").await?;
    }
    client
        .delete("df/", Some(DeleteOptions::new().with_prefix()))
        .await?;
    put(&mut client, "df/kept", "v").await?;
    check_eq!(
        ctl(&ep, &["defrag"])?,
        format!("Finished defragmenting etcd member[{}]\n", ep.url)
    );
    client.defragment().await?;
    check_eq!(
        value_of(&mut client, "df/kept").await?,
        Some("v".to_owned())
    );
    Ok(())
}

async fn alarm_list(ep: Endpoint) -> Result<()> {
    check_eq!(ctl(&ep, &["alarm", "list"])?, "");
    let mut client = connect(&ep.url).await?;
    let alarms = client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await?;
    ensure!(alarms.alarms().is_empty(), "no alarms: {alarms:?}");
    Ok(())
}

async fn endpoint_hashkv(ep: Endpoint) -> Result<()> {
    let mut client = connect(&ep.url).await?;
    put(&mut client, "hk/a", "1").await?;
    let hashkv = |ep: &Endpoint| -> Result<(u64, i64)> {
        let json = ctl_json(ep, &["endpoint", "hashkv"])?;
        let entry = &json[0]["HashKV"];
        Ok((
            entry["hash"].as_u64().context("hash")?,
            entry["header"]["revision"].as_i64().context("revision")?,
        ))
    };
    let (first, revision) = hashkv(&ep)?;
    let (again, _) = hashkv(&ep)?;
    check_eq!(first, again);

    let response = client.hash_kv(0).await?;
    check_eq!(u64::from(response.hash()), first);
    check_eq!(header_revision(response.header())?, revision);
    let at_revision = client.hash_kv(revision).await?;
    check_eq!(u64::from(at_revision.hash()), first);

    put(&mut client, "hk/b", "2").await?;
    let (changed, _) = hashkv(&ep)?;
    ensure!(changed != first, "hashkv must change after a write");
    // The hash at the old revision is stable.
    check_eq!(u64::from(client.hash_kv(revision).await?.hash()), first);
    Ok(())
}
