//! A real Debian `nats-server` with JetStream on a free 127.0.0.1 port and a
//! temporary store directory, started and stopped by the test; and
//! `spa-hub hq` as a child process.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http_get};

pub const USER: &str = "spa";
pub const PASSWORD: &str = "chain-secret";
pub const HQ_TOKEN: &str = "hq-test-token-0123456789";

/// The server binary: Debian's package, or `NATS_SERVER` if set.
pub fn binary() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nats-server")
            .to_string()
    })
}

/// Whether nats-server is installed. Without it a developer's `cargo test`
/// says SKIPPED; under CI (`CI` set, where .ci/run installs it) it fails.
pub fn available() -> bool {
    let found = Path::new(&binary()).exists()
        || Command::new(binary())
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "nats-server is missing under CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: nats-server is not installed (apt-get install -y nats-server)");
    }
    found
}

pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    pub store: PathBuf,
    log: PathBuf,
}

impl Nats {
    /// `nats-server -js -sd <store>` on a free port, with a user and password.
    pub fn start(store: &Path) -> Nats {
        let mut n = Nats {
            child: None,
            port: free_port(),
            store: store.to_path_buf(),
            log: store.with_extension("log"),
        };
        n.restart();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn creds(&self) -> String {
        format!("{USER}:{PASSWORD}")
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("nats log");
        let child = Command::new(binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .args(["--user", USER, "--pass", PASSWORD])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server (apt-get install -y nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
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
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `spa-hub hq` on a free port.
pub struct Hq {
    pub child: Child,
    pub port: u16,
    pub stderr_path: PathBuf,
}

impl Hq {
    pub fn start(dir: &Path, nats: &Nats) -> Hq {
        let port = free_port();
        let stderr_path = dir.with_extension(format!("hq-{port}.log"));
        let stderr = std::fs::File::create(&stderr_path).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_spa-hub"))
            .arg("hq")
            .env_clear()
            .env("SPA_HQ_LISTEN", format!("127.0.0.1:{port}"))
            .env("SPA_HQ_DATA_DIR", dir)
            .env("SPA_HQ_TOKEN", HQ_TOKEN)
            .env("SPA_NATS_URL", nats.url())
            .env("SPA_NATS_CREDS", nats.creds())
            .env("SPA_LOG_TARGET", "stderr")
            // info: what head office applied (a forget) is in its log.
            .env("SPA_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn spa-hub hq");
        let mut hq = Hq {
            child,
            port,
            stderr_path,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((200, _)) = http_get(port, "/healthz") {
                break;
            }
            if let Ok(Some(status)) = hq.child.try_wait() {
                panic!("spa-hub hq exited with {status}: {}", hq.stderr());
            }
            assert!(Instant::now() < deadline, "hq not ready: {}", hq.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
        hq
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `GET path` with the token → (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let auth = format!("Bearer {HQ_TOKEN}");
        super::http(self.port, "GET", path, &[("Authorization", &auth)], "").expect("hq answers")
    }
}

impl Drop for Hq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
