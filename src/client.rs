//! A small Socket.IO v5 client over tokio-tungstenite, for `spa-hub bench`
//! and the integration tests (the official JS and Python clients are tested
//! separately, in `tests/clients`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::hub::{engineio, socketio};

type Sink = SplitSink<WsStream, Message>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("closed")]
    Closed,
    #[error("timed out")]
    Timeout,
}

/// An event the server pushed: its name, first argument, and the raw frame length.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub name: String,
    pub data: Value,
    pub bytes: usize,
}

pub struct Client {
    sink: Arc<tokio::sync::Mutex<Sink>>,
    pending: Pending,
    next_ack: AtomicU64,
    pub events: mpsc::UnboundedReceiver<Pushed>,
    pub sid: String,
    /// The close frame's code and reason, once the server closed.
    pub closed: Arc<Mutex<Option<(u16, String)>>>,
}

impl Client {
    /// Connects to `base` (e.g. `ws://127.0.0.1:5000`) and authenticates.
    pub async fn connect(base: &str, token: &str) -> Result<Client, ClientError> {
        let (ws, sid) = handshake(base, token).await?;
        let (sink, mut stream) = ws.split();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (events_tx, events) = mpsc::unbounded_channel();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let closed = Arc::new(Mutex::new(None));
        let client = Client {
            sink: sink.clone(),
            pending: pending.clone(),
            next_ack: AtomicU64::new(1),
            events,
            sid,
            closed: closed.clone(),
        };
        // The reader answers pings itself through a channel to the writer half.
        let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<()>();
        let reader = async move {
            while let Some(msg) = stream.next().await {
                let text = match msg {
                    Ok(Message::Text(t)) => t,
                    Ok(Message::Close(frame)) => {
                        if let Ok(mut c) = closed.lock() {
                            *c = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                        }
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                };
                let bytes = text.len();
                match engineio::decode(text.as_str()) {
                    Ok(engineio::EioPacket::Ping(_)) => {
                        let _ = pong_tx.send(());
                    }
                    Ok(engineio::EioPacket::Message(payload)) => match socketio::decode(payload) {
                        Ok(socketio::SioPacket::Ack { ack_id, args, .. }) => {
                            let waiter = pending.lock().ok().and_then(|mut p| p.remove(&ack_id));
                            if let Some(w) = waiter {
                                let _ = w.send(args.into_iter().next().unwrap_or(Value::Null));
                            }
                        }
                        Ok(socketio::SioPacket::Event { name, args, .. }) => {
                            let data = args.into_iter().next().unwrap_or(Value::Null);
                            let _ = events_tx.send(Pushed { name, data, bytes });
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
            if let Ok(mut p) = pending.lock() {
                p.clear();
            }
        };
        tokio::spawn(reader);
        tokio::spawn(async move {
            while pong_rx.recv().await.is_some() {
                if sink
                    .lock()
                    .await
                    .send(Message::text(engineio::PONG))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(client)
    }

    /// Sends a command and waits for its ack (`{"ok":…}`).
    pub async fn call(&self, name: &str, args: Value) -> Result<Value, ClientError> {
        self.call_timeout(name, args, Duration::from_secs(30)).await
    }

    pub async fn call_timeout(
        &self,
        name: &str,
        args: Value,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        let packet = format!("42{id}{}", serde_json::json!([name, args]));
        self.send_raw(&packet).await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// Sends a raw Engine.IO text frame.
    pub async fn send_raw(&self, frame: &str) -> Result<(), ClientError> {
        self.sink
            .lock()
            .await
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// The next pushed event, waiting at most `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Pushed, ClientError> {
        match tokio::time::timeout(timeout, self.events.recv()).await {
            Ok(Some(e)) => Ok(e),
            Ok(None) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// Waits for the next event called `name`, skipping others.
    pub async fn wait_for(&mut self, name: &str, timeout: Duration) -> Result<Pushed, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next_event(left).await?;
            if e.name == name {
                return Ok(e);
            }
        }
    }

    pub async fn close(self) {
        let _ = self.sink.lock().await.close().await;
    }
}

/// A raw WebSocket stream to the hub.
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `base`, reads the open packet and CONNECTs with
/// `token`; returns the stream and the Socket.IO session id.
pub async fn handshake(base: &str, token: &str) -> Result<(WsStream, String), ClientError> {
    let url = format!("{base}/socket.io/?EIO=4&transport=websocket");
    let mut cfg = WebSocketConfig::default();
    cfg.read_buffer_size = 4096;
    cfg.write_buffer_size = 0;
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(cfg), true)
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    let open = next_text(&mut ws).await?;
    if !open.starts_with('0') {
        return Err(ClientError::Connect(format!(
            "expected open packet, got {open}"
        )));
    }
    let auth = serde_json::json!({ "token": token }).to_string();
    ws.send(Message::text(format!("40{auth}")))
        .await
        .map_err(|_| ClientError::Closed)?;
    // The bench floor may broadcast before it answers; a hub never does.
    let mut reply = next_text(&mut ws).await?;
    while reply.starts_with("42") {
        reply = next_text(&mut ws).await?;
    }
    if let Some(body) = reply.strip_prefix("40") {
        let sid = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("sid").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        Ok((ws, sid))
    } else if let Some(body) = reply.strip_prefix("44") {
        Err(ClientError::Refused(body.to_string()))
    } else {
        Err(ClientError::Connect(format!("unexpected reply {reply}")))
    }
}

async fn next_text<S>(stream: &mut S) -> Result<String, ClientError>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t.to_string()),
            Ok(Some(Ok(Message::Close(f)))) => {
                return Err(ClientError::Refused(
                    f.map(|f| f.reason.to_string()).unwrap_or_default(),
                ))
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(ClientError::Connect(e.to_string())),
            Ok(None) => return Err(ClientError::Closed),
            Err(_) => return Err(ClientError::Timeout),
        }
    }
}
