//! Logging through the `log` facade: to the systemd journal (with structured
//! fields) when running under systemd, else to stderr.

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Auto,
    Journal,
    Stderr,
}

impl std::str::FromStr for LogTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(LogTarget::Auto),
            "journal" => Ok(LogTarget::Journal),
            "stderr" => Ok(LogTarget::Stderr),
            _ => Err("one of auto, journal, stderr".into()),
        }
    }
}

/// A plain stderr logger: `LEVEL message key=value…`.
struct StderrLogger {
    level: LevelFilter,
}

struct KvLine<'a>(&'a mut String);

impl<'kvs> log::kv::VisitSource<'kvs> for KvLine<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.push_str(&format!(" {key}={value}"));
        Ok(())
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }
    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut kv = String::new();
        let _ = record.key_values().visit(&mut KvLine(&mut kv));
        let _ = writeln!(
            std::io::stderr().lock(),
            "{:<5} {}{kv}",
            record.level(),
            record.args()
        );
    }
    fn flush(&self) {}
}

/// Installs the logger once; later calls (tests) are ignored.
pub fn init(level: LevelFilter, target: LogTarget) {
    let journal = match target {
        LogTarget::Journal => true,
        LogTarget::Stderr => false,
        LogTarget::Auto => systemd_journal_logger::connected_to_journal(),
    };
    let installed = if journal {
        systemd_journal_logger::JournalLog::new()
            .map(|j| j.with_syslog_identifier("spa-hub".to_string()))
            .map_err(|e| e.to_string())
            .and_then(|j| j.install().map_err(|e| e.to_string()))
    } else {
        log::set_boxed_logger(Box::new(StderrLogger { level })).map_err(|e| e.to_string())
    };
    if installed.is_ok() {
        log::set_max_level(level);
    }
}
