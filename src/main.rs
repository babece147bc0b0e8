//! `sfu`: runs the server (`sfu` / `sfu serve`) or mints an access token (`sfu token`).

mod cli;

use std::io::IsTerminal;

use clap::Parser;
use cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let args = Cli::parse();
    let config = cli::load_config(&args.global)?;
    match args.command_or_serve() {
        Command::Token(token_args) => {
            println!("{}", cli::run_token(&config, &token_args)?);
            Ok(())
        }
        Command::Serve(_) => {
            // Logs go to stderr (stdout is for what a command prints, like `sfu token`), coloured
            // only on a terminal: escape codes in a log file or a collector are noise at best.
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log)),
                )
                .init();
            if config.dev {
                tracing::warn!(
                    "DEV MODE: well-known API keys and an open /dev/token endpoint; \
                     set auth.api_key/api_secret and dev = false for production"
                );
                if !config.bind.is_loopback() {
                    tracing::warn!(
                        "DEV MODE ON A NON-LOOPBACK ADDRESS ({}): anyone who can reach this server \
                         can mint tokens for any room through /dev/token; never do this on a \
                         network you do not control",
                        config.bind
                    );
                }
            }
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(sfu_signal::serve(config))
        }
    }
}
