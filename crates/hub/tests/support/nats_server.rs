//! `nats-server`s of the test's own, with JetStream: one, or a cluster of
//! several with routes between them, each on free loopback ports with its
//! own store dir, and stopped (by PID) when dropped. Never the machine's
//! NATS on 4222.
//!
//! Shared by the hub's and the CLI's tests (`#[path]`), so the NATS they run
//! against is started one way. A server can be killed (`kill -9`), frozen
//! (`SIGSTOP`, a network cut as its peers see it), thawed and restarted on
//! the same ports and store.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The longest a server may take to start listening.
const WAIT: Duration = Duration::from_secs(15);

/// One server of a [`NatsCluster`].
struct Server {
    name: String,
    port: u16,
    cluster_port: u16,
    store: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    frozen: bool,
}

/// Running (or stopped, or frozen) `nats-server`s that form one JetStream
/// cluster (or a lone server).
pub(crate) struct NatsCluster {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// One server, JetStream on, no cluster.
    pub(crate) fn single() -> NatsCluster {
        NatsCluster::start(1)
    }

    /// `n` servers routed to each other (a JetStream cluster when `n` > 1),
    /// each listening before this returns.
    pub(crate) fn start(n: usize) -> NatsCluster {
        let dir = tempfile::tempdir().expect("a temp dir for nats-server");
        let servers = (0..n)
            .map(|i| Server {
                name: format!("n{i}"),
                port: free_port(),
                cluster_port: free_port(),
                store: dir.path().join(format!("n{i}")),
                log: dir.path().join(format!("n{i}.log")),
                child: None,
                frozen: false,
            })
            .collect();
        let mut cluster = NatsCluster { servers, _dir: dir };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_listening(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let routes: Vec<String> = self
            .servers
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| format!("nats://127.0.0.1:{}", s.cluster_port))
            .collect();
        let clustered = self.servers.len() > 1;
        let server = &mut self.servers[i];
        let mut command = Command::new("nats-server");
        command
            .args(["-a", "127.0.0.1", "-p", &server.port.to_string()])
            .args(["-n", &server.name, "-js", "-sd"])
            .arg(&server.store)
            .arg("-l")
            .arg(&server.log);
        if clustered {
            command
                .args(["--cluster_name", "tidings-test"])
                .args([
                    "--cluster",
                    &format!("nats://127.0.0.1:{}", server.cluster_port),
                ])
                .args(["--routes", &routes.join(",")]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (scripts/test.sh installs Debian's nats-server)");
        server.child = Some(child);
        server.frozen = false;
    }

    fn wait_listening(&mut self, i: usize) {
        let deadline = Instant::now() + WAIT;
        let server = &mut self.servers[i];
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", server.port)).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = server.child.as_mut().map(Child::try_wait) {
                panic!(
                    "nats-server {} exited ({status}); log:\n{}",
                    server.name,
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nats-server {} did not listen within {WAIT:?}", server.name);
    }

    /// Every server's client URL, comma-separated: what `--nats` takes.
    pub(crate) fn urls(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Each server's client URL.
    pub(crate) fn url_list(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.port))
            .collect()
    }

    /// The server named `name` (`n0`, `n1`, …), as JetStream names it.
    pub(crate) fn index_of(&self, name: &str) -> usize {
        self.servers
            .iter()
            .position(|s| s.name == name)
            .unwrap_or_else(|| panic!("no server named {name}"))
    }

    /// `kill -9`: the server dies without a word.
    pub(crate) fn kill(&mut self, i: usize) {
        let server = &mut self.servers[i];
        if let Some(mut child) = server.child.take() {
            if server.frozen {
                signal(&child, "-CONT");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        server.frozen = false;
    }

    /// Starts a killed server again, on its ports and store.
    pub(crate) fn restart(&mut self, i: usize) {
        assert!(self.servers[i].child.is_none(), "kill it first");
        self.spawn(i);
        self.wait_listening(i);
    }

    /// `SIGSTOP`: the server holds its connections but answers nothing, as a
    /// server cut off by the network looks to its peers and clients.
    pub(crate) fn freeze(&mut self, i: usize) {
        let server = &mut self.servers[i];
        if let Some(child) = &server.child {
            signal(child, "-STOP");
            server.frozen = true;
        }
    }

    /// `SIGCONT` after [`NatsCluster::freeze`].
    pub(crate) fn thaw(&mut self, i: usize) {
        let server = &mut self.servers[i];
        if let Some(child) = &server.child {
            signal(child, "-CONT");
            server.frozen = false;
        }
    }

    /// What a server logged.
    pub(crate) fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.servers[i].log).unwrap_or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.servers.len()
    }
}

fn signal(child: &Child, which: &str) {
    let _ = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status();
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
