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
