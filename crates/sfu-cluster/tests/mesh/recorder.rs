//! A metrics recorder for the tests: keeps every counter and gauge by name and sorted labels.
//! Installed once per test binary; tests tell their metrics apart by the `peer` label (each
//! mesh listens on its own port).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

#[derive(Default)]
struct Recorded {
    cells: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

struct Installed(&'static Recorded);

static RECORDED: OnceLock<&'static Recorded> = OnceLock::new();

fn name(key_name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{key_name}{{{}}}", labels.join(","))
}

impl Recorded {
    fn cell(&self, key: &Key) -> Arc<AtomicU64> {
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        let mut cells = self.cells.lock().unwrap();
        cells.entry(name(key.name(), &labels)).or_default().clone()
    }
}

impl Recorder for Installed {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.0.cell(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.0.cell(key))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Installs the recorder (once per binary).
pub fn install() {
    RECORDED.get_or_init(|| {
        let recorded: &'static Recorded = Box::leak(Box::default());
        metrics::set_global_recorder(Installed(recorded)).expect("no other recorder in this binary");
        recorded
    });
}

fn cell(key_name: &str, labels: &[(&str, &str)]) -> Option<Arc<AtomicU64>> {
    RECORDED.get().expect("install() first").cells.lock().unwrap().get(&name(key_name, labels)).cloned()
}

/// A counter's value; 0 if never touched.
pub fn counter(key_name: &str, labels: &[(&str, &str)]) -> u64 {
    cell(key_name, labels).map_or(0, |c| c.load(Ordering::Relaxed))
}

/// A gauge's value; `None` if never set.
pub fn gauge(key_name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    cell(key_name, labels).map(|c| f64::from_bits(c.load(Ordering::Relaxed)))
}
