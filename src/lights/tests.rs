//! Tests of the lights module, all with the `sim` backend (and test backends
//! built here): wiring parsing, backend names, patterns, blink phases, the
//! lights task (levels, active-low, failing storage, blinking, idle quietness,
//! faults, a stuck backend, shutdown) and the walk test.

use super::*;

use std::sync::atomic::AtomicBool;

const P1: ChannelPins = ChannelPins {
    red: 17,
    amber: 27,
    green: 22,
};
const P2: ChannelPins = ChannelPins {
    red: 5,
    amber: 6,
    green: 13,
};

fn two_channels() -> BTreeMap<u16, ChannelPins> {
    BTreeMap::from([(1, P1), (2, P2)])
}

fn sim_for(channels: &BTreeMap<u16, ChannelPins>, active_low: bool) -> (Box<SimBackend>, SimProbe) {
    let backend = SimBackend::new(&pins_of(channels), active_low);
    let probe = backend.probe();
    (Box::new(backend), probe)
}

/// Polls `cond` every millisecond for up to `limit`.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Electrical levels of a channel's pins, `[red, amber, green]`.
fn electrical(probe: &SimProbe, pins: ChannelPins) -> [Option<bool>; 3] {
    pins.as_array().map(|pin| probe.level(pin))
}

fn lit(red: bool, amber: bool, green: bool, active_low: bool) -> [Option<bool>; 3] {
    [red, amber, green].map(|on| Some(on != active_low))
}

const SETTLE: Duration = Duration::from_secs(2);

// --- wiring -----------------------------------------------------------------

#[test]
fn parse_channels_accepts_the_documented_form() {
    let parsed = parse_channels("1=17,27,22 2=5,6,13");
    assert_eq!(parsed, Ok(two_channels()));
}

#[test]
fn parse_channels_empty_and_blank_mean_no_channels() {
    assert_eq!(parse_channels(""), Ok(BTreeMap::new()));
    assert_eq!(parse_channels("  \t\n "), Ok(BTreeMap::new()));
}

#[test]
fn parse_channels_accepts_any_whitespace_and_edge_values() {
    let parsed = parse_channels("\t65535=0,1,27\n 3=2,3,4  ").unwrap();
    assert_eq!(
        parsed.get(&65535),
        Some(&ChannelPins {
            red: 0,
            amber: 1,
            green: 27
        })
    );
    assert_eq!(
        parsed.get(&3),
        Some(&ChannelPins {
            red: 2,
            amber: 3,
            green: 4
        })
    );
    assert_eq!(parsed.len(), 2);
    assert_eq!(pins_of(&parsed), vec![2, 3, 4, 0, 1, 27]);
}

/// Each invalid input must fail with a message containing every fragment.
#[test]
fn parse_channels_rejects_every_invalid_wiring_with_a_clear_sentence() {
    let cases: &[(&str, &[&str])] = &[
        (
            "17,27,22",
            &["`17,27,22`", "CHANNEL=RED,AMBER,GREEN", "1=17,27,22"],
        ),
        ("1:17,27,22", &["`1:17,27,22`", "CHANNEL=RED,AMBER,GREEN"]),
        ("x=1,2,3", &["`x`", "not a channel number", "1 to 65535"]),
        ("=1,2,3", &["``", "not a channel number"]),
        ("-1=1,2,3", &["`-1`", "not a channel number"]),
        ("0=1,2,3", &["channel 0", "1 to 65535"]),
        ("65536=1,2,3", &["65536", "1 to 65535"]),
        (
            "1=17,27",
            &["`1=17,27`", "exactly three pins", "1=17,27,22"],
        ),
        ("1=17,27,22,23", &["`1=17,27,22,23`", "exactly three pins"]),
        ("1=", &["`1=`", "exactly three pins"]),
        ("1=a,2,3", &["red pin `a`", "channel 1", "0 to 27"]),
        ("1=1,,3", &["amber pin ``", "channel 1", "0 to 27"]),
        ("1=1,2,+3", &["green pin `+3`", "0 to 27"]),
        ("1=1,2,-3", &["green pin `-3`", "0 to 27"]),
        ("1=28,2,3", &["red pin 28", "outside 0–27"]),
        ("1=1,2,300", &["green pin 300", "outside 0–27"]),
        ("1=1,2,99999999999", &["green pin `99999999999`", "0 to 27"]),
        ("1=4,4,5", &["pin 4", "twice in channel 1", "red and amber"]),
        ("1=4,5,4", &["pin 4", "twice in channel 1", "red and green"]),
        (
            "1=17,27,22 2=5,27,13",
            &["pin 27", "channel 1 (amber)", "channel 2 (amber)"],
        ),
        (
            "1=17,27,22 2=22,6,13",
            &["pin 22", "channel 1 (green)", "channel 2 (red)"],
        ),
        (
            "1=17,27,22 1=5,6,13",
            &["channel 1", "defined twice", "`1=5,6,13`"],
        ),
        ("1=17,27,22 junk", &["`junk`", "CHANNEL=RED,AMBER,GREEN"]),
    ];
    for (input, fragments) in cases {
        let err = match parse_channels(input) {
            Ok(parsed) => panic!("{input:?} was accepted as {parsed:?}"),
            Err(e) => e,
        };
        for fragment in *fragments {
            assert!(
                err.contains(fragment),
                "error for {input:?} lacks {fragment:?}: {err}"
            );
        }
        assert!(
            !err.contains('\n'),
            "error for {input:?} is not one line: {err}"
        );
    }
}

// --- backend kinds and statuses ----------------------------------------------

#[test]
fn backend_kind_parses_and_prints() {
    for kind in BackendKind::ALL {
        assert_eq!(kind.as_str().parse::<BackendKind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    assert_eq!(
        " GPIOCHIP ".parse::<BackendKind>(),
        Ok(BackendKind::Gpiochip)
    );
    assert_eq!(BackendKind::default(), BackendKind::Auto);
    let err = "rppal".parse::<BackendKind>().unwrap_err();
    for accepted in ["`rppal`", "auto", "gpio", "gpiochip", "sim", "off"] {
        assert!(err.contains(accepted), "{err}");
    }
    assert!("".parse::<BackendKind>().is_err());
}

#[test]
fn status_names() {
    let names: Vec<&str> = LightStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "available",
            "held",
            "occupied",
            "overtime",
            "cleaning",
            "out_of_service"
        ]
    );
    for status in LightStatus::ALL {
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            serde_json::json!(status.as_str())
        );
    }
}

// --- patterns -------------------------------------------------------------------

#[test]
fn every_status_maps_to_its_pattern() {
    use LightStatus::*;
    // (status, fast phase, slow phase) -> [red, amber, green]
    for fast in [true, false] {
        for slow in [true, false] {
            assert_eq!(levels(None, false, fast, slow), [false, false, false]);
            assert_eq!(
                levels(Some(Available), false, fast, slow),
                [false, false, true]
            );
            assert_eq!(levels(Some(Held), false, fast, slow), [false, false, fast]);
            assert_eq!(
                levels(Some(Occupied), false, fast, slow),
                [true, false, false]
            );
            assert_eq!(
                levels(Some(Overtime), false, fast, slow),
                [fast, fast, false]
            );
            assert_eq!(
                levels(Some(Cleaning), false, fast, slow),
                [false, true, false]
            );
            assert_eq!(
                levels(Some(OutOfService), false, fast, slow),
                [slow, false, false]
            );
        }
    }
}

#[test]
fn failing_storage_flashes_amber_on_every_channel() {
    for status in LightStatus::ALL.map(Some).into_iter().chain([None]) {
        for slow in [true, false] {
            assert_eq!(levels(status, true, true, slow), [false, true, false]);
            assert_eq!(levels(status, true, false, slow), [false, false, false]);
        }
        assert!(blinks(status, true));
        assert_eq!(blink_speed(status, true), Some(BlinkSpeed::Fast));
    }
}

#[test]
fn which_patterns_blink() {
    use LightStatus::*;
    assert!(!blinks(None, false));
    assert!(!blinks(Some(Available), false));
    assert!(blinks(Some(Held), false));
    assert!(!blinks(Some(Occupied), false));
    assert!(blinks(Some(Overtime), false));
    assert!(!blinks(Some(Cleaning), false));
    assert!(blinks(Some(OutOfService), false));
    assert_eq!(blink_speed(Some(Held), false), Some(BlinkSpeed::Fast));
    assert_eq!(blink_speed(Some(Overtime), false), Some(BlinkSpeed::Fast));
    assert_eq!(
        blink_speed(Some(OutOfService), false),
        Some(BlinkSpeed::Slow)
    );
}

#[test]
fn blink_periods_are_one_and_two_seconds() {
    assert_eq!(FAST_BLINK_PERIOD, Duration::from_millis(1000));
    assert_eq!(SLOW_BLINK_PERIOD, Duration::from_millis(2000));
}

#[test]
fn blink_phases_follow_elapsed_time() {
    let ms = Duration::from_millis;
    // fast: 500 ms on, 500 ms off; slow: 1 s on, 1 s off; both start on.
    let table = [
        (0, true, true),
        (1, true, true),
        (499, true, true),
        (500, false, true),
        (999, false, true),
        (1000, true, false),
        (1499, true, false),
        (1500, false, false),
        (1999, false, false),
        (2000, true, true),
        (2500, false, true),
        (3_600_000, true, true),
        (3_600_500, false, true),
        (3_601_000, true, false),
    ];
    for (at, fast, slow) in table {
        assert_eq!(phases(ms(at)), (fast, slow), "at {at} ms");
    }
    // Sub-millisecond precision at the edges.
    assert!(phases(ms(500) - Duration::from_nanos(1)).0);
    assert!(!phases(ms(500)).0);
}

#[test]
fn next_blink_edge() {
    let ms = Duration::from_millis;
    let t = BlinkTiming::default();
    assert_eq!(t.until_next_edge(ms(0), false, false), None);
    assert_eq!(t.until_next_edge(ms(0), true, false), Some(ms(500)));
    assert_eq!(t.until_next_edge(ms(120), true, false), Some(ms(380)));
    assert_eq!(t.until_next_edge(ms(500), true, false), Some(ms(500)));
    assert_eq!(t.until_next_edge(ms(0), false, true), Some(ms(1000)));
    assert_eq!(t.until_next_edge(ms(1200), false, true), Some(ms(800)));
    assert_eq!(t.until_next_edge(ms(1200), true, true), Some(ms(300)));
    // Degenerate periods never divide by zero nor spin.
    let zero = BlinkTiming {
        fast_period: Duration::ZERO,
        slow_period: Duration::ZERO,
    };
    assert_eq!(zero.until_next_edge(ms(5), true, true), Some(ms(1)));
    assert_eq!(zero.phases(ms(5)), (false, false));
    // Huge periods do not overflow.
    let huge = BlinkTiming {
        fast_period: Duration::MAX,
        slow_period: Duration::MAX,
    };
    assert!(huge.until_next_edge(ms(5), true, true).is_some());
}

// --- backends ---------------------------------------------------------------------

#[test]
fn sim_backend_keeps_levels_and_counts_writes() {
    let mut sim = SimBackend::new(&[1, 2], false);
    let probe = sim.probe();
    assert_eq!(sim.name(), "sim");
    assert_eq!(probe.levels(), BTreeMap::from([(1, false), (2, false)]));
    sim.set(1, true).unwrap();
    assert_eq!(probe.level(1), Some(true));
    assert_eq!(probe.level(3), None);
    assert_eq!(probe.writes(), 1);
    assert_eq!(probe.history(), vec![(1, true)]);
    let err = sim.set(3, true).unwrap_err().to_string();
    assert!(err.contains("pin 3"), "{err}");
    probe.set_failing(2, true);
    let err = sim.set(2, true).unwrap_err().to_string();
    assert!(err.contains("pin 2") && err.contains("sim"), "{err}");
    probe.set_failing(2, false);
    sim.set(2, true).unwrap();
    assert_eq!(probe.writes(), 2);
    assert!(sim.sim_probe().is_some());
}

#[test]
fn open_backend_sim_off_and_auto_without_pins() {
    let (backend, why) = open_backend(BackendKind::Sim, &[17, 27, 22]).unwrap();
    assert_eq!(backend.name(), "sim");
    assert!(why.contains("sim"), "{why}");
    let probe = backend.sim_probe().unwrap();
    assert_eq!(probe.levels().len(), 3);

    let (backend, _) = open_backend_with_level(BackendKind::Sim, &[4], true).unwrap();
    assert_eq!(backend.sim_probe().unwrap().level(4), Some(true));

    let (mut backend, why) = open_backend(BackendKind::Off, &[17]).unwrap();
    assert_eq!(backend.name(), "off");
    assert!(why.contains("off"), "{why}");
    assert!(backend.set(17, true).is_ok());

    // No channels: off on a Pi, sim (nothing to drive) anywhere else.
    let (backend, why) = open_backend(BackendKind::Auto, &[]).unwrap();
    let on_pi = board_model().is_some_and(|m| is_raspberry_pi_model(&m));
    assert_eq!(backend.name(), if on_pi { "off" } else { "sim" });
    assert!(why.contains("SPA_LIGHT_CHANNELS"), "{why}");
}

/// On this x86 development machine (no device tree, no Pi GPIO chip) `auto`
/// falls back to `sim`, and says why.
#[cfg(target_arch = "x86_64")]
#[test]
fn auto_picks_sim_on_an_x86_machine() {
    if std::env::var_os("SPA_GPIOCHIP").is_some_and(|v| !v.is_empty()) {
        eprintln!("SPA_GPIOCHIP is set: skipping");
        return;
    }
    let (backend, why) = open_backend(BackendKind::Auto, &[17, 27, 22]).unwrap();
    assert_eq!(backend.name(), "sim", "{why}");
    assert!(why.contains("SPA_LIGHTS=auto"), "{why}");
    assert!(why.contains("not a Raspberry Pi"), "{why}");
}

/// The hardware backends fail cleanly (no panic) where there is no hardware.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn hardware_backends_fail_cleanly_without_hardware() {
    match open_backend(BackendKind::Gpio, &[17]) {
        Ok((backend, _)) => panic!("gpio opened on x86: {}", backend.name()),
        Err(e) => assert!(e.to_string().contains("`gpio`"), "{e}"),
    }
    if std::env::var_os("SPA_GPIOCHIP").is_none() && gpiochip::find_pi_chip().is_err() {
        match open_backend(BackendKind::Gpiochip, &[17]) {
            Ok((backend, _)) => panic!("gpiochip opened: {}", backend.name()),
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("`gpiochip`"), "{text}");
                assert!(text.contains("SPA_GPIOCHIP"), "{text}");
            }
        }
    }
    #[cfg(target_os = "linux")]
    {
        let err = gpiochip::GpiochipBackend::open(std::path::Path::new("/dev/null"), &[1], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/null"), "{err}");
    }
}

#[test]
fn pi_detection_helpers() {
    assert!(is_raspberry_pi_model("Raspberry Pi 4 Model B Rev 1.4"));
    assert!(is_raspberry_pi_model("Raspberry Pi Zero 2 W Rev 1.0"));
    assert!(!is_raspberry_pi_model("linux,dummy-virt"));
    for label in [
        "pinctrl-bcm2835",
        "pinctrl-bcm2711",
        "pinctrl-bcm2712",
        "pinctrl-rp1",
    ] {
        assert!(is_pi_gpio_label(label), "{label}");
    }
    for label in [
        "raspberrypi-exp-gpio",
        "brcmvirt-gpio",
        "pl061",
        "gpio-sim.0-node0",
        "",
    ] {
        assert!(!is_pi_gpio_label(label), "{label}");
    }
}

// --- the lights task ------------------------------------------------------------------

fn settled(lights: &Lights, probe: &SimProbe, want: &[(ChannelPins, [Option<bool>; 3])]) {
    let ok = eventually(SETTLE, || {
        want.iter()
            .all(|(pins, levels)| electrical(probe, *pins) == *levels)
    });
    assert!(
        ok,
        "pins never reached {want:?}; levels now {:?}; report {:?}",
        probe.levels(),
        lights.levels()
    );
}

/// Every status, on the channel's pins, with the standard (1 s / 2 s) blink:
/// a blinking pattern starts in its "on" phase.
#[test]
fn task_shows_every_status_on_the_pins() {
    use LightStatus::*;
    for active_low in [false, true] {
        let channels = two_channels();
        let (backend, probe) = sim_for(&channels, active_low);
        let lights = spawn(backend, channels, active_low);
        // Dark at start.
        settled(
            &lights,
            &probe,
            &[
                (P1, lit(false, false, false, active_low)),
                (P2, lit(false, false, false, active_low)),
            ],
        );
        let cases = [
            (Available, lit(false, false, true, active_low)),
            (Held, lit(false, false, true, active_low)),
            (Occupied, lit(true, false, false, active_low)),
            (Overtime, lit(true, true, false, active_low)),
            (Cleaning, lit(false, true, false, active_low)),
            (OutOfService, lit(true, false, false, active_low)),
        ];
        for (status, want) in cases {
            lights.set_rooms(BTreeMap::from([(1, status)]));
            // Channel 2 has no room: dark.
            settled(
                &lights,
                &probe,
                &[(P1, want), (P2, lit(false, false, false, active_low))],
            );
            let report = lights.levels();
            assert_eq!(report.len(), 2);
            assert_eq!(report[0].channel, 1);
            assert_eq!(report[0].status, Some(status));
            assert_eq!(report[0].blinking, blinks(Some(status), false));
            assert_eq!(report[1].status, None);
            assert_eq!(
                [report[1].red, report[1].amber, report[1].green],
                [false; 3]
            );
            // Let a blinking pattern go back to steady before the next case,
            // so the next blink restarts in its "on" phase.
            lights.set_rooms(BTreeMap::new());
            settled(
                &lights,
                &probe,
                &[(P1, lit(false, false, false, active_low))],
            );
        }
        lights.shutdown();
        assert!(lights.wait_stopped(SETTLE));
    }
}

#[test]
fn active_low_inverts_the_electrical_levels() {
    let channels = BTreeMap::from([(1, P1)]);
    let (backend, probe) = sim_for(&channels, true);
    let lights = spawn(backend, channels, true);
    lights.set_rooms(BTreeMap::from([(1, LightStatus::Occupied)]));
    // Occupied = red lit = red pin LOW, the others HIGH.
    settled(
        &lights,
        &probe,
        &[(P1, [Some(false), Some(true), Some(true)])],
    );
    // The report is logical, not electrical.
    let report = lights.levels();
    assert!(report[0].red && !report[0].amber && !report[0].green);
    assert!(lights.active_low());
    lights.shutdown();
    assert!(lights.wait_stopped(SETTLE));
    // Off = every pin HIGH.
    assert_eq!(electrical(&probe, P1), [Some(true); 3]);
}

#[test]
fn failing_storage_flashes_amber_everywhere_then_recovers() {
    let channels = two_channels();
    let (backend, probe) = sim_for(&channels, false);
    let lights = spawn(backend, channels, false);
    lights.set_rooms(BTreeMap::from([(1, LightStatus::Occupied)]));
    settled(&lights, &probe, &[(P1, lit(true, false, false, false))]);
    lights.set_storage_failing(true);
    // Starts in the on phase: amber only, on both channels (channel 2 has no room).
    settled(
        &lights,
        &probe,
        &[
            (P1, lit(false, true, false, false)),
            (P2, lit(false, true, false, false)),
        ],
    );
    assert!(lights
        .levels()
        .iter()
        .all(|c| c.storage_failing && c.blinking));
    lights.set_storage_failing(false);
    settled(
        &lights,
        &probe,
        &[
            (P1, lit(true, false, false, false)),
            (P2, lit(false, false, false, false)),
        ],
    );
    lights.shutdown();
    assert!(lights.wait_stopped(SETTLE));
}

#[test]
fn a_change_reaches_the_pins_promptly() {
    let channels = BTreeMap::from([(1, P1)]);
    let (backend, probe) = sim_for(&channels, false);
    let lights = spawn(backend, channels, false);
    let mut worst = Duration::ZERO;
    for round in 0..20 {
        let status = if round % 2 == 0 {
            LightStatus::Occupied
        } else {
            LightStatus::Available
        };
        let want = if round % 2 == 0 { 17 } else { 22 };
        let start = Instant::now();
        lights.set_rooms(BTreeMap::from([(1, status)]));
        assert!(eventually(SETTLE, || probe.level(want) == Some(true)));
        worst = worst.max(start.elapsed());
    }
    // The design target is 50 ms; allow for a loaded 2-core test machine.
    assert!(
        worst < Duration::from_millis(250),
        "worst latency {worst:?}"
    );
    lights.shutdown();
    assert!(lights.wait_stopped(SETTLE));
}

#[test]
fn blinking_toggles_with_real_time() {
    let timing = BlinkTiming {
        fast_period: Duration::from_millis(40),
        slow_period: Duration::from_millis(80),
    };
    let channels = two_channels();
    let (backend, probe) = sim_for(&channels, false);
    let lights = spawn_with_timing(backend, channels, false, timing);
    lights.set_rooms(BTreeMap::from([
        (1, LightStatus::Held),
        (2, LightStatus::OutOfService),
    ]));
    settled(&lights, &probe, &[(P1, lit(false, false, true, false))]);
    probe.clear_history();
    std::thread::sleep(Duration::from_millis(400));
    let history = probe.history();
    let green1 = history.iter().filter(|(pin, _)| *pin == P1.green).count();
    let red2 = history.iter().filter(|(pin, _)| *pin == P2.red).count();
    // Ideal: 20 toggles of the fast pin and 10 of the slow one in 400 ms.
    assert!(
        (6..=22).contains(&green1),
        "fast pin toggled {green1} times"
    );
    assert!((3..=11).contains(&red2), "slow pin toggled {red2} times");
    assert!(red2 < green1, "slow {red2} vs fast {green1}");
    // Only the blinking pins were written, and each write changed the level.
    assert!(history
        .iter()
        .all(|(pin, _)| *pin == P1.green || *pin == P2.red));
    for pin in [P1.green, P2.red] {
        let levels: Vec<bool> = history
            .iter()
            .filter(|(p, _)| *p == pin)
            .map(|(_, l)| *l)
            .collect();
        assert!(levels.windows(2).all(|w| w[0] != w[1]), "{pin}: {levels:?}");
    }
    lights.shutdown();
    assert!(lights.wait_stopped(SETTLE));
}

/// With nothing blinking the task does not wake up: no writes at all while idle,
/// and setting the same state again writes nothing.
#[test]
fn an_idle_box_writes_nothing() {
    let timing = BlinkTiming {
        fast_period: Duration::from_millis(20),
        slow_period: Duration::from_millis(40),
    };
    let channels = two_channels();
    let (backend, probe) = sim_for(&channels, false);
    let lights = spawn_with_timing(backend, channels, false, timing);
    let rooms = BTreeMap::from([(1, LightStatus::Available), (2, LightStatus::Cleaning)]);
    lights.set_rooms(rooms.clone());
    settled(
        &lights,
        &probe,
        &[
            (P1, lit(false, false, true, false)),
            (P2, lit(false, true, false, false)),
        ],
    );
    std::thread::sleep(Duration::from_millis(20));
    let writes = probe.writes();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(probe.writes(), writes, "writes while idle");
    lights.set_rooms(rooms);
    lights.set_storage_failing(false);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(probe.writes(), writes, "writes for an unchanged state");
    // A change writes only the pins that change: channel 1 green -> red.
    lights.set_rooms(BTreeMap::from([
        (1, LightStatus::Occupied),
        (2, LightStatus::Cleaning),
    ]));
    settled(&lights, &probe, &[(P1, lit(true, false, false, false))]);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(probe.writes(), writes + 2);
    // Blinking stops: the timer stops with it.
    lights.set_rooms(BTreeMap::from([(1, LightStatus::Held)]));
    std::thread::sleep(Duration::from_millis(100));
    lights.set_rooms(BTreeMap::from([(1, LightStatus::Available)]));
    settled(&lights, &probe, &[(P1, lit(false, false, true, false))]);
    std::thread::sleep(Duration::from_millis(30));
    let writes = probe.writes();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(probe.writes(), writes, "writes after blinking stopped");
    lights.shutdown();
    assert!(lights.wait_stopped(SETTLE));
}

#[test]
fn shutdown_switches_every_pin_off() {
    for active_low in [false, true] {
        let channels = two_channels();
        let (backend, probe) = sim_for(&channels, active_low);
        let lights = spawn(backend, channels, active_low);
        lights.set_rooms(BTreeMap::from([
            (1, LightStatus::Overtime),
            (2, LightStatus::Cleaning),
        ]));
        settled(
            &lights,
            &probe,
            &[
                (P1, lit(true, true, false, active_low)),
                (P2, lit(false, true, false, active_low)),
            ],
        );
        lights.shutdown();
        assert!(lights.wait_stopped(SETTLE));
        assert!(lights.is_stopped());
        for (pin, level) in probe.levels() {
            assert_eq!(
                level, active_low,
                "pin {pin} not off (active_low {active_low})"
            );
        }
        assert!(lights
            .levels()
            .iter()
            .all(|c| !c.red && !c.amber && !c.green && c.status.is_none()));
        // Calls after the end are harmless.
        lights.set_rooms(BTreeMap::from([(1, LightStatus::Occupied)]));
        lights.set_storage_failing(true);
        lights.shutdown();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(probe.level(P1.red), Some(active_low));
    }
}

#[tokio::test]
async fn stopped_completes_after_shutdown() {
    let channels = BTreeMap::from([(1, P1)]);
    let (backend, probe) = sim_for(&channels, false);
    let lights = spawn(backend, channels, false);
    lights.set_rooms(BTreeMap::from([(1, LightStatus::Occupied)]));
    let clone = lights.clone();
    clone.shutdown();
    tokio::time::timeout(SETTLE, lights.stopped())
        .await
        .expect("stopped() did not complete");
    assert_eq!(probe.level(P1.red), Some(false));
    // Again, after the fact.
    tokio::time::timeout(SETTLE, clone.stopped())
        .await
        .expect("second stopped() did not complete");
}

#[test]
fn dropping_every_handle_switches_off() {
    let channels = BTreeMap::from([(1, P1)]);
    let (backend, probe) = sim_for(&channels, false);
    let lights = spawn(backend, channels, false);
    lights.set_rooms(BTreeMap::from([(1, LightStatus::Cleaning)]));
    assert!(eventually(SETTLE, || probe.level(P1.amber) == Some(true)));
    let shared = Arc::clone(&lights.shared);
    drop(lights);
    assert!(eventually(SETTLE, || *lock(&shared.stopped)));
    assert_eq!(probe.level(P1.amber), Some(false));
}

#[test]
fn a_failing_pin_is_logged_once_and_the_rest_keeps_working() {
    let timing = BlinkTiming {
        fast_period: Duration::from_millis(20),
        slow_period: Duration::from_millis(40),
    };
    let channels = two_channels();
    let (backend, probe) = sim_for(&channels, false);
    let lights = spawn_with_timing(backend, channels, false, timing);
    probe.set_failing(P1.green, true);
    // Held blinks the failing pin: a failure at every edge.
    lights.set_rooms(BTreeMap::from([
        (1, LightStatus::Held),
        (2, LightStatus::Occupied),
    ]));
    settled(&lights, &probe, &[(P2, lit(true, false, false, false))]);
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(lights.shared.faults_logged.load(Ordering::Relaxed), 1);
    let report = lights.levels();
    let fault = report[0].fault.clone().unwrap_or_default();
    assert!(fault.contains("pin 22"), "{report:?}");
    assert_eq!(report[1].fault, None);
    // The task still follows changes on the other pins.
    lights.set_rooms(BTreeMap::from([
        (1, LightStatus::Held),
        (2, LightStatus::Cleaning),
    ]));
    settled(&lights, &probe, &[(P2, lit(false, true, false, false))]);
    // The pin recovers: it blinks again and the fault clears.
    probe.set_failing(P1.green, false);
    assert!(eventually(SETTLE, || probe.level(P1.green) == Some(true)));
    assert!(eventually(SETTLE, || lights.levels()[0].fault.is_none()));
    // Failing again is logged again (once).
    probe.set_failing(P1.green, true);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(lights.shared.faults_logged.load(Ordering::Relaxed), 2);
    probe.set_failing(P1.green, false);
    lights.shutdown();
    assert!(lights.wait_stopped(SETTLE));
    assert_eq!(probe.level(P1.green), Some(false));
}

/// A backend whose writes block until released.
struct StuckBackend {
    release: Arc<(Mutex<bool>, Condvar)>,
    entered: Arc<AtomicBool>,
}

impl LightBackend for StuckBackend {
    fn name(&self) -> &'static str {
        "stuck"
    }

    fn set(&mut self, _pin: u8, _level: bool) -> Result<(), LightError> {
        self.entered.store(true, Ordering::SeqCst);
        let (released, cv) = &*self.release;
        let guard = lock(released);
        let _guard = cv
            .wait_while(guard, |released| !*released)
            .unwrap_or_else(PoisonError::into_inner);
        Ok(())
    }
}

#[test]
fn a_stuck_gpio_write_never_blocks_the_caller() {
    let release = Arc::new((Mutex::new(false), Condvar::new()));
    let entered = Arc::new(AtomicBool::new(false));
    let backend = StuckBackend {
        release: Arc::clone(&release),
        entered: Arc::clone(&entered),
    };
    let lights = spawn(Box::new(backend), BTreeMap::from([(1, P1)]), false);
    assert!(eventually(SETTLE, || entered.load(Ordering::SeqCst)));
    let start = Instant::now();
    for round in 0..10_000u32 {
        let status = LightStatus::ALL[(round % 6) as usize];
        lights.set_rooms(BTreeMap::from([(1, status)]));
        lights.set_storage_failing(round % 2 == 0);
        let _ = lights.levels();
    }
    lights.shutdown();
    assert!(!lights.wait_stopped(Duration::from_millis(10)));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "calls took {:?}",
        start.elapsed()
    );
    let (released, cv) = &*release;
    *lock(released) = true;
    cv.notify_all();
    assert!(lights.wait_stopped(SETTLE));
}

#[test]
fn channel_levels_serialize_for_healthz() {
    let channels = BTreeMap::from([(1, P1)]);
    let (backend, _probe) = sim_for(&channels, false);
    let lights = spawn(backend, channels, false);
    assert_eq!(lights.backend_name(), "sim");
    assert!(lights.sim_probe().is_some());
    assert_eq!(lights.channels().len(), 1);
    lights.set_rooms(BTreeMap::from([(1, LightStatus::OutOfService)]));
    assert!(eventually(SETTLE, || lights.levels()[0].status.is_some()));
    let json = serde_json::to_value(lights.levels()).unwrap();
    assert_eq!(json[0]["channel"], 1);
    assert_eq!(json[0]["pins"]["red"], 17);
    assert_eq!(json[0]["status"], "out_of_service");
    assert_eq!(json[0]["red"], true);
    assert_eq!(json[0]["blinking"], true);
    assert!(json[0]["fault"].is_null());
    assert!(format!("{lights:?}").contains("sim"));
    lights.shutdown();
    assert!(lights.wait_stopped(SETTLE));
}

// --- walk test ------------------------------------------------------------------------

#[test]
fn walk_test_walks_red_amber_green_then_off() {
    let channels = two_channels();
    let (mut backend, probe) = sim_for(&channels, false);
    let mut out = Vec::new();
    walk_test(&mut *backend, &channels, false, Duration::ZERO, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let expected_order = [
        "channel 1: red (BCM 17)",
        "channel 1: amber (BCM 27)",
        "channel 1: green (BCM 22)",
        "channel 1: off",
        "channel 2: red (BCM 5)",
        "channel 2: amber (BCM 6)",
        "channel 2: green (BCM 13)",
        "channel 2: off",
        "done: every light is off",
    ];
    let mut from = 0;
    for line in expected_order {
        let at = text[from..]
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} missing or out of order in:\n{text}"));
        from += at + line.len();
    }
    // Each pin was lit exactly once, never two at a time, and all end off.
    let mut on = BTreeSet::new();
    let mut lit_count = BTreeMap::new();
    for (pin, level) in probe.history() {
        if level {
            on.insert(pin);
            *lit_count.entry(pin).or_insert(0) += 1;
            assert_eq!(on.len(), 1, "two lights on at once: {on:?}");
        } else {
            on.remove(&pin);
        }
    }
    assert_eq!(lit_count.len(), 6);
    assert!(lit_count.values().all(|&n| n == 1));
    assert!(probe.levels().values().all(|&level| !level));
}

#[test]
fn walk_test_active_low_and_failures() {
    let channels = BTreeMap::from([(1, P1)]);
    let (mut backend, probe) = sim_for(&channels, true);
    probe.set_failing(P1.amber, true);
    let mut out = Vec::new();
    let result = walk_test(&mut *backend, &channels, true, Duration::ZERO, &mut out);
    let text = String::from_utf8(out).unwrap();
    let err = result.unwrap_err().to_string();
    assert!(err.contains("pin 27"), "{err}");
    assert!(text.contains("channel 1: amber (BCM 27) FAILED"), "{text}");
    assert!(text.contains("channel 1: green (BCM 22)"), "{text}");
    // Active low: off = HIGH.
    assert_eq!(probe.level(P1.red), Some(true));
    assert_eq!(probe.level(P1.green), Some(true));
}

#[test]
fn walk_test_without_channels() {
    let mut out = Vec::new();
    walk_test(
        &mut OffBackend,
        &BTreeMap::new(),
        false,
        Duration::ZERO,
        &mut out,
    )
    .unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("no light channels"));
}

#[test]
fn a_gpio_backend_that_cannot_open_stops_the_start_only_when_lights_are_wired() {
    // Only meaningful where there is no GPIO hardware (CI, qemu, a laptop).
    if std::env::var_os(gpiochip::ENV_CHIP).is_some() || gpiochip::find_pi_chip().is_ok() {
        return;
    }
    for kind in [BackendKind::Gpiochip, BackendKind::Gpio] {
        if kind == BackendKind::Gpio && std::path::Path::new("/dev/gpiomem").exists() {
            continue;
        }
        let (backend, why) = open_backend_with_level(kind, &[], false)
            .unwrap_or_else(|e| panic!("{kind:?} with nothing wired must start: {e}"));
        assert_eq!(backend.name(), "off", "{kind:?}");
        assert!(why.contains("no channels are wired"), "{why}");
        let wired = open_backend_with_level(kind, &[17, 27, 22], false);
        assert!(
            wired.is_err(),
            "{kind:?} with lights wired but no GPIO must refuse to start"
        );
    }
}
