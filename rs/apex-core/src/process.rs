//! Launched binaries (the venue, the engine) that stop with the apexctl process that started them.

/// The environment variable in which apexctl names itself (its pid) to the binaries it launches.
pub const LAUNCHER_ENV: &str = "APEX_LAUNCHER_PID";

/// How often the parent is looked at: a stop within a second of apexctl's death is soon enough.
#[cfg(feature = "process")]
const EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Resolves once the apexctl process named in [`LAUNCHER_ENV`] is no longer this process's parent: it died, however
/// (SIGKILL too), and the kernel handed this one to another. At once when it died before this process looked;
/// never without the variable (a binary run by hand). The caller then stops as on SIGTERM, so no venue keeps
/// running, and no engine keeps trading, unseen.
#[cfg(feature = "process")]
pub async fn launcher_gone() {
    let Some(launcher) = std::env::var(LAUNCHER_ENV).ok().and_then(|pid| pid.trim().parse::<u32>().ok()) else {
        return std::future::pending().await;
    };
    let mut every = tokio::time::interval(EVERY);
    while std::os::unix::process::parent_id() == launcher {
        every.tick().await;
    }
}
