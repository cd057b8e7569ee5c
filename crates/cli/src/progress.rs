//! Progress bars for the long commands (`kt fit`, `kt cv`, `kt eval`, `replay`): indicatif bars
//! on standard error, drawn only when it is a terminal, so that piped output and logs stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `total` steps labelled `what`.
pub fn bar(what: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>32} [{bar:30}] {pos}/{len} ({percent} %, {elapsed} elapsed, {eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// A bar over a file's bytes, for a command that reads it as a stream.
pub fn bytes(what: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>32} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// A progress callback of the knowledge-tracing fitters (`done` of `total`), shown as a bar
/// made at the first call (when the total is known) and finished at the last.
pub fn reporter(what: &str) -> impl FnMut(usize, usize) + '_ {
    let mut shown: Option<ProgressBar> = None;
    move |done, total| {
        let bar = shown.get_or_insert_with(|| bar(what, total as u64));
        bar.set_position(done as u64);
        if done >= total {
            bar.finish();
        }
    }
}
