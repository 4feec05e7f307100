//! The `spa-hub` command line: serve (the default), check, backup, restore,
//! lights test, bench.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use spa_hub::config::{Config, Source, EX_CONFIG};
use spa_hub::daemon::{self, DaemonError};
use spa_hub::{lights, logging};

#[derive(Parser)]
#[command(
    name = "spa-hub",
    version,
    about = "The spa floor's single source of truth and on-site realtime hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Args, Clone, Default)]
struct EnvFile {
    /// Env file with SPA_* keys (systemd EnvironmentFile format); the process
    /// environment wins over it. A missing file is an error.
    #[arg(long, value_name = "PATH")]
    env_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the hub (the default when no subcommand is given).
    Serve(EnvFile),
    /// Print the effective configuration, storage state, lights and limits;
    /// exit non-zero when something would stop the daemon.
    Check(EnvFile),
    /// Write a consistent copy of the database to FILE (daemon stopped).
    Backup {
        file: PathBuf,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Replace the database with FILE's contents (daemon stopped; the old
    /// database is moved aside, not deleted).
    Restore {
        file: PathBuf,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Print everything the hub holds about one customer as JSON (the
    /// right of access; daemon stopped, like backup).
    ExportCustomer {
        id: u64,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Room lights tools.
    Lights {
        #[command(subcommand)]
        action: LightsCmd,
    },
    /// Load generator: opens Socket.IO connections and measures the hub.
    Bench(spa_hub::bench::BenchArgs),
    /// Head office: consume every site's events from NATS JetStream and
    /// serve the sites' day reports (SPA_HQ_* and SPA_NATS_* keys).
    Hq(EnvFile),
    /// HTTPS tools.
    Tls {
        #[command(subcommand)]
        action: TlsCmd,
    },
}

#[derive(Subcommand)]
enum TlsCmd {
    /// Make a local CA (kept if it exists) and a certificate for this
    /// hub's host name, .local name and addresses, signed by it; prints the
    /// SPA_TLS_CERT / SPA_TLS_KEY lines and the CA to install on tablets.
    Init {
        /// Where the files go (default: SPA_DATA_DIR/tls).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Another host name for the certificate (repeatable), e.g. the
        /// name of SPA_PUBLIC_URL.
        #[arg(long = "name", value_name = "HOST")]
        names: Vec<String>,
        /// Another IP address for the certificate (repeatable).
        #[arg(long = "ip", value_name = "ADDRESS")]
        ips: Vec<std::net::IpAddr>,
        #[command(flatten)]
        env: EnvFile,
    },
}

#[derive(Subcommand)]
enum LightsCmd {
    /// Walk every configured channel through red, amber, green, for an
    /// installer standing in the corridor.
    Test {
        /// How long each colour stays lit, in milliseconds.
        #[arg(long, default_value_t = 1500)]
        step_ms: u64,
        #[command(flatten)]
        env: EnvFile,
    },
}

/// Loads the configuration or prints the one-line error; `Err` carries the exit status.
fn load_config(env_file: Option<&Path>) -> Result<Config, ExitCode> {
    let source = match Source::load(env_file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("spa-hub: {e}");
            return Err(ExitCode::from(EX_CONFIG as u8));
        }
    };
    let config = match Config::from_source(&source) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("spa-hub: {e}");
            return Err(ExitCode::from(EX_CONFIG as u8));
        }
    };
    for warning in config.warnings() {
        eprintln!("spa-hub: {warning}");
    }
    for key in source.unknown_keys() {
        eprintln!("spa-hub: warning: unknown key {key} ignored (a typo?); see `spa-hub check`");
    }
    Ok(config)
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("spa-hub: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn run(cli: Cli) -> Result<(), ExitCode> {
    match cli.command.unwrap_or(Cmd::Serve(EnvFile::default())) {
        Cmd::Serve(env) => {
            let config = load_config(env.env_file.as_deref())?;
            logging::init(config.log_level, config.log_target);
            let rt = runtime()?;
            rt.block_on(daemon::serve(config)).map_err(|e| {
                log::error!("{e}");
                eprintln!("spa-hub: {e}");
                match e {
                    DaemonError::Lights(_) | DaemonError::Tls(_) => ExitCode::from(EX_CONFIG as u8),
                    DaemonError::Storage(spa_hub::store::StoreError::TooNew { .. }) => {
                        ExitCode::from(EX_CONFIG as u8)
                    }
                    _ => ExitCode::FAILURE,
                }
            })
        }
        Cmd::Check(env) => {
            let config = load_config(env.env_file.as_deref())?;
            let mut out = std::io::stdout().lock();
            match daemon::check(&config, &mut out) {
                Ok(0) => Ok(()),
                Ok(_) => Err(ExitCode::FAILURE),
                Err(e) => {
                    eprintln!("spa-hub: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Cmd::Backup { file, env } => {
            let config = load_config(env.env_file.as_deref())?;
            match daemon::backup(&config, &file) {
                Ok(n) => {
                    println!("backup written to {} ({n} entries)", file.display());
                    Ok(())
                }
                Err(e) => {
                    eprintln!("spa-hub: backup failed: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Cmd::ExportCustomer { id, env } => {
            let config = load_config(env.env_file.as_deref())?;
            match daemon::export_customer(&config, id) {
                Ok(Some(json)) => {
                    println!("{json:#}");
                    Ok(())
                }
                Ok(None) => {
                    eprintln!("spa-hub: there is no customer {id}");
                    Err(ExitCode::FAILURE)
                }
                Err(e) => {
                    eprintln!("spa-hub: export failed: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Cmd::Restore { file, env } => {
            let config = load_config(env.env_file.as_deref())?;
            match daemon::restore(&config, &file) {
                Ok((n, moved)) => {
                    if let Some(old) = moved {
                        println!("previous database moved to {}", old.display());
                    }
                    println!("restored {n} entries from {}", file.display());
                    Ok(())
                }
                Err(e) => {
                    eprintln!("spa-hub: restore failed: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Cmd::Lights {
            action: LightsCmd::Test { step_ms, env },
        } => {
            let config = load_config(env.env_file.as_deref())?;
            if config.light_channels.is_empty() {
                eprintln!("spa-hub: SPA_LIGHT_CHANNELS defines no channel: nothing to test");
                return Err(ExitCode::from(EX_CONFIG as u8));
            }
            let pins = lights::pins_of(&config.light_channels);
            let (mut backend, why) =
                lights::open_backend_with_level(config.lights, &pins, config.lights_active_low)
                    .map_err(|e| {
                        eprintln!("spa-hub: {e}");
                        ExitCode::from(EX_CONFIG as u8)
                    })?;
            println!("{why}");
            let mut out = std::io::stdout().lock();
            lights::walk_test(
                backend.as_mut(),
                &config.light_channels,
                config.lights_active_low,
                Duration::from_millis(step_ms),
                &mut out,
            )
            .map_err(|e| {
                eprintln!("spa-hub: {e}");
                ExitCode::FAILURE
            })
        }
        Cmd::Tls {
            action:
                TlsCmd::Init {
                    dir,
                    names,
                    ips,
                    env,
                },
        } => {
            let dir = match dir {
                Some(d) => d,
                None => load_config(env.env_file.as_deref())?.data_dir.join("tls"),
            };
            tls_init(&dir, names, ips)
        }
        Cmd::Hq(env) => {
            let source = Source::load(env.env_file.as_deref()).map_err(|e| {
                eprintln!("spa-hub: {e}");
                ExitCode::from(EX_CONFIG as u8)
            })?;
            let config = spa_hub::config::HqConfig::from_source(&source).map_err(|e| {
                eprintln!("spa-hub: {e}");
                ExitCode::from(EX_CONFIG as u8)
            })?;
            logging::init(config.log_level, config.log_target);
            let rt = runtime()?;
            rt.block_on(spa_hub::replicate::hq_http::serve(config))
                .map_err(|e| {
                    log::error!("{e}");
                    eprintln!("spa-hub hq: {e}");
                    ExitCode::FAILURE
                })
        }
        Cmd::Bench(args) => {
            let rt = runtime()?;
            rt.block_on(spa_hub::bench::run(args)).map_err(|e| {
                eprintln!("spa-hub bench: {e}");
                ExitCode::FAILURE
            })
        }
    }
}

/// `spa-hub tls init`: writes the files and says what to do next.
fn tls_init(
    dir: &Path,
    extra_names: Vec<String>,
    extra_ips: Vec<std::net::IpAddr>,
) -> Result<(), ExitCode> {
    use spa_hub::tls;
    let (mut names, mut ips) = tls::default_names();
    for n in extra_names {
        let n = n.trim().to_ascii_lowercase();
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    for ip in extra_ips {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let made = tls::init(dir, &names, &ips).map_err(|e| {
        eprintln!("spa-hub tls init: {e}");
        ExitCode::FAILURE
    })?;
    println!(
        "{} CA: {} (install this one on the staff tablets)",
        if made.ca_reused { "kept the" } else { "made a" },
        made.ca.display()
    );
    if let Some(fp) = tls::fingerprint(&made.ca) {
        println!("  its SHA-256 fingerprint: {fp}");
    }
    println!("certificate for: {}", made.names.join(", "));
    println!("add to the env file (/etc/spa-hub/spa-hub.env) and restart:");
    println!("SPA_TLS_CERT={}", made.cert.display());
    println!("SPA_TLS_KEY={}", made.key.display());
    Ok(())
}

fn main() -> ExitCode {
    spa_hub::cpu::limit_malloc_arenas();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
