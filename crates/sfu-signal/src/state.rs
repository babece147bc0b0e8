//! State shared by every HTTP and WebSocket handler.

use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

use crate::auth::TokenAuthority;
use crate::config::Config;
use crate::room::Hub;

pub struct AppState {
    pub config: Config,
    pub auth: TokenAuthority,
    pub hub: Arc<Hub>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}
