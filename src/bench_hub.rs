//! `spa-hub bench hub`: Socket.IO load against a running hub.

#[derive(Debug, Clone, clap::Args)]
pub struct HubArgs {}

pub async fn run(_a: HubArgs) -> Result<(), String> {
    Err("not built yet".into())
}
