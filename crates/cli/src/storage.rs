//! `learnpulse storage …` and `learnpulse migrate`: moving an installation between backends,
//! and bringing a database's schema up to date without starting the server.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use learnpulse_server::Config;
use learnpulse_server::privacy::seal::Sealer;
use learnpulse_server::storage::{self, Location, Storage};

use crate::DataDirArg;

#[derive(Subcommand)]
pub enum StorageCommand {
    /// Copy an installation to another backend (e.g. the embedded SQLite to PostgreSQL) and
    /// verify it: every table's row count, the log's head, and the audit chain read back from
    /// the target. Stop the server first; the target must be empty.
    ///
    /// Everything is copied as it is: events (with their sequence numbers and stored times),
    /// tenants and API keys, sealed keys and the vault, consents, the DP ledger, the audit chain
    /// and its checkpoints, incidents and subject requests, webhook receivers and their outbox.
    /// Derived data (query indexes, engine snapshots) is rebuilt by the target. Secrets stay
    /// sealed under the same master key, so serve the copy with the same data directory (or
    /// LEARNPULSE_MASTER_KEY): `learnpulse serve --data-dir DIR --storage URL`.
    Copy {
        /// The installation's data directory: its master key, and its SQLite files unless
        /// --from-storage says otherwise.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Copy from this backend instead of the SQLite files in --from (e.g. a PostgreSQL
        /// database back to a directory).
        #[arg(long, value_name = "URL", hide_env_values = true)]
        from_storage: Option<String>,
        /// Where to copy to: `postgres://user@host:port/database` (created if missing), or a
        /// directory for the embedded backend.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// Opens one backend for a copy, with group commits sized for bulk work.
async fn open(location: &Location, data_dir: &std::path::Path) -> anyhow::Result<Storage> {
    let mut config = Config {
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    config.storage.max_group_commit = 1_000;
    storage::open_at(location, &config)
        .await
        .with_context(|| format!("opening {}", location.describe()))
}

pub async fn run(command: StorageCommand) -> anyhow::Result<()> {
    match command {
        StorageCommand::Copy {
            from,
            from_storage,
            to,
        } => {
            let source_location = match &from_storage {
                Some(url) => Location::parse(url),
                None => Location::parse(&from.to_string_lossy()),
            };
            if let Some(missing) = source_location.missing_data() {
                anyhow::bail!(missing);
            }
            let target_location = Location::parse(&to);
            anyhow::ensure!(
                source_location != target_location,
                "the source and the target are the same"
            );
            let has_master = std::env::var_os("LEARNPULSE_MASTER_KEY").is_some()
                || from.join("master.key").exists();
            anyhow::ensure!(
                has_master,
                "no master key: set LEARNPULSE_MASTER_KEY or put master.key in {} \
                 (it opens the audit signing key, to verify the copied chain)",
                from.display()
            );
            let master = Sealer::master(&from)?;
            let source = open(&source_location, &from).await?;
            let target = open(&target_location, &from).await?;
            eprintln!(
                "copying {} to {}",
                source_location.describe(),
                target_location.describe()
            );
            let mut display = ProgressLine::new();
            let result = learnpulse_server::transfer::copy(
                &source,
                &target,
                &master,
                &mut |table, done, total| display.show(table, done, total),
            )
            .await;
            display.finish();
            source.shutdown().await;
            target.shutdown().await;
            let report = result?;
            let copied: u64 = report.tables.iter().map(|(_, n)| n).sum();
            println!(
                "copied {copied} rows in {} tables; verified: every table's row count, log head {}, \
                 {} audit entries and their checkpoints",
                report.tables.len(),
                report.log_head,
                report.audit_entries_verified
            );
            if report.filled_live_inputs > 0 {
                println!(
                    "{} statements from before this version got their followers' input on the way",
                    report.filled_live_inputs
                );
            }
            println!(
                "serve it with: learnpulse serve --data-dir {} --storage '{}'",
                from.display(),
                target_location.to_url()
            );
            Ok(())
        }
    }
}

/// `learnpulse migrate`: applies the schema migrations a database has not seen, and lists them.
pub async fn migrate(dir: DataDirArg) -> anyhow::Result<()> {
    let storage = crate::open_accounts(&dir).await?;
    let migrations = storage.migrations().await?;
    storage.shutdown().await;
    let mut config = Config {
        data_dir: dir.data_dir.clone(),
        ..Config::default()
    };
    config.storage.url = dir.storage.clone();
    let location = Location::of(&config).describe();
    if migrations.is_empty() {
        println!("{location}: schema up to date (applied at every open; SQLite keeps no versions)");
    } else {
        println!("{location}: schema up to date");
        for m in migrations {
            println!("  {:>3}  {}", m.version, m.name);
        }
    }
    Ok(())
}

/// One line of progress on standard error, rewritten in place on a terminal; otherwise a line
/// per table, and one every ten seconds during a long one (a log keeps the counts).
struct ProgressLine {
    terminal: bool,
    current: Option<&'static str>,
    last: (u64, u64),
    /// Off a terminal, a long table still reports every few seconds.
    reported: std::time::Instant,
}

impl ProgressLine {
    fn new() -> Self {
        ProgressLine {
            terminal: std::io::stderr().is_terminal(),
            current: None,
            last: (0, 0),
            reported: std::time::Instant::now(),
        }
    }

    fn show(&mut self, table: &'static str, done: u64, total: u64) {
        if self.current != Some(table) {
            self.end_table();
            self.current = Some(table);
        }
        self.last = (done, total);
        if self.terminal {
            let percent = if total == 0 {
                100.0
            } else {
                100.0 * done as f64 / total as f64
            };
            let width = 30;
            let filled = (percent / 100.0 * width as f64).round() as usize;
            eprint!(
                "\r  {table:<20} [{}{}] {done:>10}/{total} ({percent:5.1} %)",
                "#".repeat(filled.min(width)),
                " ".repeat(width - filled.min(width)),
            );
            let _ = std::io::stderr().flush();
        } else if self.reported.elapsed() >= std::time::Duration::from_secs(10) {
            self.reported = std::time::Instant::now();
            eprintln!("  {table:<20} {done:>10} of {total} rows");
        }
    }

    fn end_table(&mut self) {
        if let Some(table) = self.current.take() {
            let (done, _) = self.last;
            if self.terminal {
                eprintln!();
            } else {
                eprintln!("  {table:<20} {done:>10} rows");
            }
        }
    }

    fn finish(&mut self) {
        self.end_table();
    }
}
