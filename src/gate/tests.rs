use super::*;

fn limits() -> Limits {
    Limits {
        max_http: 4,
        per_address: 2,
        per_token: 2,
        customers: 3,
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

/// Makes every held HTTP connection look idle for `ms`.
fn age(gate: &Gate, ms: u64) {
    let inner = gate.lock();
    for e in inner.http.values() {
        e.activity.store(0, Relaxed);
    }
    drop(inner);
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

#[test]
fn a_full_address_evicts_its_own_quietest_idle_socket() {
    let gate = Gate::new(limits());
    let a = gate.admit_http(ip(1)).expect("first");
    let _b = gate.admit_http(ip(1)).expect("second");
    // Both are active (just accepted): a third from the address is refused.
    assert!(gate.admit_http(ip(1)).is_none());
    age(&gate, EVICT_IDLE_MS + 20);
    let _c = gate.admit_http(ip(1)).expect("room made");
    assert_eq!(gate.evicted.load(Relaxed), 1);
    assert_eq!(gate.counts().0, 2);
    // The evicted ticket is told so, and dropping it changes nothing more.
    let woke = futures_util::FutureExt::now_or_never(a.evicted());
    let _ = woke;
    drop(a);
    assert_eq!(gate.counts().0, 2);
}

#[test]
fn a_full_pool_evicts_globally_and_other_addresses_get_in() {
    let gate = Gate::new(limits());
    let held: Vec<HttpTicket> = (1..=4).filter_map(|i| gate.admit_http(ip(i))).collect();
    assert_eq!(held.len(), 4);
    assert!(gate.admit_http(ip(9)).is_none(), "all active");
    age(&gate, EVICT_IDLE_MS + 20);
    let newcomer = gate.admit_http(ip(9));
    assert!(newcomer.is_some());
    assert_eq!(gate.counts().0, 4);
}

#[test]
fn websockets_before_connect_are_capped_per_address() {
    let gate = Gate::new(limits());
    let a = gate.admit_ws_pending(ip(1)).expect("1");
    let _b = gate.admit_ws_pending(ip(1)).expect("2");
    assert!(gate.admit_ws_pending(ip(1)).is_none());
    assert!(gate.admit_ws_pending(ip(2)).is_some());
    drop(a);
    assert!(gate.admit_ws_pending(ip(1)).is_some());
}

#[test]
fn credentials_and_customers_are_capped() {
    let gate = Gate::new(limits());
    let t1 = gate.admit_credential(Some("h1"), true).expect("1");
    let _t2 = gate.admit_credential(Some("h1"), true).expect("2");
    assert!(
        gate.admit_credential(Some("h1"), true).is_err(),
        "per token"
    );
    let _t3 = gate.admit_credential(Some("h2"), true).expect("3");
    assert!(
        gate.admit_credential(Some("h3"), true).is_err(),
        "customers' share"
    );
    // Staff and monitors still have their share.
    let _m = gate.admit_credential(Some("dev"), false).expect("monitor");
    let _admin = gate.admit_credential(None, false).expect("admin");
    drop(t1);
    assert!(gate.admit_credential(Some("h1"), true).is_ok());
}

#[test]
fn the_staff_share_comes_from_the_budget() {
    let src = crate::config::Source::from_pairs([
        ("SPA_MAX_CONNECTIONS", "500"),
        ("SPA_STAFF_RESERVE_PERCENT", "10"),
        ("SPA_DATA_DIR", "/tmp"),
    ]);
    let c = Config::from_source(&src).expect("config");
    assert_eq!(Limits::from_config(&c).customers, 450);
}

#[test]
fn ipv6_clients_count_by_their_64() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
    let b: IpAddr = "2001:db8:1:2:bbbb::7".parse().expect("ip");
    let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
    assert_eq!(address_key(a), address_key(b));
    assert_ne!(address_key(a), address_key(c));
    let mapped: IpAddr = "::ffff:10.0.0.5".parse().expect("ip");
    assert_eq!(address_key(mapped), ip(5));
    let gate = Gate::new(limits());
    let _x = gate.admit_ws_pending(address_key(a)).expect("1");
    let _y = gate.admit_ws_pending(address_key(b)).expect("2");
    assert!(
        gate.admit_ws_pending(address_key(b)).is_none(),
        "one /64, one cap"
    );
}
