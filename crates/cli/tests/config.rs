//! `tidings serve` settings: flag > environment > file > default, seen
//! through the address the real binary says it listens on.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `tidings serve` with these extra arguments and environment and
/// returns the address from its banner; the hub is then stopped.
fn listening_on(args: &[&str], env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command
        .args(["serve", "--storage", "memory", "--data-dir"])
        .arg(data.path())
        .args(args)
        .env_remove("TIDINGS_LISTEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    first.trim().rsplit("http://").next().unwrap().to_owned()
}

#[test]
fn flag_beats_environment_beats_file_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, from_env, from_flag) = (free_port(), free_port(), free_port());
    let file = dir.path().join("tidings.toml");
    std::fs::write(
        &file,
        format!("listen = \"127.0.0.1:{from_file}\"\nkeep-alive = \"5s\"\n"),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let env_listen = format!("127.0.0.1:{from_env}");
    let env = [("TIDINGS_LISTEN", env_listen.as_str())];
    let flag_listen = format!("127.0.0.1:{from_flag}");

    assert_eq!(
        listening_on(&["--config", file], &[]),
        format!("127.0.0.1:{from_file}")
    );
    assert_eq!(listening_on(&["--config", file], &env), env_listen);
    assert_eq!(
        listening_on(&["--config", file, "--listen", &flag_listen], &env),
        flag_listen
    );
    // The file can come from the environment too.
    assert_eq!(
        listening_on(&[], &[("TIDINGS_CONFIG", file)]),
        format!("127.0.0.1:{from_file}")
    );
}

/// The banner's `cluster:` line of `tidings serve` with these arguments and
/// environment (Redis need not run: the node starts and keeps retrying).
fn cluster_line(args: &[&str], env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--jwt-key",
            "k",
            "--data-dir",
        ])
        .arg(data.path())
        .args(args)
        .env_remove("TIDINGS_REDIS")
        .env_remove("TIDINGS_REDIS_PREFIX")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.trim_start().starts_with("cluster:"))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    line
}

#[test]
fn redis_settings_come_from_file_environment_and_flags_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tidings.toml");
    std::fs::write(
        &file,
        "[redis]\nurl = \"redis://127.0.0.1:1/1\"\nprefix = \"from-file\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let env = [
        ("TIDINGS_REDIS", "redis://127.0.0.1:2/2"),
        ("TIDINGS_REDIS_PREFIX", "from-env"),
    ];
    let line = cluster_line(&["--config", file], &[]);
    assert!(
        line.contains("redis://127.0.0.1:1/1") && line.contains("{from-file}"),
        "{line}"
    );
    let line = cluster_line(&["--config", file], &env);
    assert!(
        line.contains("redis://127.0.0.1:2/2") && line.contains("{from-env}"),
        "{line}"
    );
    let flags = [
        "--config",
        file,
        "--redis",
        "redis://127.0.0.1:3/3",
        "--redis-prefix",
        "from-flag",
    ];
    let line = cluster_line(&flags, &env);
    assert!(
        line.contains("redis://127.0.0.1:3/3") && line.contains("{from-flag}"),
        "{line}"
    );
    // A password never reaches the banner.
    let line = cluster_line(&["--redis", "redis://:hunter2@127.0.0.1:4/0"], &[]);
    assert!(
        line.contains(":***@") && !line.contains("hunter2"),
        "{line}"
    );
}
