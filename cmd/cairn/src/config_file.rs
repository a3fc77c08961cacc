//! The config file (`/etc/cairn/config.yaml` or `--config`): a YAML map whose keys are long flag
//! names. Its entries become command-line flags placed before the user's own, so the command line
//! wins; a key whose `CAIRN_*` variable is set is skipped, so the environment wins over the file.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;

use crate::cli::Cli;

const DEFAULT: &str = "/etc/cairn/config.yaml";

/// Where the config file is, and whether the user named it (then it must exist).
fn location(argv: &[OsString]) -> (PathBuf, bool) {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if let Some(v) = a.strip_prefix("--config=") {
            return (PathBuf::from(v), true);
        }
        if a == "--config"
            && let Some(v) = it.next()
        {
            return (PathBuf::from(v), true);
        }
    }
    match std::env::var_os("CAIRN_CONFIG") {
        Some(v) => (PathBuf::from(v), true),
        None => (PathBuf::from(DEFAULT), false),
    }
}

/// The argument vector with the config file's flags inserted after the subcommand.
pub fn merged_args(argv: Vec<OsString>) -> Result<Vec<OsString>> {
    let (path, named) = location(&argv);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => return Ok(argv),
        Err(e) => return Err(e).with_context(|| format!("read config file {}", path.display())),
    };
    let map: serde_yaml::Mapping = match serde_yaml::from_str(&text)
        .with_context(|| format!("parse config file {}", path.display()))?
    {
        serde_yaml::Value::Mapping(m) => m,
        serde_yaml::Value::Null => return Ok(argv),
        _ => bail!(
            "config file {} must be a map of flag names to values",
            path.display()
        ),
    };
    // Find the (sub)subcommand the user runs; only its flags are taken from the file.
    let mut cmd = Cli::command();
    let mut insert_at = None;
    for (i, a) in argv.iter().enumerate().skip(1) {
        let name = a.to_string_lossy();
        if let Some(sub) = cmd.find_subcommand(name.as_ref()).cloned() {
            cmd = sub;
            insert_at = Some(i + 1);
        }
    }
    let Some(insert_at) = insert_at else {
        return Ok(argv);
    };
    let known: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    let mut extra = Vec::new();
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            bail!("config file {}: keys must be strings", path.display())
        };
        if key == "config" || !known.iter().any(|k| k == key) {
            continue;
        }
        let env = format!("CAIRN_{}", key.to_uppercase().replace('-', "_"));
        if std::env::var_os(&env).is_some() {
            continue;
        }
        let values = match v {
            serde_yaml::Value::Sequence(seq) => seq,
            other => vec![other],
        };
        for value in values {
            match value {
                serde_yaml::Value::Bool(true) => extra.push(format!("--{key}")),
                serde_yaml::Value::Bool(false) | serde_yaml::Value::Null => {}
                serde_yaml::Value::String(s) => extra.push(format!("--{key}={s}")),
                serde_yaml::Value::Number(n) => extra.push(format!("--{key}={n}")),
                _ => bail!(
                    "config file {}: {key} must be a scalar or a list",
                    path.display()
                ),
            }
        }
    }
    let mut out = argv;
    out.splice(insert_at..insert_at, extra.into_iter().map(OsString::from));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_flags_come_before_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "node-name: from-file\nraft-port: 9\ndisable-agent: true\nunknown-key: x\n",
        )
        .unwrap();
        let argv: Vec<OsString> = [
            "cairn",
            "--config",
            file.to_str().unwrap(),
            "server",
            "--raft-port",
            "7",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let merged = merged_args(argv).unwrap();
        let cli = <Cli as clap::Parser>::try_parse_from(merged).unwrap();
        let crate::cli::Command::Server(s) = cli.command else {
            panic!("not server")
        };
        assert_eq!(s.node_name.as_deref(), Some("from-file"));
        assert_eq!(s.raft_port, 7);
        assert!(s.disable_agent);
    }
}
