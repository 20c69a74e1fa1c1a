//! Span-close lines captured in memory, for tests that check what a
//! request's span names (region, slot, campaign). A field a span does not
//! declare is dropped by `record()` without a word, so only such a test
//! notices. The subscriber is process-wide: nextest runs each test in its
//! own process, and a test binary must install it once.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
pub struct SpanLog(Arc<Mutex<Vec<u8>>>);

impl Write for SpanLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SpanLog {
    /// Installs the process-wide subscriber writing span closes here.
    pub fn install() -> SpanLog {
        let logs = SpanLog::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("no other subscriber in this process");
        logs
    }

    /// The span-close lines of requests to `route`.
    pub fn closed(&self, route: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        let needle = format!("route={route}");
        text.lines()
            .filter(|l| l.contains(&needle) && l.contains(" close "))
            .map(str::to_owned)
            .collect()
    }

    /// The close lines of `route`, waiting a second at most for the first
    /// (a span closes just after its answer is written).
    pub async fn closed_soon(&self, route: &str) -> Vec<String> {
        for _ in 0..50 {
            let lines = self.closed(route);
            if !lines.is_empty() {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Vec::new()
    }
}

/// `key=value`, or `key="value"` (how the formatter writes a recorded str).
pub fn has_field(line: &str, key: &str, value: &str) -> bool {
    line.contains(&format!("{key}={value} "))
        || line.contains(&format!("{key}={value}}}"))
        || line.contains(&format!("{key}={value:?}"))
}
