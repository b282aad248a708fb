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
