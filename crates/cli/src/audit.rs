//! `learnpulse audit ...`: check the audit chain, and export it for an auditor.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use ed25519_dalek::VerifyingKey;
use learnpulse_compliance::audit::{self, Checkpoint, Entry};
use learnpulse_server::storage::{AuditStore, Storage};
use serde::{Deserialize, Serialize};

use crate::DataDirArg;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the chain: every entry's hash and link, the sequence for gaps, and every signed
    /// checkpoint. Names the first broken entry and exits with status 1 if anything does not hold.
    ///
    /// Each tenant has a chain of its own, interleaved in one sequence. Without `--tenant` every
    /// chain and the sequence are checked; with it (or for a one-tenant export) that tenant's
    /// chain alone, which needs none of the other tenants' entries.
    Verify {
        #[command(flatten)]
        dir: DataDirArg,
        /// Check one tenant's chain alone.
        #[arg(long, conflicts_with = "file")]
        tenant: Option<i64>,
        /// Check an export (`audit export`) instead of a data directory.
        #[arg(long, conflicts_with = "data_dir")]
        file: Option<PathBuf>,
        /// The audit public key (hex) to trust for an export, instead of the one it carries.
        #[arg(long, requires = "file")]
        public_key: Option<String>,
        /// Also check the chain against a witness file (`audit.witness`): every checkpoint the
        /// server published there must still match the chain. Catches a rewrite, truncation or
        /// wipe done together with the database's own checkpoints.
        #[arg(long)]
        witness: Option<PathBuf>,
    },
    /// Write the chain, its checkpoints and the public key that verifies them, as one JSON file.
    Export {
        #[command(flatten)]
        dir: DataDirArg,
        /// Only one tenant's chain: its entries and its checkpoints, nothing of other tenants;
        /// `audit verify --file` checks it alone.
        #[arg(long)]
        tenant: Option<i64>,
        #[arg(long)]
        output: PathBuf,
    },
}

/// What `audit export` writes.
#[derive(Serialize, Deserialize)]
pub struct Export {
    pub format: String,
    pub public_key: String,
    pub tenant: Option<i64>,
    pub entries: Vec<Entry>,
    pub checkpoints: Vec<Checkpoint>,
}

/// The chain's entries and checkpoints and the public key, from a data directory.
async fn load(dir: &DataDirArg, tenant: Option<i64>) -> anyhow::Result<Export> {
    let storage: Storage = crate::open_accounts(dir).await?;
    let has_master = std::env::var_os("LEARNPULSE_MASTER_KEY").is_some()
        || dir.data_dir.join("master.key").exists();
    anyhow::ensure!(
        has_master,
        "no master key: set LEARNPULSE_MASTER_KEY or put master.key in {}",
        dir.data_dir.display()
    );
    let master = learnpulse_server::privacy::seal::Sealer::master(&dir.data_dir)?;
    let key = learnpulse_server::audit::signing_key(&storage, &master).await?;
    let entries = learnpulse_server::storage::audit::entries_after(&storage, 0, tenant).await?;
    let mut checkpoints = storage.audit_checkpoints().await?;
    if let Some(tenant) = tenant {
        checkpoints.retain(|c| c.tenant == Some(tenant));
    }
    Ok(Export {
        format: "learnpulse-audit-export-v2".into(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        tenant,
        entries,
        checkpoints,
    })
}

/// The checkpoints of a witness file (one JSON line each), of one tenant when given.
fn read_witness(path: &std::path::Path, tenant: Option<i64>) -> anyhow::Result<Vec<Checkpoint>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let c: Checkpoint = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a checkpoint", path.display(), n + 1))?;
        if tenant.is_none_or(|t| c.tenant == Some(t)) {
            out.push(c);
        }
    }
    Ok(out)
}

fn verifying_key(hex_key: &str) -> anyhow::Result<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("the public key must be 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).context("not an Ed25519 public key")
}

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify {
            dir,
            tenant,
            file,
            public_key,
            witness,
        } => {
            let export = match &file {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    serde_json::from_str::<Export>(&text).context("not an audit export")?
                }
                None => load(&dir, tenant).await?,
            };
            let key = verifying_key(public_key.as_deref().unwrap_or(&export.public_key))?;
            let witnessed = match &witness {
                Some(path) => read_witness(path, export.tenant)?,
                None => Vec::new(),
            };
            let result = match export.tenant {
                Some(tenant) => {
                    audit::verify_tenant(tenant, &export.entries, &export.checkpoints, &key)
                }
                None => audit::verify(&export.entries, &export.checkpoints, &key),
            }
            .and_then(|verified| {
                audit::check_witnessed(&export.entries, &witnessed, &key).map(|_| verified)
            });
            match result {
                Ok(verified) => {
                    println!("{}", serde_json::to_string_pretty(&verified)?);
                    Ok(())
                }
                Err(broken) => {
                    println!("{}", serde_json::to_string_pretty(&broken)?);
                    eprintln!(
                        "audit chain broken at entry {}: {}",
                        broken.seq, broken.reason
                    );
                    std::process::exit(1);
                }
            }
        }
        AuditCommand::Export {
            dir,
            tenant,
            output,
        } => {
            let export = load(&dir, tenant).await?;
            let file = std::fs::File::create(&output)
                .with_context(|| format!("creating {}", output.display()))?;
            serde_json::to_writer(std::io::BufWriter::new(file), &export)?;
            eprintln!(
                "wrote {} entries and {} checkpoints to {}",
                export.entries.len(),
                export.checkpoints.len(),
                output.display()
            );
            Ok(())
        }
    }
}
