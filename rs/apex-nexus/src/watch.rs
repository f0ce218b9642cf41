//! The Pit Crew's watcher: a thread off the engine's loop that notices a slot's bundle folder change (file
//! notifications through the `notify` crate, or polling), waits until the folder is stable, verifies a bundle whose
//! manifest it has not seen, and sends the outcome to the engine's loop over a channel.
//!
//! `apexctl export` publishes a bundle by renaming a finished staging folder over the old one (an atomic exchange on
//! Linux), so the slot's folder is replaced as a whole: the watcher watches the folder's parent (recursively, so a
//! file changed in place is seen too) and recognises a change by the folder's fingerprint (the inode, names, sizes
//! and modification times of its entries), never by one event. Reading a folder is no change: notify reports
//! opens and reads too (inotify's `IN_OPEN`), and the watcher's own scan opens the folders it watches, so access
//! events are dropped (taken as changes they kept the thread rescanning without pause, a core's worth of CPU).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::pitcrew::WatchMode;

/// One slot folder to watch.
#[derive(Debug, Clone)]
pub struct Target {
    /// The slot's index in the engine.
    pub slot: usize,
    pub folder: PathBuf,
    /// Manifest SHA-256s already seen for the slot (the champion's): they are not verified again.
    pub known: HashSet<String>,
}

/// A new bundle in a slot's folder, verified or not.
#[derive(Debug)]
pub struct Found<T> {
    pub slot: usize,
    pub folder: PathBuf,
    /// SHA-256 of its manifest (empty when it has none).
    pub model_id: String,
    /// The verified bundle, or why it was refused (one line).
    pub outcome: Result<T, String>,
}

/// The running watcher; stopping it (drop) ends its thread.
pub struct Watcher {
    wake: std_mpsc::Sender<Wake>,
    thread: Option<JoinHandle<()>>,
    /// The mode it runs in, and why it fell back to polling, if it did.
    pub mode: WatchMode,
    pub fallback_reason: Option<String>,
    /// Passes over the folders so far: a quiet folder costs one pass per rescan interval, no more.
    pub scans: Arc<AtomicU64>,
    _native: Option<notify::RecommendedWatcher>,
}

enum Wake {
    Changed,
    Stop,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.wake.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How many polling intervals the notify watcher waits before it rescans anyway (a missed notification costs at
/// most this long).
const RESCAN_POLLS: u32 = 30;

/// One entry of a folder: name, size, modification time (s, ns) and inode.
type Entry = (String, u64, i64, i64, u64);

/// What a folder looks like without reading it: its inode and its entries (`None`: no readable folder).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint(Option<(u64, Vec<Entry>)>);

fn fingerprint(folder: &Path) -> Fingerprint {
    let Ok(meta) = std::fs::metadata(folder) else { return Fingerprint(None) };
    let Ok(entries) = std::fs::read_dir(folder) else { return Fingerprint(None) };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        if let Ok(m) = entry.metadata() {
            files.push((entry.file_name().to_string_lossy().into_owned(), m.len(), m.mtime(), m.mtime_nsec(), m.ino()));
        }
    }
    files.sort();
    Fingerprint(Some((meta.ino(), files)))
}

/// Starts watching `targets`: `verify(slot, folder)` runs on the watcher's thread for each new stable bundle and
/// its outcome goes to `tx`. `mode` Notify falls back to polling (every `poll`) when notifications cannot start.
#[must_use]
pub fn start<T, F>(
    targets: Vec<Target>,
    mode: WatchMode,
    poll: Duration,
    settle: Duration,
    verify: F,
    tx: mpsc::UnboundedSender<Found<T>>,
) -> Watcher
where
    T: Send + 'static,
    F: Fn(usize, &Path) -> Result<T, String> + Send + 'static,
{
    let (wake, events) = std_mpsc::channel();
    let (native, mode, fallback_reason) = match mode {
        WatchMode::Poll => (None, WatchMode::Poll, None),
        WatchMode::Notify => match native_watcher(&targets, wake.clone()) {
            Ok(w) => (Some(w), WatchMode::Notify, None),
            Err(e) => (None, WatchMode::Poll, Some(e)),
        },
    };
    let idle = if mode == WatchMode::Notify { poll * RESCAN_POLLS } else { poll };
    // Taken here, not on the thread: a bundle published right after `start` returns is then always a change (the
    // thread, started late on a busy machine, would have taken it for the folder as it was).
    let seen = targets.iter().map(|t| fingerprint(&t.folder)).collect();
    let scans = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&scans);
    let thread = std::thread::Builder::new()
        .name("pitcrew-watch".into())
        .spawn(move || run(targets, seen, &events, idle, settle, &verify, &tx, &counter))
        .expect("spawn the watcher thread");
    Watcher { wake, thread: Some(thread), mode, fallback_reason, scans, _native: native }
}

fn native_watcher(targets: &[Target], wake: std_mpsc::Sender<Wake>) -> Result<notify::RecommendedWatcher, String> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = wake.send(Wake::Changed);
        }
    })
    .map_err(|e| e.to_string())?;
    let parents: HashSet<PathBuf> =
        targets.iter().map(|t| t.folder.parent().map_or_else(|| t.folder.clone(), Path::to_path_buf)).collect();
    for parent in parents {
        watcher.watch(&parent, notify::RecursiveMode::Recursive).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    Ok(watcher)
}

#[allow(clippy::too_many_arguments)]
fn run<T, F>(
    mut targets: Vec<Target>,
    mut seen: Vec<Fingerprint>,
    events: &std_mpsc::Receiver<Wake>,
    idle: Duration,
    settle: Duration,
    verify: &F,
    tx: &mpsc::UnboundedSender<Found<T>>,
    scans: &AtomicU64,
) where
    F: Fn(usize, &Path) -> Result<T, String>,
{
    let mut changed: Vec<Option<Instant>> = vec![None; targets.len()];
    loop {
        let timeout = if changed.iter().any(Option::is_some) { settle } else { idle };
        match events.recv_timeout(timeout) {
            Ok(Wake::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            Ok(Wake::Changed) | Err(std_mpsc::RecvTimeoutError::Timeout) => {}
        }
        // A burst of notifications is one change.
        while let Ok(wake) = events.try_recv() {
            if matches!(wake, Wake::Stop) {
                return;
            }
        }
        scans.fetch_add(1, Ordering::Relaxed);
        for (i, target) in targets.iter_mut().enumerate() {
            let now = fingerprint(&target.folder);
            if now != seen[i] {
                seen[i] = now;
                changed[i] = Some(Instant::now());
                continue;
            }
            let stable = changed[i].is_some_and(|at| at.elapsed() >= settle);
            if !stable || now.0.is_none() {
                continue;
            }
            changed[i] = None;
            if let Some(found) = examine(target, verify)
                && fingerprint(&target.folder) == seen[i]
            {
                // Only an outcome read from an unchanged folder counts; otherwise the next pass reads it again.
                if found.model_id.is_empty() || target.known.insert(found.model_id.clone()) {
                    let _ = tx.send(found);
                }
            }
        }
    }
}

/// Reads a stable folder: nothing when its manifest is one already seen, else the verification's outcome.
fn examine<T, F>(target: &Target, verify: &F) -> Option<Found<T>>
where
    F: Fn(usize, &Path) -> Result<T, String>,
{
    let folder = target.folder.clone();
    let model_id = match std::fs::read(folder.join(apex_infer::MANIFEST)) {
        Ok(bytes) => apex_infer::sha256_hex(&bytes),
        Err(e) => {
            let outcome = Err(format!("{}: {e}", apex_infer::MANIFEST));
            return Some(Found { slot: target.slot, folder, model_id: String::new(), outcome });
        }
    };
    if target.known.contains(&model_id) {
        return None;
    }
    let outcome = verify(target.slot, &folder);
    Some(Found { slot: target.slot, folder, model_id, outcome })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> crate::Scratch {
        crate::scratch(&format!("watch-{tag}"))
    }

    /// Publishes `manifest` as `folder` the way `apexctl export` does: a staging folder renamed over it.
    fn publish(folder: &Path, manifest: &str) {
        let staging = folder.with_extension("staging");
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join(apex_infer::MANIFEST), manifest).unwrap();
        let _ = std::fs::remove_dir_all(folder);
        std::fs::rename(&staging, folder).unwrap();
    }

    fn watch(mode: WatchMode, tag: &str) {
        let root = temp(tag);
        let folder = root.join("bundles").join("a");
        publish(&folder, "champion");
        let known = HashSet::from([apex_infer::sha256_hex(b"champion")]);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let verify = |_: usize, dir: &Path| {
            let text = std::fs::read_to_string(dir.join(apex_infer::MANIFEST)).unwrap();
            if text.starts_with("bad") { Err(format!("refused {text}")) } else { Ok(text) }
        };
        let targets = vec![Target { slot: 4, folder: folder.clone(), known }];
        let poll = Duration::from_millis(50);
        let watcher = start(targets, mode, poll, Duration::from_millis(100), verify, tx);
        let next = |rx: &mut mpsc::UnboundedReceiver<Found<String>>| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(found) = rx.try_recv() {
                    return Some(found);
                }
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        publish(&folder, "bad one");
        let found = next(&mut rx).expect("the bad bundle is reported");
        assert_eq!((found.slot, found.outcome.clone()), (4, Err("refused bad one".into())));
        assert_eq!(found.model_id, apex_infer::sha256_hex(b"bad one"));
        // Republishing the champion or the same bad manifest is not checked again; a new one is.
        publish(&folder, "champion");
        publish(&folder, "bad one");
        std::thread::sleep(Duration::from_millis(400));
        publish(&folder, "good");
        let found = next(&mut rx).expect("the good bundle is reported");
        assert_eq!(found.outcome, Ok("good".to_owned()));
        std::thread::sleep(Duration::from_millis(300));
        assert!(rx.try_recv().is_err(), "each manifest once");
        assert_eq!(watcher.mode, mode);
        drop(watcher);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn the_notify_watcher_reports_each_new_bundle_once() {
        watch(WatchMode::Notify, "notify");
    }

    /// The engine reads its bundles and the watcher reads their folders: neither is a change, so a quiet folder is
    /// scanned once per rescan interval (before access events were dropped, every scan's own open woke the next).
    #[test]
    fn reading_a_watched_bundle_does_not_wake_the_watcher() {
        let root = temp("quiet");
        let folder = root.join("bundles").join("a");
        publish(&folder, "champion");
        let known = HashSet::from([apex_infer::sha256_hex(b"champion")]);
        let (tx, _rx) = mpsc::unbounded_channel::<Found<()>>();
        let targets = vec![Target { slot: 0, folder: folder.clone(), known }];
        let poll = Duration::from_millis(100);
        let watcher = start(targets, WatchMode::Notify, poll, Duration::from_millis(50), |_, _| Ok(()), tx);
        assert_eq!(watcher.mode, WatchMode::Notify, "{:?}", watcher.fallback_reason);
        let until = Instant::now() + Duration::from_millis(600);
        while Instant::now() < until {
            std::fs::read(folder.join(apex_infer::MANIFEST)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        // The rescan interval is 30 polls (3 s): nothing at all is due in 0.6 s; allow one stray pass.
        let scans = watcher.scans.load(Ordering::Relaxed);
        assert!(scans <= 1, "{scans} scans of a folder that only was read");
        drop(watcher);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn the_polling_watcher_reports_each_new_bundle_once() {
        watch(WatchMode::Poll, "poll");
    }
}
