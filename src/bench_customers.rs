//! `spa-hub bench customers` (#16): a database with N customer records
//! and M past visits linked to them (each served and paid through the real
//! `decide`, 500 a day, archived as the writer does; personal fields sealed
//! with each customer's key as the writer stores them), then the daemon:
//! start-up to ready, its memory, and `customer.search` over the wire for
//! 2–3 letter name prefixes and 4 phone digits (p50/p99), beside the same
//! searches decided in process.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::bench::{percentile, rss_kb};
use crate::bench_year::{cmd, first_day0, Builder};
use crate::domain::{Command, Rules, State};
use crate::store::Store;

const DAY_MS: i64 = 86_400_000;
const MIN_MS: i64 = 60_000;
const VISITS_PER_DAY: u64 = 500;

const FIRST: &[&str] = &[
    "María", "José", "Ana", "Lucía", "Marta", "Laura", "Carmen", "Sofía", "Elena", "Paula", "Sara",
    "Julia", "Irene", "Alba", "Noa", "Olga", "Zoë", "Chloé", "Anaïs", "Léa", "Emma", "Mia", "Nora",
    "Eva", "Clara", "Inés", "Rosa", "Pilar", "Teresa", "Beatriz", "Juan", "Pablo", "Luis", "Jorge",
    "Hugo", "Mateo", "Álvaro", "Iván", "Óscar", "Raúl", "Diego", "David", "Daniel", "Adrián",
    "Marco", "Nicolás", "Tomás", "Martín", "Andrés", "Bruno",
];
const LAST: &[&str] = &[
    "García",
    "Fernández",
    "González",
    "Rodríguez",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Martín",
    "Jiménez",
    "Ruiz",
    "Hernández",
    "Díaz",
    "Moreno",
    "Muñoz",
    "Álvarez",
    "Romero",
    "Alonso",
    "Gutiérrez",
    "Navarro",
    "Torres",
    "Domínguez",
    "Vázquez",
    "Ramos",
    "Gil",
    "Ramírez",
    "Serrano",
    "Blanco",
    "Molina",
    "Morales",
    "Suárez",
    "Ortega",
    "Delgado",
    "Castro",
    "Ortiz",
    "Rubio",
    "Marín",
    "Sanz",
    "Núñez",
    "Iglesias",
    "Medina",
    "Garrido",
    "Cortés",
    "Castillo",
    "Santos",
    "Lozano",
    "Guerrero",
    "Cano",
    "Prieto",
    "Méndez",
    "Cruz",
    "Calvo",
    "Gallego",
    "Vidal",
    "León",
    "Márquez",
    "Herrera",
    "Peña",
    "Flores",
    "Cabrera",
    "Campos",
    "Vega",
    "Fuentes",
    "Carrasco",
    "Diez",
    "Caballero",
    "Reyes",
    "Nieto",
    "Aguilar",
    "Pascual",
    "Santana",
    "Herrero",
    "Lorenzo",
    "Montero",
    "Hidalgo",
    "Giménez",
    "Ibáñez",
    "Ferrer",
    "Durán",
];

/// xorshift64*: seeded, so every run builds the same spa.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        (self.next() >> 11) % n.max(1)
    }
}

/// Builds the database; returns (customer ids, their phones).
fn build(dir: &std::path::Path, customers: u64, visits: u64) -> Result<Vec<String>, String> {
    let days = visits.div_ceil(VISITS_PER_DAY).max(1) as u32;
    let epoch_day0 = first_day0(days);
    let store = Store::open(dir, 64 << 20).map_err(|e| e.to_string())?;
    let mut b = Builder {
        state: State::default(),
        rules: Rules::default(),
        log: Vec::new(),
        touched: Default::default(),
        archived: Vec::new(),
        tokens: 0,
    };
    let t0 = epoch_day0 + 6 * 60 * MIN_MS;
    let (service, therapists) = b.set_up_floor(t0);
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let mut ids = Vec::with_capacity(customers as usize);
    let mut phones = Vec::with_capacity(customers as usize);
    for i in 0..customers {
        let name = format!(
            "{} {} {}",
            FIRST[rng.below(FIRST.len() as u64) as usize],
            LAST[rng.below(LAST.len() as u64) as usize],
            LAST[rng.below(LAST.len() as u64) as usize]
        );
        let phone = format!("6{:08}", rng.below(100_000_000));
        let notes = if i % 5 == 0 {
            json!("allergic to nut oils")
        } else {
            json!(null)
        };
        let c = cmd(
            "customer.create",
            json!({"name": name, "phone": phone, "notes": notes, "duplicate": true}),
        );
        if let Some(reply) = c.and_then(|c| b.run(c, t0)) {
            if let Some(id) = reply["customer"]["id"].as_u64() {
                ids.push(id);
                phones.push(phone);
            }
        }
        if i % 5000 == 4999 {
            b.flush(&store)?;
        }
    }
    b.flush(&store)?;
    let mut made = 0u64;
    for d in 0..i64::from(days) {
        let day0 = epoch_day0 + d * DAY_MS;
        while b.run(Command::ArchiveDue, day0 + 3 * 60 * MIN_MS).is_some() {}
        let morning = day0 + 7 * 60 * MIN_MS;
        for t in &therapists {
            if let Some(c) = cmd("therapist.clock_in", json!({"therapist_id": t})) {
                b.run(c, morning);
            }
        }
        for i in 0..VISITS_PER_DAY.min(visits - made) {
            let at = day0 + 8 * 60 * MIN_MS + i as i64 * 90_000;
            let customer = ids[rng.below(ids.len() as u64) as usize];
            let token = b.token();
            let mut c = cmd(
                "visit.create",
                json!({"customer_id": customer, "service_ids": [service]}),
            );
            if let Some(Command::VisitCreate(v)) = &mut c {
                v.token_hash = token;
            }
            if let Some(reply) = c.and_then(|c| b.run(c, at)) {
                let v = reply["visit"]["id"].as_u64().unwrap_or(0);
                if b.serve(v, at) {
                    made += 1;
                }
            }
        }
        let evening = day0 + 21 * 60 * MIN_MS;
        for t in &therapists {
            if let Some(c) = cmd("therapist.clock_out", json!({"therapist_id": t})) {
                b.run(c, evening);
            }
        }
        b.flush(&store)?;
    }
    println!(
        "built {} customers and {made} past visits over {days} days",
        ids.len()
    );
    Ok(phones)
}

fn queries(phones: &[String], n: usize) -> Vec<(&'static str, String)> {
    let mut rng = Rng(0xBEEF_0002);
    let mut out = Vec::new();
    for i in 0..n {
        let name = crate::domain::customers::fold(
            FIRST
                .get(rng.below(FIRST.len() as u64) as usize)
                .copied()
                .unwrap_or("ma"),
        );
        let len = 2 + (i % 2);
        out.push(("name prefix", name.chars().take(len).collect()));
        let phone = &phones[rng.below(phones.len().max(1) as u64) as usize % phones.len().max(1)];
        let at = rng.below(phone.len().saturating_sub(4) as u64 + 1) as usize;
        out.push(("4 phone digits", phone[at..at + 4].to_string()));
    }
    out
}

pub async fn run(
    customers: u64,
    visits: u64,
    searches: usize,
    dir: Option<std::path::PathBuf>,
    keep: bool,
) -> Result<(), String> {
    let base = dir.unwrap_or_else(std::env::temp_dir);
    let dir = if keep {
        base.join("spa-hub-bench-customers")
    } else {
        base.join(format!("spa-hub-bench-customers-{}", std::process::id()))
    };
    let data = dir.join("data");
    let phones_file = dir.join("phones.txt");
    let started = Instant::now();
    let kept = if keep {
        std::fs::read_to_string(&phones_file)
            .ok()
            .map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
    } else {
        None
    };
    let phones = match kept {
        Some(phones) => {
            println!("using the database kept in {}", dir.display());
            phones
        }
        None => {
            let _ = std::fs::remove_dir_all(&dir);
            let phones = build(&data, customers, visits)?;
            if keep {
                std::fs::write(&phones_file, phones.join("\n"))
                    .map_err(|e| format!("{}: {e}", phones_file.display()))?;
            }
            phones
        }
    };
    if phones.is_empty() {
        return Err("no customers were built".into());
    }
    let store = Store::open(&data, 64 << 20).map_err(|e| e.to_string())?;
    let info = store.info().map_err(|e| e.to_string())?;
    println!(
        "in {:.0} s: {} events, {:.0} MB on disk, {} archived records",
        started.elapsed().as_secs_f64(),
        info.event_count,
        info.size_on_disk as f64 / 1e6,
        store.archive().count()
    );
    // The search in process, on the state as the daemon loads it.
    let t = Instant::now();
    let state = store.load_state().map_err(|e| e.to_string())?;
    println!(
        "load_state in process: {:.0} ms ({} customers, {} visits in memory)",
        t.elapsed().as_secs_f64() * 1000.0,
        state.customers.len(),
        state.visits.len()
    );
    let qs = queries(&phones, searches);
    for kind in ["name prefix", "4 phone digits"] {
        let mut times = Vec::new();
        let mut hits = 0;
        for (_, q) in qs.iter().filter(|(k, _)| *k == kind) {
            let t = Instant::now();
            hits += crate::domain::customers::search(&state, q).len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "customer.search in process, {kind}: p50 {:.2} ms, p99 {:.2} ms ({} queries, {:.1} hits each)",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.len(),
            hits as f64 / times.len().max(1) as f64
        );
    }
    drop(state);
    drop(store);
    // The daemon: start to ready, memory, and the search over the wire.
    let (mut child, port, ready) =
        crate::bench::spawn_with(&data, &[], Duration::from_secs(120)).await?;
    let rss_ready = rss_kb(child.id());
    let url = format!("ws://127.0.0.1:{port}");
    let client = crate::client::Client::connect(&url, crate::bench::BENCH_ADMIN)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    for kind in ["name prefix", "4 phone digits"] {
        let mut times = Vec::new();
        for (_, q) in qs.iter().filter(|(k, _)| *k == kind) {
            let t = Instant::now();
            let ack = client
                .call("customer.search", json!({ "q": q }))
                .await
                .map_err(|e| format!("customer.search: {e}"))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            if ack["ok"] != json!(true) {
                return Err(format!("customer.search {q:?}: {ack}"));
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "customer.search over the wire, {kind}: p50 {:.2} ms, p99 {:.2} ms ({} queries; target p99 ≤ 5 ms)",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.len()
        );
    }
    client.close().await;
    let rss_after = rss_kb(child.id());
    crate::bench::stop_daemon(&mut child);
    match ready {
        Some(t) => println!(
            "daemon: ready {:.0} ms after spawn, RSS {:.1} MB at ready, {:.1} MB after the searches (targets: ≤ 2000 ms, ≤ 128 MB)",
            t.as_secs_f64() * 1000.0,
            rss_ready.unwrap_or(0) as f64 / 1024.0,
            rss_after.unwrap_or(0) as f64 / 1024.0
        ),
        None => println!("daemon: not ready within 120 s"),
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
