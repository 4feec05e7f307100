//! ESC/POS receipts on a network printer (`SPA_RECEIPT_PRINTER=host:9100`),
//! off the writer's path (#17).
//!
//! The writer's [`Subscriber`] call only copies the committed receipts (and
//! Z reports) into a bounded queue (`try_send`: a full queue drops the job
//! and says so in the status, it never waits). A task of its own renders
//! each job as ESC/POS (text, a cut, and the drawer kick when cash changed
//! hands) and sends it over TCP with a connect and a write timeout, three
//! tries with pauses; what could not be printed is kept in the status that
//! `/healthz` and `GET /api/printer` show (the cashier's page shows it),
//! and `POST /api/printer/retry` sends those again (and cuts a pause between
//! tries short). The checkout is the record: a printer that is off,
//! unreachable or never answering delays and fails nothing but the paper.
//!
//! A receipt counts as printed when the printer closed the connection
//! after taking all of it (we half-close after the last byte; a raw port
//! 9100 reads to that end and closes, as CUPS's socket backend expects by
//! default). Bytes the kernel accepted prove nothing: a receipt is far
//! smaller than the socket buffers, so a printer that stalls mid-receipt
//! (paper out, cover open, firmware hung) took it all as far as `write`
//! can tell. Such a job is reported after the write timeout and kept for
//! the retry, but not resent by itself: the printer may still print what
//! it holds, and a second copy is worse than a cashier's look at the paper.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

use crate::domain::event::Event;
use crate::domain::money::currency::Currency;
use crate::writer::{Committed, Subscriber};

/// ESC @: initialise.
const INIT: &[u8] = &[0x1b, 0x40];
/// GS V 66 3: feed three lines and cut (partial).
pub const CUT: &[u8] = &[0x1d, 0x56, 0x42, 0x03];
/// ESC p 0 25 250: pulse pin 2 (the drawer) for 50 ms on, 500 ms off.
pub const DRAWER_KICK: &[u8] = &[0x1b, 0x70, 0x00, 0x19, 0xfa];
const BOLD_ON: &[u8] = &[0x1b, 0x45, 0x01];
const BOLD_OFF: &[u8] = &[0x1b, 0x45, 0x00];
const CENTER: &[u8] = &[0x1b, 0x61, 0x01];
const LEFT: &[u8] = &[0x1b, 0x61, 0x00];
/// Characters per line on 80 mm paper in font A.
const WIDTH: usize = 42;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const PAUSES: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];
const QUEUE: usize = 64;
const KEEP_FAILED: usize = 20;

/// Something to print.
#[derive(Debug, Clone)]
pub struct Job {
    /// What the cashier reads: `R-000042`, `Z report drawer 7`.
    pub label: String,
    pub bytes: Vec<u8>,
}

/// What the printer did last, for `/healthz` and the cashier's screen.
#[derive(Debug, Default)]
pub struct PrinterStatus {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    printed: u64,
    last_printed: Option<String>,
    last_error: Option<String>,
    failed: VecDeque<Job>,
    dropped: u64,
}

impl PrinterStatus {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    pub fn json(&self, addr: &str) -> Value {
        self.with(|s| {
            json!({
                "address": addr,
                "ok": s.failed.is_empty() && s.last_error.is_none(),
                "printed": s.printed,
                "last_printed": s.last_printed,
                "last_error": s.last_error,
                "not_printed": s.failed.iter().map(|j| j.label.clone()).collect::<Vec<_>>(),
                "dropped": s.dropped,
            })
        })
    }

    /// Takes the jobs that could not be printed (to send them again).
    pub fn take_failed(&self) -> Vec<Job> {
        self.with(|s| s.failed.drain(..).collect())
    }
}

/// The printer as the rest of the hub sees it.
#[derive(Clone)]
pub struct Printer {
    pub addr: String,
    pub status: Arc<PrinterStatus>,
    queue: mpsc::Sender<Job>,
    /// Ends the printing task's pause between tries (`retry`).
    wake: Arc<Notify>,
}

impl Printer {
    /// Starts the printing task; call within the async runtime.
    pub fn spawn(addr: String) -> Printer {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let status = Arc::new(PrinterStatus::default());
        let wake = Arc::new(Notify::new());
        tokio::spawn(run(addr.clone(), jobs, status.clone(), wake.clone()));
        Printer {
            addr,
            status,
            queue,
            wake,
        }
    }

    /// `POST /api/printer/retry`: queues again what could not be printed,
    /// and tries the job waiting between tries at once (the cashier says
    /// the printer is back). Returns how many jobs were queued again.
    pub fn retry(&self) -> usize {
        let jobs = self.status.take_failed();
        let n = jobs.len();
        for job in jobs {
            self.submit(job);
        }
        self.wake.notify_waiters();
        n
    }

    /// Queues a job without waiting (a full queue drops it, and says so).
    pub fn submit(&self, job: Job) {
        if let Err(e) = self.queue.try_send(job) {
            let label = match e {
                mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => {
                    j.label
                }
            };
            log::warn!("receipt printer queue full: {label} not printed");
            self.status.with(|s| {
                s.dropped += 1;
                s.last_error = Some(format!("{label} not printed: the printer queue is full"));
            });
        }
    }

    /// The writer's follower (copies receipts and Z reports, never waits).
    pub fn follower(&self, tz: jiff::tz::TimeZone) -> PrintFollower {
        PrintFollower {
            printer: self.clone(),
            tz,
        }
    }
}

pub struct PrintFollower {
    printer: Printer,
    tz: jiff::tz::TimeZone,
}

impl Subscriber for PrintFollower {
    fn committed(&mut self, batch: &Committed<'_>) {
        for record in batch.events {
            let job = match &record.event {
                Event::Sold { receipt, .. } | Event::Refunded { receipt } => {
                    batch.state.till.receipts.get(&receipt.id).map(|r| {
                        let v = crate::domain::views::receipt_of(batch.state, r);
                        Job {
                            label: r.number_words(),
                            bytes: receipt_bytes(&v, &self.tz),
                        }
                    })
                }
                Event::DrawerClosed { drawer_id, .. } => {
                    batch.state.drawers.get(drawer_id).map(|d| Job {
                        label: format!("Z report drawer {}", d.id),
                        bytes: z_bytes(&crate::domain::views::drawer(d), &self.tz),
                    })
                }
                _ => None,
            };
            if let Some(job) = job {
                self.printer.submit(job);
            }
        }
    }
}

/// Why a job was not printed.
#[derive(Debug)]
enum Failure {
    /// Not all of it reached the printer (off, unreachable, refused, too
    /// slow): sending it again is safe.
    NotSent(String),
    /// All of it was handed over but the printer never closed the
    /// connection after it: it may still print what it holds.
    NotConfirmed(String),
}

impl Failure {
    fn text(&self) -> &str {
        match self {
            Failure::NotSent(e) | Failure::NotConfirmed(e) => e,
        }
    }
}

async fn send(addr: &str, bytes: &[u8]) -> Result<(), Failure> {
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| {
            Failure::NotSent(format!(
                "no answer from {addr} within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| Failure::NotSent(format!("cannot reach {addr}: {e}")))?;
    let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
    let slow = || {
        format!(
            "{addr} took the receipt too slowly (over {} s)",
            WRITE_TIMEOUT.as_secs()
        )
    };
    tokio::time::timeout_at(deadline, async {
        stream.write_all(bytes).await?;
        stream.flush().await?;
        // Half-close: the printer reads to this end, then closes.
        stream.shutdown().await
    })
    .await
    .map_err(|_| Failure::NotSent(slow()))?
    .map_err(|e| Failure::NotSent(format!("sending to {addr}: {e}")))?;
    // Its close is the receipt's confirmation; anything it says before
    // (a status byte) is read and dropped, up to a bound.
    let confirmed = tokio::time::timeout_at(deadline, async {
        let mut buf = [0u8; 256];
        let mut said = 0usize;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) if said + n <= 64 * 1024 => said += n,
                Ok(_) => return Err("it keeps sending data back".to_string()),
                Err(e) => return Err(format!("the connection broke: {e}")),
            }
        }
    })
    .await;
    match confirmed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::NotConfirmed(format!(
            "{addr} took the receipt but did not confirm it: {e}; look at the paper before retrying"
        ))),
        Err(_) => Err(Failure::NotConfirmed(format!(
            "{addr} took the receipt but did not finish it within {} s (paper out, cover open?); look at the paper before retrying",
            WRITE_TIMEOUT.as_secs()
        ))),
    }
}

async fn run(
    addr: String,
    mut jobs: mpsc::Receiver<Job>,
    status: Arc<PrinterStatus>,
    wake: Arc<Notify>,
) {
    while let Some(job) = jobs.recv().await {
        let mut result = send(&addr, &job.bytes).await;
        for pause in PAUSES {
            let Err(Failure::NotSent(e)) = &result else {
                break;
            };
            // Told at once, not after the last try: the cashier can fix
            // the printer (and say so with Retry) while the job waits.
            log::info!("receipt printer: {} not printed yet: {e}", job.label);
            status.with(|s| {
                s.last_error = Some(format!(
                    "{} not printed yet: {e}; trying again in {} s",
                    job.label,
                    pause.as_secs()
                ));
            });
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wake.notified() => {}
            }
            result = send(&addr, &job.bytes).await;
        }
        match result {
            Ok(()) => status.with(|s| {
                s.printed += 1;
                s.last_printed = Some(job.label.clone());
                s.last_error = None;
            }),
            Err(e) => {
                let e = e.text();
                log::warn!("receipt printer: {} not printed: {e}", job.label);
                status.with(|s| {
                    s.last_error = Some(format!("{} not printed: {e}", job.label));
                    if s.failed.len() == KEEP_FAILED {
                        s.failed.pop_front();
                    }
                    s.failed.push_back(job);
                });
            }
        }
    }
}

/// Text a receipt printer's code page can show: ASCII, a few letters
/// spelled out, anything else as `?`.
fn ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ' '..='~' => out.push(c),
            '…' => out.push_str("..."),
            '€' => out.push_str("EUR"),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'á' | 'à' | 'â' | 'ä' | 'ã' => out.push('a'),
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => out.push('o'),
            'ú' | 'ù' | 'û' | 'ü' => out.push('u'),
            'í' | 'ì' | 'î' | 'ï' => out.push('i'),
            'ç' => out.push('c'),
            'ñ' => out.push('n'),
            '·' => out.push('-'),
            _ => out.push('?'),
        }
    }
    out
}

/// `left` and `right` on one line of the paper's width.
fn row(left: &str, right: &str) -> String {
    let left = ascii(left);
    let right = ascii(right);
    let room = WIDTH.saturating_sub(right.len() + 1);
    let left: String = left.chars().take(room).collect();
    format!("{left:<room$} {right}\n")
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn when(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// A receipt (`views::receipt_of`) as ESC/POS bytes: the text, the cut,
/// and the drawer kick when cash was paid or paid back.
pub fn receipt_bytes(r: &Value, tz: &jiff::tz::TimeZone) -> Vec<u8> {
    let cur = Currency {
        code: r["currency"].as_str().unwrap_or("USD").to_string(),
        minor_units: r["minor_units"].as_u64().unwrap_or(2) as u8,
    };
    let money = |v: &Value| cur.format(int(v));
    let refund = r["kind"] == "refund";
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(INIT);
    out.extend_from_slice(CENTER);
    out.extend_from_slice(BOLD_ON);
    out.extend_from_slice(if refund { b"REFUND\n" } else { b"RECEIPT\n" });
    out.extend_from_slice(BOLD_OFF);
    let mut text = format!(
        "{} {}\n",
        ascii(r["number"].as_str().unwrap_or("")),
        when(int(&r["at"]), tz)
    );
    if let Some(n) = r["visit_number"].as_str() {
        text.push_str(&format!("Ticket {}\n", ascii(n)));
    }
    if let Some(n) = r["refund_of_number"].as_str() {
        text.push_str(&format!("Refund of {}\n", ascii(n)));
    }
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(LEFT);
    let mut text = String::new();
    if let Some(reason) = r["reason"].as_str() {
        text.push_str(&format!("Reason: {}\n", ascii(reason)));
    }
    text.push_str(&"-".repeat(WIDTH));
    text.push('\n');
    for l in r["lines"].as_array().into_iter().flatten() {
        let name = l["name"].as_str().unwrap_or("");
        let qty = int(&l["qty"]);
        let label = if qty > 1 {
            format!("{qty} x {name}")
        } else {
            name.to_string()
        };
        text.push_str(&row(&label, &money(&l["gross_cents"])));
        if int(&l["discount_cents"]) > 0 {
            text.push_str(&row(
                "  discount",
                &format!("-{}", money(&l["discount_cents"])),
            ));
        }
    }
    text.push_str(&"-".repeat(WIDTH));
    text.push('\n');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(BOLD_ON);
    out.extend_from_slice(
        row(
            if refund { "REFUNDED" } else { "TOTAL" },
            &money(&r["total_cents"]),
        )
        .as_bytes(),
    );
    out.extend_from_slice(BOLD_OFF);
    let mut text = String::new();
    for t in r["taxes"].as_array().into_iter().flatten() {
        text.push_str(&row(
            &format!(
                "Tax {} on {}",
                t["rate"].as_str().unwrap_or(""),
                money(&t["net_cents"])
            ),
            &money(&t["tax_cents"]),
        ));
    }
    let mut cash = false;
    for p in r["payments"].as_array().into_iter().flatten() {
        let method = p["method"].as_str().unwrap_or("");
        cash |= method == "cash";
        let label = if refund {
            format!("Back to {method}")
        } else {
            format!("Paid {method}")
        };
        text.push_str(&row(&label, &money(&p["amount_cents"])));
    }
    if int(&r["change_cents"]) > 0 {
        text.push_str(&row("Change", &money(&r["change_cents"])));
    }
    text.push_str("\nThank you\n");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(CUT);
    if cash {
        out.extend_from_slice(DRAWER_KICK);
    }
    out
}

/// A closed drawer's Z report (`views::drawer`) as ESC/POS bytes.
pub fn z_bytes(d: &Value, tz: &jiff::tz::TimeZone) -> Vec<u8> {
    let cur = Currency::default();
    let _ = cur;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(INIT);
    out.extend_from_slice(CENTER);
    out.extend_from_slice(BOLD_ON);
    out.extend_from_slice(b"Z REPORT\n");
    out.extend_from_slice(BOLD_OFF);
    let mut text = format!(
        "Drawer {}\n{} - {}\n",
        int(&d["id"]),
        when(int(&d["opened_at"]), tz),
        when(int(&d["closed_at"]), tz)
    );
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(LEFT);
    text = row("", "expected / counted / variance");
    let z = &d["z_report"];
    for m in ["cash", "card", "voucher", "other"] {
        text.push_str(&row(
            m,
            &format!(
                "{} / {} / {}",
                int(&z["expected"][m]),
                int(&z["counted"][m]),
                int(&z["variance"][m])
            ),
        ));
    }
    if d["forced"] == true {
        text.push_str("Closed by force with visits unpaid\n");
    }
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(CUT);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cash_receipt_has_text_cut_and_kick() {
        let r = json!({"number": "R-000007", "kind": "sale", "at": 0, "currency": "EUR", "minor_units": 2,
            "lines": [{"name": "Lavendel-Öl …", "qty": 2, "gross_cents": 2598, "discount_cents": 0}],
            "total_cents": 2598, "taxes": [{"rate": "19%", "net_cents": 2183, "tax_cents": 415}],
            "payments": [{"method": "cash", "amount_cents": 3000}], "change_cents": 402});
        let b = receipt_bytes(&r, &jiff::tz::TimeZone::UTC);
        let text = String::from_utf8_lossy(&b);
        assert!(text.contains("R-000007"));
        assert!(text.contains("2 x Lavendel-?l ..."));
        assert!(text.contains("25.98 EUR"));
        assert!(text.contains("Change"));
        assert!(b.windows(CUT.len()).any(|w| w == CUT));
        assert!(b.ends_with(DRAWER_KICK));
        let before_kick = &b[..b.len() - DRAWER_KICK.len()];
        assert!(before_kick.iter().all(|c| *c < 0x80), "ASCII text only");
        let card = json!({"number": "R-000008", "kind": "sale", "payments": [{"method": "card", "amount_cents": 1}]});
        let b = receipt_bytes(&card, &jiff::tz::TimeZone::UTC);
        assert!(!b.windows(DRAWER_KICK.len()).any(|w| w == DRAWER_KICK));
    }
}
