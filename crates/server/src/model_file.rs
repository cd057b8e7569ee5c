//! Model files: fitted per-skill knowledge-tracing parameters, written by `learnpulse kt fit`
//! and loaded by `learnpulse serve --model` and `learnpulse replay --model`.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use learnpulse_core::SkillModel;

pub const FORMAT: &str = "learnpulse-skill-model";
pub const VERSION: u32 = 1;

/// The file's content (JSON).
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Version of the file format; [`VERSION`].
    pub version: u32,
    /// Which fitter made it (`bkt`, `bktforget`).
    pub kind: String,
    /// Rows of the log it was fitted on.
    pub rows: usize,
    pub skill_model: SkillModel,
}

pub fn load(path: &Path) -> anyhow::Result<SkillModel> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: ModelFile =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(
        file.format == FORMAT,
        "{} is not a learnpulse model file",
        path.display()
    );
    anyhow::ensure!(
        file.version == VERSION,
        "{}: model file version {} is not supported",
        path.display(),
        file.version
    );
    Ok(file.skill_model)
}

/// Where a data directory keeps its models: `models/model-<unix seconds>.json` for every fit,
/// and `models/current.json`, the one `learnpulse serve` loads when no `--model` is given.
pub fn models_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("models")
}

pub fn current(data_dir: &Path) -> std::path::PathBuf {
    models_dir(data_dir).join("current.json")
}

/// Writes `file` as a new version in `data_dir` and makes it current (an atomic rename, so a
/// server starting meanwhile reads the old model or the new one, never half of one).
pub fn save_version(data_dir: &Path, file: &ModelFile) -> anyhow::Result<std::path::PathBuf> {
    let dir = models_dir(data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let versioned = dir.join(format!("model-{stamp}.json"));
    let text = serde_json::to_string_pretty(file)?;
    std::fs::write(&versioned, &text)
        .with_context(|| format!("writing {}", versioned.display()))?;
    let staging = dir.join("current.json.tmp");
    std::fs::write(&staging, &text)?;
    std::fs::rename(&staging, current(data_dir))?;
    Ok(versioned)
}
