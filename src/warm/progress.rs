//! Progress of a warm run: one indicatif bar on a terminal (stderr, so stdout keeps the report
//! or the JSON document) for the bytes of every image, a line per finished image otherwise,
//! nothing with `-q`.

use super::report::ImageReport;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    images: usize,
    done: AtomicUsize,
}

impl Progress {
    /// `wanted`: progress on stderr at all (not `-q`, not `--json`): bars on a terminal, else a
    /// line per image.
    pub fn new(images: usize, wanted: bool) -> Progress {
        let tty = console::Term::stderr().is_term();
        let bar = (wanted && tty).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "warm [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_message(format!("0/{images} images"));
            b
        });
        Progress {
            bar,
            lines: wanted && !tty,
            images,
            done: AtomicUsize::new(0),
        }
    }

    /// More blob bytes are known to be needed.
    pub fn add_bytes(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc_length(n);
        }
    }

    pub fn advance(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// A failed download's bytes no longer count.
    pub fn advance_back(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_position(b.position().saturating_sub(n));
        }
    }

    pub fn image_done(&self, rep: &ImageReport) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let line = format!("warm [{done}/{}] {}", self.images, rep.summary());
        match &self.bar {
            Some(b) => {
                b.println(line);
                b.set_message(format!("{done}/{} images", self.images));
            }
            None if self.lines => eprintln!("{line}"),
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
