//! Helpers shared by the fault harness (tests/faults.rs, soak.rs,
//! malformed.rs, storm.rs): /healthz and /metrics as values, acks that must
//! be ok, and tmpfs / loop-device mounts for real storage faults (root only;
//! a test that cannot mount says why and skips).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spa_hub::client::Client;

/// `GET /healthz` → (status, JSON body). Panics if nothing answers.
pub fn healthz(port: u16) -> (u16, Value) {
    let (status, body) = super::common::http_get(port, "/healthz").expect("/healthz answers");
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("healthz json: {e}: {body}"));
    (status, v)
}

/// One sample of `/metrics` (the first line starting with `name` followed by
/// a space or `{`…`} `), as a number.
pub fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, body) = super::common::http_get(port, "/metrics")?;
    metric_in(&body, name)
}

pub fn metric_in(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Sends a command and asserts an ok ack; returns `data`.
pub async fn ok(c: &Client, name: &str, args: Value) -> Value {
    let ack = c
        .call(name, args.clone())
        .await
        .unwrap_or_else(|e| panic!("{name} {args}: {e}"));
    assert_eq!(ack["ok"], json!(true), "{name} {args}: {ack}");
    ack["data"].clone()
}

/// The smallest floor a visit can be served on: a room, a 60-minute service
/// at 50.00 and one therapist, clocked in. Returns the service and the
/// therapist as their acks' `data` gave them.
pub async fn small_floor(admin: &Client, therapist: &str, pin: &str) -> (Value, Value) {
    ok(admin, "room.create", json!({"name": "Lotus"})).await;
    let service = ok(
        admin,
        "service.create",
        json!({"name": "Thai", "duration_min": 60, "cleanup_min": 0, "price_cents": 5000}),
    )
    .await;
    let staff = ok(
        admin,
        "staff.create",
        json!({"name": therapist, "role": "therapist", "pin": pin}),
    )
    .await;
    ok(
        admin,
        "therapist.clock_in",
        json!({"therapist_id": staff["staff"]["id"]}),
    )
    .await;
    (service, staff)
}

/// The error code of an ack (`"ok"` when it succeeded).
pub fn code(ack: &Value) -> String {
    if ack["ok"] == json!(true) {
        "ok".into()
    } else {
        ack["error"]["code"].as_str().unwrap_or("?").to_string()
    }
}

/// Polls `f` every 50 ms until it returns true or `within` passes; returns
/// how long it took.
pub fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f().then(|| start.elapsed())
}

/// A mounted file system for a test, unmounted (lazily) on drop.
pub struct Mount {
    pub path: PathBuf,
    /// The loop image behind an ext4 mount, removed on drop.
    image: Option<PathBuf>,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Mount {
    /// `mount -t tmpfs -o size=SIZE tmpfs PATH` (creates PATH).
    pub fn tmpfs(path: &Path, size: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path))?;
        Ok(Mount {
            path: path.to_path_buf(),
            image: None,
        })
    }

    /// A fresh ext4 file system of `mb` MiB in a loop image, mounted at PATH.
    pub fn ext4(path: &Path, mb: u64) -> Result<Mount, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let image = path.with_extension("img");
        let f = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        f.set_len(mb << 20).map_err(|e| e.to_string())?;
        drop(f);
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(path))?;
        Ok(Mount {
            path: path.to_path_buf(),
            image: Some(image),
        })
    }

    pub fn remount(&self, options: &str) -> Result<(), String> {
        run(Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
        if let Some(image) = &self.image {
            let _ = std::fs::remove_file(image);
        }
    }
}

/// Fills the file system holding `dir` with a file until it is full
/// (ENOSPC); returns the file and how many bytes it took.
pub fn fill_disk(dir: &Path) -> (PathBuf, u64) {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0x5au8; 4096];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(_) => break,
        }
    }
    let _ = f.sync_all();
    (path, written)
}

/// Raw WebSocket frames. `payload` is sent as is; the mask is applied here.
pub fn ws_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n <= 0xffff => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x12u8, 0x34, 0x56, 0x78];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// A raw TCP WebSocket: upgraded, the open packet read, CONNECTed (admin)
/// unless `auth` is false.
pub fn raw_ws(port: u16, auth: bool) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("tcp");
    raw_ws_on(s, port, auth)
}

/// `raw_ws` over a stream the caller connected (e.g. with a tiny buffer).
pub fn raw_ws_on(mut s: TcpStream, port: u16, auth: bool) -> TcpStream {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .expect("upgrade");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).expect("response");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let open = read_frame(&mut s).expect("open packet");
    assert_eq!(open.0, 1);
    if auth {
        let connect = format!("40{}", json!({"token": super::common::ADMIN}));
        s.write_all(&ws_frame(true, 0, 1, connect.as_bytes(), true))
            .expect("connect");
        assert!(read_frame(&mut s).expect("40").1.starts_with(b"40{"));
        assert!(read_frame(&mut s)
            .expect("snapshot")
            .1
            .starts_with(b"42[\"snapshot\""));
    }
    s
}

/// One server frame: (opcode, payload). None at EOF or error.
pub fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut l = [0u8; 2];
        s.read_exact(&mut l).ok()?;
        len = u64::from(u16::from_be_bytes(l));
    } else if len == 127 {
        let mut l = [0u8; 8];
        s.read_exact(&mut l).ok()?;
        len = u64::from_be_bytes(l);
    }
    let mut p = vec![0u8; len as usize];
    s.read_exact(&mut p).ok()?;
    Some((h[0] & 0x0f, p))
}
