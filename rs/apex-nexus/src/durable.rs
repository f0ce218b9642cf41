//! Makes the ledger's commits durable: a sync thread fdatasyncs the write-ahead log for every commit the loop asks
//! about (group commit), a checkpoint thread folds the log into the database file, and the loop syncs itself when
//! orders wait on the sync.
//!
//! The loop's connection commits with `synchronous=NORMAL`: a commit is a `write` into the WAL, so it survives a
//! killed process at once. Power-loss durability, what `synchronous=FULL` buys, comes from an `fdatasync` of the same
//! WAL file: every order waits for the sync that covers its intent (and every fill and ack before it) before it is
//! sent. Fills, acks and bars without orders are synced by the thread, so the loop does not wait for them. A commit
//! that stages orders is synced on the loop ([`Durability::sync_here`]): handing it to the thread and back cost two
//! thread wake-ups, each waiting for a free core on a machine shared with the venue (about 1 ms of a 1.85 ms
//! tick-to-order p50 on 2 cores, against about 0.2 ms for the `fdatasync` itself). Checkpoints run on their own
//! connection (the loop's has `wal_autocheckpoint=0`), so a checkpoint's syncs never stall a decision.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::NexusError;

/// How far the WAL is on disk: every commit the loop made before asking for `generation` is durable. `failed` is
/// set for good when a sync fails (an I/O error): nothing may be sent after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Synced {
    pub generation: u64,
    pub failed: bool,
}

#[derive(Debug, Default)]
struct Requests {
    wanted: u64,
    stop: bool,
}

type Shared = Arc<(Mutex<Requests>, Condvar)>;

/// The sync and checkpoint threads of one ledger file.
pub struct Durability {
    shared: Shared,
    wal: PathBuf,
    publish: Arc<watch::Sender<Synced>>,
    synced: watch::Receiver<Synced>,
    /// The loop's own handle on the WAL, for [`Durability::sync_here`].
    here: Mutex<Option<File>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durability").field("synced", &*self.synced.borrow()).finish_non_exhaustive()
    }
}

/// What a failed sync means for the engine.
pub const SYNC_FAILED: &str =
    "its write-ahead log could not be synced to disk (see the log); nothing is sent after this";

/// Every `CHECKPOINT_EVERY` the checkpoint thread copies the WAL's committed pages into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

impl Durability {
    /// Starts the threads for the ledger at `database` (its WAL is `database` + `-wal`).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] when the checkpoint connection cannot be opened or a thread cannot start.
    pub fn start(database: &Path) -> Result<Durability, NexusError> {
        let fail = |message: String| NexusError::Ledger { path: database.to_owned(), message };
        let shared: Shared = Arc::new((Mutex::new(Requests::default()), Condvar::new()));
        let (tx, synced) = watch::channel(Synced::default());
        let publish = Arc::new(tx);
        let wal = PathBuf::from(format!("{}-wal", database.display()));
        let sync_thread = {
            let (shared, wal, publish) = (shared.clone(), wal.clone(), publish.clone());
            std::thread::Builder::new()
                .name("ledger-sync".into())
                .spawn(move || sync_loop(&wal, &shared, &publish))
                .map_err(|e| fail(format!("sync thread: {e}")))?
        };
        let checkpoints = rusqlite::Connection::open(database).map_err(|e| fail(e.to_string()))?;
        checkpoints.busy_timeout(Duration::from_millis(200)).map_err(|e| fail(e.to_string()))?;
        let checkpoint_thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("ledger-checkpoint".into())
                .spawn(move || checkpoint_loop(&checkpoints, &shared))
                .map_err(|e| fail(format!("checkpoint thread: {e}")))?
        };
        Ok(Durability {
            shared,
            wal,
            publish,
            synced,
            here: Mutex::new(None),
            threads: vec![sync_thread, checkpoint_thread],
        })
    }

    /// Asks for every commit made so far to be synced; returns the generation that will say so.
    #[must_use]
    pub fn request(&self) -> u64 {
        let (lock, wake) = &*self.shared;
        let mut requests = lock.lock().expect("ledger sync lock");
        requests.wanted += 1;
        wake.notify_all();
        requests.wanted
    }

    /// Syncs every commit made so far on the calling thread and returns the generation that says so (already
    /// published when this returns). For the loop when orders wait on the sync: no thread hand-off.
    ///
    /// # Errors
    /// A message when the sync failed; the failure is published as the thread's would be, and is final.
    pub fn sync_here(&self) -> Result<u64, &'static str> {
        if self.synced.borrow().failed {
            return Err(SYNC_FAILED);
        }
        // A generation of its own: a request made after this point asks the thread for a later one.
        let target = {
            let (lock, _) = &*self.shared;
            let mut requests = lock.lock().expect("ledger sync lock");
            requests.wanted += 1;
            requests.wanted
        };
        let synced = sync_wal(&self.wal, &mut self.here.lock().expect("ledger WAL handle"));
        if let Err(e) = synced {
            tracing::error!(wal = %self.wal.display(), error = %e, "ledger sync failed; no order is sent after this");
            self.publish.send_modify(|s| s.failed = true);
            return Err(SYNC_FAILED);
        }
        advance(&self.publish, target);
        Ok(target)
    }

    /// A receiver of the sync progress, for tasks that wait on it.
    #[must_use]
    pub fn progress(&self) -> watch::Receiver<Synced> {
        self.synced.clone()
    }

    /// Syncs every commit made so far and waits for it (start-up and stop, where waiting is right).
    ///
    /// # Errors
    /// A message when the sync failed.
    pub fn sync_now(&self) -> Result<(), &'static str> {
        let target = self.request();
        let mut synced = self.synced.clone();
        loop {
            let now = *synced.borrow_and_update();
            if now.failed {
                return Err(SYNC_FAILED);
            }
            if now.generation >= target {
                return Ok(());
            }
            // Blocking is fine here: called outside the loop's hot path, and the sync thread is not a tokio task.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Durability {
    fn drop(&mut self) {
        {
            let (lock, wake) = &*self.shared;
            let mut requests = lock.lock().expect("ledger sync lock");
            requests.stop = true;
            wake.notify_all();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Waits for requests; each round syncs whatever was committed up to the newest request (so many requests made
/// while one sync runs share the next one).
fn sync_loop(wal: &Path, shared: &Shared, progress: &watch::Sender<Synced>) {
    let (lock, wake) = &**shared;
    let mut file: Option<File> = None;
    let mut done = 0_u64;
    loop {
        let target = {
            let mut requests = lock.lock().expect("ledger sync lock");
            while requests.wanted == done && !requests.stop {
                requests = wake.wait(requests).expect("ledger sync lock");
            }
            if requests.wanted == done {
                return;
            }
            requests.wanted
        };
        match sync_wal(wal, &mut file) {
            Ok(()) => {
                done = target;
                advance(progress, done);
            }
            Err(e) => {
                tracing::error!(wal = %wal.display(), error = %e, "ledger sync failed; no order is sent after this");
                progress.send_modify(|s| s.failed = true);
                return;
            }
        }
    }
}

/// Publishes that commits up to `generation` are on disk. Two syncers finish in either order, so the published
/// generation only grows.
fn advance(progress: &watch::Sender<Synced>, generation: u64) {
    progress.send_if_modified(|s| {
        let later = generation > s.generation;
        if later {
            s.generation = generation;
        }
        later
    });
}

/// `fdatasync` of the WAL. The first time, also the folder's entry for it, so a new WAL's name survives power
/// loss. A missing WAL means no commit is outside the database file (it was checkpointed and removed at close).
fn sync_wal(wal: &Path, file: &mut Option<File>) -> std::io::Result<()> {
    if file.is_none() {
        match std::fs::OpenOptions::new().read(true).write(true).open(wal) {
            Ok(opened) => {
                if let Some(folder) = wal.parent() {
                    File::open(if folder.as_os_str().is_empty() { Path::new(".") } else { folder })?.sync_all()?;
                }
                *file = Some(opened);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    file.as_ref().expect("opened").sync_data()
}

/// Folds the WAL into the database file every [`CHECKPOINT_EVERY`] (passive: it never blocks the writer). A last
/// checkpoint runs at stop.
fn checkpoint_loop(connection: &rusqlite::Connection, shared: &Shared) {
    let (lock, wake) = &**shared;
    loop {
        let stop = {
            let requests = lock.lock().expect("ledger sync lock");
            let (requests, _) =
                wake.wait_timeout_while(requests, CHECKPOINT_EVERY, |r| !r.stop).expect("ledger sync lock");
            requests.stop
        };
        if let Err(e) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "ledger checkpoint failed; the WAL keeps growing until the next one");
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> crate::Scratch {
        crate::scratch(&format!("durable-{name}"))
    }

    /// A WAL database with one table in a fresh folder, its writer, and the durability threads of its file.
    fn wal_database(name: &str) -> (crate::Scratch, rusqlite::Connection, Durability) {
        let dir = folder(name);
        let database = dir.join("ledger.sqlite");
        let writer = rusqlite::Connection::open(&database).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        (dir, writer, Durability::start(&database).unwrap())
    }

    #[test]
    fn requests_made_while_a_sync_runs_are_answered_by_a_later_one() {
        let (_dir, writer, durability) = wal_database("generations");
        let mut last = 0;
        for x in 0..50 {
            writer.execute("INSERT INTO t VALUES (?1)", [x]).unwrap();
            let wanted = durability.request();
            assert!(wanted > last);
            last = wanted;
        }
        durability.sync_now().unwrap();
        let synced = *durability.progress().borrow();
        assert!(synced.generation > last && !synced.failed, "{synced:?}");
    }

    #[test]
    fn a_sync_here_is_published_when_it_returns_and_the_generation_never_goes_back() {
        let (_dir, writer, durability) = wal_database("here");
        let progress = durability.progress();
        let mut last = 0;
        for x in 0..20 {
            writer.execute("INSERT INTO t VALUES (?1)", [x]).unwrap();
            // The thread's syncs run meanwhile; whichever finishes last, what is published only grows.
            let asked = durability.request();
            let here = durability.sync_here().unwrap();
            assert!(here > asked, "a sync here has a generation of its own");
            let published = progress.borrow().generation;
            assert!(published >= here && published >= last, "published {published} after {here}, before {last}");
            last = published;
        }
        durability.sync_now().unwrap();
        assert!(progress.borrow().generation >= last);
    }

    /// Durability threads whose WAL cannot be synced: a folder where the WAL should be makes opening it for writing
    /// fail, as a dying disk would.
    fn failing(name: &str) -> (crate::Scratch, Durability) {
        let dir = folder(name);
        std::fs::create_dir_all(dir.join("ledger.sqlite-wal")).unwrap();
        let durability = Durability::start(&dir.join("ledger.sqlite")).unwrap();
        (dir, durability)
    }

    #[test]
    fn a_failed_sync_is_reported_and_final() {
        let (_dir, durability) = failing("failed");
        assert_eq!(durability.sync_now(), Err(SYNC_FAILED));
        assert!(durability.progress().borrow().failed);
        assert_eq!(durability.sync_now(), Err(SYNC_FAILED));
        assert_eq!(durability.sync_here(), Err(SYNC_FAILED));
    }

    #[test]
    fn a_failed_sync_here_is_published_for_the_order_tasks() {
        let (_dir, durability) = failing("here-failed");
        assert_eq!(durability.sync_here(), Err(SYNC_FAILED));
        assert!(durability.progress().borrow().failed);
    }
}
