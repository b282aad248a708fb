//! A `redis-server` of the test's own: a free loopback port, a temp dir, and
//! stopped (by its PID) when dropped. Never the machine's Redis on 6379.
//!
//! Shared by the hub's and the CLI's tests (`#[path]`), so the Redis they run
//! against is started one way.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The longest Redis may take to start or stop.
const WAIT: Duration = Duration::from_secs(15);

/// A running (or stopped, or paused) `redis-server`.
pub(crate) struct RedisServer {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    settings: Settings,
    /// The TLS port, when started with TLS (the plain port stays, for the
    /// harness's own commands).
    pub(crate) tls_port: Option<u16>,
    paused: bool,
}

/// How to start one.
#[derive(Clone, Default)]
pub(crate) struct Settings {
    /// Every write in the append-only file before it is acknowledged.
    pub(crate) persistent: bool,
    /// `requirepass`.
    pub(crate) password: Option<String>,
    /// PEM files of a certificate and its key: also listen with TLS.
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    /// With `tls`: a CA (PEM) that must have signed every client's
    /// certificate (`tls-auth-clients yes`); without, clients need none.
    pub(crate) client_ca: Option<PathBuf>,
}

impl RedisServer {
    /// Starts one. With `persistent`, every write is in its append-only file
    /// before it is acknowledged (`appendfsync always`), so a restart keeps
    /// everything; without, a restart loses everything (a new epoch).
    pub(crate) fn start(persistent: bool) -> RedisServer {
        RedisServer::start_with(Settings {
            persistent,
            ..Settings::default()
        })
    }

    /// Starts one with these settings.
    pub(crate) fn start_with(settings: Settings) -> RedisServer {
        for _ in 0..5 {
            let mut server = RedisServer {
                child: None,
                port: free_port(),
                dir: tempfile::tempdir().expect("a temp dir for redis-server"),
                tls_port: settings.tls.as_ref().map(|_| free_port()),
                settings: settings.clone(),
                paused: false,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Starts the process on `self.port`; false when the port was taken.
    fn spawn(&mut self) -> bool {
        let log = self.dir.path().join("redis.log");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log);
        if self.settings.persistent {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        if let Some(password) = &self.settings.password {
            command.args(["--requirepass", password]);
        }
        if let (Some((cert, key)), Some(port)) = (&self.settings.tls, self.tls_port) {
            command
                .args(["--tls-port", &port.to_string()])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key);
            match &self.settings.client_ca {
                Some(ca) => command
                    .args(["--tls-auth-clients", "yes", "--tls-ca-cert-file"])
                    .arg(ca),
                None => command.args(["--tls-auth-clients", "no"]),
            };
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs Debian's redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.ping() {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                // Exited: most likely the port was taken meanwhile.
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server did not answer within {WAIT:?}; log:\n{}",
            self.log()
        );
    }

    /// `redis://127.0.0.1:PORT/0` (with the password, if any).
    pub(crate) fn url(&self) -> String {
        match &self.settings.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// What the server logged.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// The data directory.
    pub(crate) fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    fn ping(&self) -> bool {
        self.command(&["PING"]).is_some_and(|r| r == "+PONG")
    }

    /// Sends one command (RESP) and returns the first line of the reply, or
    /// `None` when the server cannot be reached.
    pub(crate) fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let encode = |args: &[&str]| {
            let mut request = format!("*{}\r\n", args.len());
            for arg in args {
                request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
            }
            request
        };
        let mut request = String::new();
        if let Some(password) = &self.settings.password {
            request.push_str(&encode(&["AUTH", password]));
        }
        request.push_str(&encode(args));
        stream.write_all(request.as_bytes()).ok()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if self.settings.password.is_some() {
            reader.read_line(&mut line).ok()?;
            line.clear();
        }
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end().to_owned();
        // A bulk reply: read its body too.
        if let Some(len) = line.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
            let mut body = vec![0; len + 2];
            std::io::Read::read_exact(&mut reader, &mut body).ok()?;
            return Some(String::from_utf8_lossy(&body[..len]).into_owned());
        }
        Some(line)
    }

    /// Whether it answers now.
    pub(crate) fn is_up(&self) -> bool {
        self.ping()
    }

    /// Stops the server (SIGTERM, then waits for it to exit).
    pub(crate) fn stop(&mut self) {
        self.resume();
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let deadline = Instant::now() + WAIT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub(crate) fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "redis-server restarts on port {}", self.port);
    }

    /// Freezes the process (SIGSTOP): connections stay open, nothing answers.
    pub(crate) fn pause(&mut self) {
        if let Some(child) = &self.child {
            signal(child.id(), "STOP");
            self.paused = true;
        }
    }

    /// Lets a paused server run again (SIGCONT).
    pub(crate) fn resume(&mut self) {
        if let (Some(child), true) = (&self.child, self.paused) {
            signal(child.id(), "CONT");
            self.paused = false;
        }
    }

    fn kill(&mut self) {
        self.resume();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills every client connection whose name starts with `prefix`
    /// (`CLIENT LIST`, then `CLIENT KILL ID`); returns how many.
    pub(crate) fn kill_clients_named(&self, prefix: &str) -> usize {
        let list = self.client_list();
        let mut killed = 0;
        for line in list.lines() {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .unwrap_or("")
                    .to_owned()
            };
            if field("name").starts_with(prefix) {
                let id = field("id");
                if self.command(&["CLIENT", "KILL", "ID", &id]).as_deref() == Some(":1") {
                    killed += 1;
                }
            }
        }
        killed
    }

    /// `CLIENT LIST`, one client per line.
    pub(crate) fn client_list(&self) -> String {
        self.command(&["CLIENT", "LIST"]).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Sends a signal to a process this test started.
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}
