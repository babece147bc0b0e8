#![recursion_limit = "256"]
//! `sfu-loadtest`: simulated publishers and subscribers with real ICE, DTLS and SRTP, speaking
//! the server's own signaling protocol. See docs/loadtest.md.

mod churn;
mod cli;
mod janus;
mod media;
mod node_report;
mod nodes;
mod plan;
mod plot;
mod probe;
mod relay_metrics;
mod report;
mod run;
mod series_label;
mod session;
mod signal;
mod spawner;
mod stats;
mod token;

use clap::Parser;
use std::path::{Path, PathBuf};

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("lt-signal")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sfu-loadtest: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let json_path = cli.json.clone();
    let plots_dir = cli.plots.clone();
    let (require_media, max_loss) = (cli.require_media, cli.max_loss);
    let outcome = match runtime.block_on(run::run(cli)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sfu-loadtest: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let (doc, markdown) = report::build(&outcome);
    println!("{markdown}");
    if let Some(path) = &json_path {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        match serde_json::to_string_pretty(&doc) {
            Ok(text) => {
                if let Err(e) = std::fs::write(path, text + "\n") {
                    eprintln!("sfu-loadtest: cannot write {}: {e}", path.display());
                } else {
                    eprintln!("report written to {}", path.display());
                }
            }
            Err(e) => eprintln!("sfu-loadtest: cannot encode the report: {e}"),
        }
    }
    if let Some((dir, stem)) = plot_target(json_path.as_deref(), plots_dir.as_deref()) {
        match plot::write_all(&outcome.timeline, &dir, &stem) {
            Ok(files) => {
                for f in files {
                    eprintln!("plot written to {}", f.display());
                }
            }
            Err(e) => eprintln!("sfu-loadtest: plots: {e:#}"),
        }
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    let mut failed = Vec::new();
    // With churn, every replacement is a subscriber session that must receive media too.
    let subscribers = doc["subscribers"].as_u64().unwrap_or(0) + doc["churn"]["joins"].as_u64().unwrap_or(0);
    let with_media = doc["subscribers_with_media"].as_u64().unwrap_or(0);
    if require_media && with_media < subscribers {
        failed.push(format!("only {with_media} of {subscribers} subscribers received media"));
    }
    let loss = doc["loss_pct"].as_f64().unwrap_or(100.0);
    if let Some(max) = max_loss
        && loss >= max * 100.0
    {
        failed.push(format!("loss {loss:.3}% is not below {:.3}%", max * 100.0));
    }
    if !failed.is_empty() {
        eprintln!("sfu-loadtest: FAILED: {}", failed.join("; "));
        return std::process::ExitCode::from(3);
    }
    std::process::ExitCode::SUCCESS
}

/// Plots go to --plots DIR, else next to the JSON file, named after its stem.
fn plot_target(json: Option<&Path>, plots: Option<&Path>) -> Option<(PathBuf, String)> {
    let stem =
        json.and_then(|j| j.file_stem()).map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "loadtest".into());
    if let Some(dir) = plots {
        return Some((dir.to_path_buf(), stem));
    }
    let json = json?;
    let dir = json.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    Some((dir, stem))
}
