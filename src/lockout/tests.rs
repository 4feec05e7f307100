use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn lockout() -> Arc<Lockout> {
    Arc::new(Lockout::default())
}

fn fail(l: &Arc<Lockout>, name: &str, addr: IpAddr) -> Result<(), Locked> {
    l.begin(name, addr).map(Attempt::failed)
}

#[test]
fn five_failures_lock_the_pair_not_the_name_elsewhere() {
    let l = lockout();
    let stranger = ip("10.0.0.66");
    let tablet = ip("10.0.0.5");
    for _ in 0..PAIR_LIMIT {
        fail(&l, "Mia", stranger).expect("let through");
    }
    let locked = l.begin("mia", stranger).err().expect("pair locked");
    assert_eq!(locked.retry_after_s, 60);
    assert!(
        l.begin(" MIA ", tablet).is_ok(),
        "the name is not locked from another address"
    );
}

#[test]
fn attempts_in_flight_count_before_the_pin_is_checked() {
    let l = lockout();
    let a = ip("10.0.0.66");
    // A concurrent burst: the places are taken before any check finishes.
    let held: Vec<Attempt> = (0..PAIR_LIMIT)
        .map(|_| l.begin("Mia", a).expect("place"))
        .collect();
    for _ in 0..50 {
        assert!(l.begin("Mia", a).is_err(), "no place beyond the limit");
    }
    // A success gives its place back; failures keep theirs and lock.
    let mut held = held.into_iter();
    held.next().expect("one").succeeded();
    for h in held {
        h.failed();
    }
    assert!(l.begin("Mia", a).is_ok(), "the success cleared the pair");
}

#[test]
fn a_dropped_attempt_counts_as_a_failure_and_cancel_as_nothing() {
    let l = lockout();
    let a = ip("10.0.0.1");
    for _ in 0..PAIR_LIMIT - 1 {
        drop(l.begin("Ann", a).expect("place"));
    }
    l.begin("Ann", a).expect("place").cancel();
    assert!(l.locked("Ann", a).is_none());
    drop(l.begin("Ann", a).expect("place"));
    assert!(l.locked("Ann", a).is_some());
}

#[test]
fn the_back_off_doubles_up_to_an_hour() {
    let l = Arc::new(Lockout::new(2, 100, 100, Duration::from_millis(30)));
    let a = ip("10.0.0.1");
    fail(&l, "x", a).expect("first");
    fail(&l, "x", a).expect("second locks");
    assert!(l.begin("x", a).is_err(), "locked");
    std::thread::sleep(Duration::from_millis(40));
    // After the lock one more failure locks again, twice as long.
    fail(&l, "x", a).expect("after the lock");
    std::thread::sleep(Duration::from_millis(40));
    assert!(l.begin("x", a).is_err(), "the second lock lasts 60 ms");
    std::thread::sleep(Duration::from_millis(30));
    assert!(l.begin("x", a).is_ok());
    assert_eq!(l.lock_length(1), Duration::from_millis(30));
    assert_eq!(l.lock_length(3), Duration::from_millis(120));
    let d = Lockout::default();
    assert_eq!(d.lock_length(1), FIRST_LOCK);
    assert_eq!(d.lock_length(2), FIRST_LOCK * 2);
    assert_eq!(d.lock_length(7), MAX_LOCK, "capped at an hour");
    assert_eq!(d.lock_length(40), MAX_LOCK);
}

#[test]
fn one_address_spraying_names_is_locked_for_every_name() {
    let l = lockout();
    let a = ip("10.0.0.66");
    for n in 0..ADDRESS_LIMIT {
        fail(&l, &format!("Nobody{n}"), a).expect("through");
    }
    assert!(l.begin("Kim", a).is_err());
    assert!(l.begin("Kim", ip("10.0.0.7")).is_ok());
}

#[test]
fn a_distributed_guesser_meets_the_names_limit_but_known_addresses_do_not() {
    let l = lockout();
    let tablet = ip("10.0.0.5");
    l.begin("Mia", tablet).expect("place").succeeded();
    for n in 0..NAME_LIMIT {
        let a = IpAddr::from([10, 1, (n / 200) as u8, (n % 200) as u8 + 1]);
        fail(&l, "Mia", a).expect("through");
    }
    assert!(
        l.begin("Mia", ip("10.9.9.9")).is_err(),
        "a fresh address meets the name's lock"
    );
    assert!(
        l.begin("Mia", tablet).is_ok(),
        "Mia's own tablet is not locked out by a stranger"
    );
}

#[test]
fn successes_elsewhere_do_not_reset_a_name() {
    let l = lockout();
    for n in 0..NAME_LIMIT {
        let a = IpAddr::from([10, 2, 0, n as u8 + 1]);
        fail(&l, "Mia", a).expect("through");
        l.begin("Eve", ip("10.3.0.1")).expect("eve").succeeded();
    }
    assert!(l.begin("Mia", ip("10.9.9.9")).is_err());
}

#[test]
fn the_table_stays_bounded() {
    let l = lockout();
    for n in 0..(MAX_ENTRIES as u32 + 5_000) {
        let a = IpAddr::from(n.to_be_bytes());
        l.begin("x", a).expect("place").cancel();
    }
    assert!(l.len() <= MAX_ENTRIES + 3, "{}", l.len());
}
