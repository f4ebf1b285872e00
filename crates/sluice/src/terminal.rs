//! Progress bars and log lines on one terminal: while bars are shown, each log line is written
//! with the bars lifted (cleared, then drawn again below it), so neither garbles the other.

use std::{
    io::{IsTerminal, Write},
    sync::OnceLock,
};

static BARS: OnceLock<indicatif::MultiProgress> = OnceLock::new();

/// The process's progress bars, when stderr is a terminal.
pub fn bars() -> Option<&'static indicatif::MultiProgress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(BARS.get_or_init(indicatif::MultiProgress::new))
}

/// Writes log output to stderr around the progress bars.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write_all(buf)).map(|()| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
