//! The signals that stop a running configuration.

/// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere than Unix): the host then stops every sink
/// with [`STOP_DEADLINE`](super::upload::STOP_DEADLINE).
pub async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
