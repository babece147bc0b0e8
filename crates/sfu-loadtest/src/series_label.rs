//! Reading a Prometheus series' labels, for the probes of /metrics (probe.rs, relay_metrics.rs).

/// The value of label `key` in a series' label text (`a="1",b="2"`).
pub(crate) fn label(labels: &str, key: &str) -> Option<String> {
    for part in labels.split(',') {
        let (k, v) = part.split_once('=')?;
        if k.trim() == key {
            return Some(v.trim().trim_matches('"').to_owned());
        }
    }
    None
}
