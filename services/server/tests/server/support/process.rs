//! The `pilotgate` binary as a process: one-shot commands and a running server.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_pilotgate");

/// The pseudonym key ring `TestDb` attaches (`pilotgate_store::testing::test_key`).
pub const TEST_PSEUDONYM_KEY: &str =
    "1:0404040404040404040404040404040404040404040404040404040404040404";
/// The audit key `TestDb` attaches (`pilotgate_store::testing::test_audit_key`).
pub const TEST_AUDIT_KEY: &str = "0505050505050505050505050505050505050505050505050505050505050505";

/// The binary, run in `dir` with a clean pilotgate environment. Given a
/// database (one of the tests', `TestDb` or `TestApp`), it gets that
/// database's keys; without one it runs on the default database in `dir`,
/// making its own key files there.
pub fn pilotgate(dir: &Path, database_url: Option<&str>) -> Command {
    let mut command = Command::new(BINARY);
    command.current_dir(dir).stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("PILOTGATE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    if let Some(url) = database_url {
        command
            .env("PILOTGATE_DATABASE_URL", url)
            .env("PILOTGATE_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
            .env("PILOTGATE_AUDIT_KEY", TEST_AUDIT_KEY);
    }
    command
}

pub fn run(command: &mut Command) -> Output {
    command.output().expect("run pilotgate")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `pilotgate serve` process and everything it has written to stderr so far.
pub struct Server {
    pub child: Child,
    pub port: u16,
    log: mpsc::Receiver<String>,
    pub lines: Vec<String>,
}

impl Server {
    /// Starts `serve` on a free port and waits until it says it is serving.
    pub fn start(mut command: Command) -> Server {
        command
            .arg("serve")
            .env("PILOTGATE_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start pilotgate serve");
        let stderr = child.stderr.take().unwrap();
        let (sender, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            port: 0,
            log,
            lines: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.port == 0 {
            let line = server
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("the server did not start: {:?}", server.lines));
            if line.contains("pilotgate is serving") {
                let port = line
                    .split("port=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .expect("a port in the log line");
                server.port = port.parse().unwrap();
            }
            server.lines.push(line);
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends SIGTERM and waits for the process to end; returns its exit status and full stderr.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(2)) {
            self.lines.push(line);
        }
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        (exit, self.lines.join("\n"), stdout)
    }
}
