//! Progress of the probe pulls: an indicatif bar per pull on a terminal (stderr, so stdout keeps
//! the report or the JSON document), one plain line per pull otherwise, nothing with `-q`.

use crate::oci::Digest;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use std::time::Instant;

/// What a pull reports while it runs.
pub trait Progress: Send + Sync {
    /// Blob bytes to fetch are known (config + layers of the chosen manifest).
    fn start(&self, blobs: usize, total: u64);
    /// A blob download begins.
    fn blob(&self, digest: &Digest);
    /// `n` more blob bytes arrived (digest-checked as they stream).
    fn advance(&self, n: u64);
    /// The pull ended.
    fn finish(&self, ok: bool);
}

/// Blob bytes seen so far and the expected total, shared by both renderings.
#[derive(Default)]
struct Counts {
    blobs: usize,
    total: u64,
    done: u64,
    started: Option<Instant>,
}

/// Bars on a terminal, else one line per pull on stderr.
pub struct Reporter {
    label: String,
    bar: Option<ProgressBar>,
    lines: bool,
    counts: Mutex<Counts>,
}

impl Reporter {
    /// For pull `n`. `bars`: stderr is a terminal and no `--json`; `lines`: print the
    /// plain summary line when not drawing bars (not with `-q`).
    pub fn new(n: u32, bars: bool, lines: bool) -> Reporter {
        let bar = bars.then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(format!("pull #{n}"));
            b
        });
        Reporter {
            label: format!("pull #{n}"),
            bar,
            lines: lines && !bars,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// For the automatic choice: bars when stderr is a terminal, unless `json` or `quiet`.
    pub fn auto(n: u32, json: bool, quiet: bool) -> Reporter {
        let tty = console::Term::stderr().is_term();
        Reporter::new(n, tty && !json && !quiet, !json && !quiet)
    }

    /// (blob bytes received, expected total).
    pub fn bytes(&self) -> (u64, u64) {
        let c = crate::error::lock(&self.counts);
        (c.done, c.total)
    }
}

impl Progress for Reporter {
    fn start(&self, blobs: usize, total: u64) {
        let mut c = crate::error::lock(&self.counts);
        c.blobs = blobs;
        c.total = total;
        c.started = Some(Instant::now());
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
    }

    fn blob(&self, digest: &Digest) {
        if let Some(b) = &self.bar {
            let s = digest.to_string();
            let short = s.split_once(':').map_or(s.as_str(), |x| x.1);
            b.set_message(short.chars().take(12).collect::<String>());
        }
    }

    fn advance(&self, n: u64) {
        crate::error::lock(&self.counts).done += n;
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    fn finish(&self, ok: bool) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if self.lines {
            let c = crate::error::lock(&self.counts);
            let secs = c.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
            eprintln!(
                "{}: {} of {} blob bytes in {} blob(s), {secs:.2} s{}",
                self.label,
                c.done,
                c.total,
                c.blobs,
                if ok { "" } else { ", failed" }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact_and_no_bar_off_a_terminal() {
        let r = Reporter::new(1, false, false);
        r.start(2, 1000);
        r.blob(&Digest::sha256_of(b"x"));
        r.advance(400);
        r.advance(600);
        r.finish(true);
        assert_eq!(r.bytes(), (1000, 1000));
        assert!(r.bar.is_none());
        // A hidden bar (not a terminal) still counts.
        let r = Reporter::new(2, true, true);
        r.start(1, 10);
        r.advance(10);
        assert_eq!(r.bytes(), (10, 10));
        assert_eq!(r.bar.as_ref().unwrap().position(), 10);
        assert!(!r.lines);
        r.finish(true);
    }
}
