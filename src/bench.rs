//! `spa-hub bench`: a load generator in the same binary.

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> Result<(), String> {
    Err("not built yet".into())
}
