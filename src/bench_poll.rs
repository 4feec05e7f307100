//! The long-polling side of `spa-hub bench hub --transport polling|upgrade`
//! (#18): a minimal Engine.IO v4 long-polling client over two plain
//! HTTP/1.1 keep-alive connections (one for `GET`, one for `POST`, as a
//! browser uses them), and the upgrade of such a session to a WebSocket.
//! Only what the bench needs: the hub's answers always carry a
//! `Content-Length`.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::client::WsStream;

const POLL: &str = "/socket.io/?EIO=4&transport=polling";

/// One keep-alive HTTP/1.1 connection.
struct Http {
    io: BufReader<TcpStream>,
    host: String,
}

impl Http {
    async fn connect(host: &str) -> Result<Http, String> {
        let tcp = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        Ok(Http {
            io: BufReader::new(tcp),
            host: host.to_string(),
        })
    }

    /// One request and its answer: (status, body).
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, String), String> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let io = self.io.get_mut();
        io.write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        io.write_all(body.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.io
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self
                .io
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?
                == 0
            {
                return Err("closed".into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(|_| "bad Content-Length")?;
                }
            }
        }
        let mut body = vec![0u8; length];
        self.io
            .read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// A connected (CONNECTed) long-polling session. Like a browser, it opens
/// a new connection when the hub has closed an idle keep-alive one (the
/// `POST` connection is idle between pongs, past the hub's header timeout).
pub struct PollClient {
    get: Http,
    post: Http,
    path: String,
    sid: String,
}

fn host_of(base: &str) -> &str {
    let rest = base.split_once("://").map(|x| x.1).unwrap_or(base);
    rest.split('/').next().unwrap_or(rest)
}

/// Opens a session, CONNECTs with `token` and reads the CONNECT reply.
pub async fn open(base: &str, token: &str) -> Result<PollClient, String> {
    let host = host_of(base);
    let mut get = Http::connect(host).await?;
    let post = Http::connect(host).await?;
    let (status, body) = get.request("GET", POLL, "").await?;
    if status != 200 || !body.starts_with('0') {
        return Err(format!("handshake: {status} {body}"));
    }
    let open: serde_json::Value =
        serde_json::from_str(&body[1..]).map_err(|e| format!("open packet: {e}"))?;
    let sid = open["sid"].as_str().ok_or("no sid")?.to_string();
    let path = format!("{POLL}&sid={sid}");
    let mut c = PollClient {
        get,
        post,
        path,
        sid,
    };
    let auth = serde_json::json!({ "token": token });
    let (status, _) = c.send(&format!("40{auth}")).await?;
    if status != 200 {
        return Err(format!("CONNECT: {status}"));
    }
    let (status, body) = c.get.request("GET", &c.path, "").await?;
    if status != 200 || !body.starts_with("40{") {
        return Err(format!("CONNECT reply: {status} {body}"));
    }
    Ok(c)
}

/// A monitor over long-polling: answers pings, notes when each
/// `room.updated` arrives, until `stop`.
pub async fn monitor(
    mut c: PollClient,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<(u64, Instant)> {
    let mut got = Vec::new();
    let stopped = async move {
        let _ = stop.changed().await;
    };
    tokio::pin!(stopped);
    loop {
        let path = c.path.clone();
        let answer = tokio::select! {
            answer = c.get.request("GET", &path, "") => answer,
            _ = &mut stopped => break,
        };
        let Ok((200, body)) = answer else { break };
        let now = Instant::now();
        let mut pong = false;
        let mut closed = false;
        for packet in body.split('\u{1e}') {
            match packet {
                "2" => pong = true,
                "1" => closed = true,
                _ => {
                    if let Some(seq) = crate::bench_hub::room_update_seq(packet) {
                        got.push((seq, now));
                    }
                }
            }
        }
        if pong && c.send("3").await.is_err() {
            break;
        }
        if closed {
            break;
        }
    }
    let _ = c.send("1").await;
    got
}

impl PollClient {
    /// A `POST`, on a new connection if the kept-alive one was closed.
    async fn send(&mut self, body: &str) -> Result<(u16, String), String> {
        match self.post.request("POST", &self.path, body).await {
            Ok(answer) => Ok(answer),
            Err(_) => {
                let host = self.post.host.clone();
                self.post = Http::connect(&host).await?;
                self.post.request("POST", &self.path, body).await
            }
        }
    }
}

/// Upgrades the session to a WebSocket (`2probe`, `3probe`, `5`); its HTTP
/// connections are closed.
pub async fn upgrade(c: PollClient, base: &str) -> Result<WsStream, String> {
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket&sid={}",
        host_of(base),
        c.sid
    );
    let mut cfg = WebSocketConfig::default();
    cfg.read_buffer_size = 4096;
    cfg.write_buffer_size = 0;
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(cfg), true)
        .await
        .map_err(|e| e.to_string())?;
    ws.send(Message::text("2probe"))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str() == "3probe" => break,
            Some(Ok(_)) => continue,
            other => return Err(format!("probe: {other:?}")),
        }
    }
    ws.send(Message::text("5"))
        .await
        .map_err(|e| e.to_string())?;
    drop(c);
    Ok(ws)
}
