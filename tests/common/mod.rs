//! Shared test harness: the real daemon as a child process on 127.0.0.1
//! with a temporary data directory, the same server in-process
//! (`InProcessHub`), and a tiny HTTP GET.
#![allow(dead_code)]

pub mod floor;
pub mod nats;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "test-admin-token-0123456789";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `GET path` → (status, body). `None` if nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http(port, "GET", path, &[], "")
}

pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `spa-hub serve` on a free port with `dir` as data directory.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let stderr_path = dir.with_extension(format!("stderr-{port}.log"));
        let stderr = std::fs::File::create(&stderr_path).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spa-hub"));
        cmd.arg("serve")
            .env_clear()
            .env("SPA_LISTEN", format!("127.0.0.1:{port}"))
            .env("SPA_DATA_DIR", dir)
            .env("SPA_ADMIN_TOKEN", ADMIN)
            .env("SPA_LIGHTS", "sim")
            .env("SPA_LOG_TARGET", "stderr")
            .env("SPA_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn spa-hub");
        let mut d = Daemon {
            child,
            port,
            dir: dir.to_path_buf(),
            stderr_path,
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some((200, _)) = http_get(self.port, "/healthz") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("spa-hub exited early with {status}: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("spa-hub did not become ready: {}", self.stderr());
    }

    pub fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGKILL: a power cut as far as the process can tell.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with args and env, returning (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spa-hub"));
    cmd.args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run spa-hub");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The real server in the test's own process (`daemon::start`) on
/// 127.0.0.1:0 with a temporary data directory and simulated lights;
/// `extra` settings are added and override those defaults.
pub struct InProcessHub {
    running: Option<spa_hub::daemon::Running>,
    admin: String,
    _dir: Option<tempfile::TempDir>,
}

impl InProcessHub {
    pub async fn start(admin: &str, extra: &[(&str, &str)]) -> InProcessHub {
        let dir = tempfile::tempdir().expect("tmp");
        let mut hub = InProcessHub::start_on(dir.path(), admin, extra).await;
        hub._dir = Some(dir);
        hub
    }

    /// `start` on a data directory the test keeps (to start it again).
    pub async fn start_on(data: &Path, admin: &str, extra: &[(&str, &str)]) -> InProcessHub {
        let data = data.display().to_string();
        let mut pairs = vec![
            ("SPA_LISTEN", "127.0.0.1:0"),
            ("SPA_DATA_DIR", data.as_str()),
            ("SPA_ADMIN_TOKEN", admin),
            ("SPA_LIGHTS", "sim"),
        ];
        pairs.retain(|(key, _)| !extra.iter().any(|(k, _)| k == key));
        pairs.extend_from_slice(extra);
        let source = spa_hub::config::Source::from_pairs(pairs);
        let config = spa_hub::config::Config::from_source(&source).expect("config");
        let running = spa_hub::daemon::start(config).await.expect("start");
        InProcessHub {
            running: Some(running),
            admin: admin.to_string(),
            _dir: None,
        }
    }

    pub fn running(&self) -> &spa_hub::daemon::Running {
        self.running.as_ref().expect("running")
    }

    pub fn port(&self) -> u16 {
        self.running().addr.port()
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port())
    }

    /// A client connected with the admin token.
    pub async fn admin(&self) -> spa_hub::client::Client {
        spa_hub::client::Client::connect(&self.url(), &self.admin)
            .await
            .expect("admin connects")
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}
