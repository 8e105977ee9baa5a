//! A [`Disk`] that injects faults, deterministically from a seed, over
//! real files in a test directory: failed fsyncs, short writes, a full
//! disk at byte K, failed directory fsyncs; and [`FaultyDisk::crash`], a
//! simulated power loss: creates, renames and removes since their
//! directory's last fsync are undone; of the bytes written since a file's
//! last fsync a random prefix survives, its end sometimes zeroed (a torn
//! write); bytes of a failed fsync are lost even if a later fsync succeeds
//! (Linux may drop such pages and report success next time). A cut
//! (`set_len`) is taken as durable at once. Single-threaded workloads give
//! the same faults and crashes for the same seed.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::disk::{Disk, DiskFile, RealDisk};

/// How often each fault strikes, in parts per thousand of the calls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultPlan {
    pub fsync_fails: u32,
    pub write_fails: u32,
    pub dir_sync_fails: u32,
    /// Bytes the disk takes in all before it is full (ENOSPC).
    pub space: Option<u64>,
}

/// What a crash undoes in a directory that was not fsynced.
#[derive(Debug)]
enum DirOp {
    Created(PathBuf),
    Renamed {
        from: PathBuf,
        to: PathBuf,
        /// What `to` held before, if anything: (bytes, durable length).
        replaced: Option<(Vec<u8>, u64)>,
    },
    Removed {
        path: PathBuf,
        bytes: Vec<u8>,
        durable: u64,
    },
}

#[derive(Debug)]
struct State {
    rng: u64,
    plan: FaultPlan,
    written: u64,
    /// Per file: the length a crash keeps.
    durable: HashMap<PathBuf, u64>,
    /// Per file whose fsync failed: the durable length then; nothing after
    /// it is durable any more.
    poisoned: HashMap<PathBuf, u64>,
    pending: HashMap<PathBuf, Vec<DirOp>>,
    faults: u64,
}

impl State {
    /// splitmix64: small, fast, and the same everywhere.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn strikes(&mut self, per_mille: u32) -> bool {
        let hit = per_mille > 0 && self.next() % 1000 < u64::from(per_mille);
        self.faults += u64::from(hit);
        hit
    }

    fn pending(&mut self, path: &Path) -> &mut Vec<DirOp> {
        let dir = path.parent().expect("a file lives in a directory");
        self.pending.entry(dir.to_path_buf()).or_default()
    }
}

/// See the module comment.
#[derive(Debug, Clone)]
pub struct FaultyDisk {
    state: Arc<Mutex<State>>,
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected fault: {what}"))
}

impl FaultyDisk {
    pub fn new(seed: u64, plan: FaultPlan) -> Self {
        let state = State {
            rng: seed,
            plan,
            written: 0,
            durable: HashMap::new(),
            poisoned: HashMap::new(),
            pending: HashMap::new(),
            faults: 0,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("faulty disk state")
    }

    /// Changes how often faults strike (e.g. none while recovering).
    pub fn set_plan(&self, plan: FaultPlan) {
        self.state().plan = plan;
    }

    /// How many faults were injected so far.
    pub fn faults(&self) -> u64 {
        self.state().faults
    }

    /// A power loss: undoes, newest first, every directory change not
    /// made durable, then cuts every file to its durable length. Files
    /// must be closed (dropped) first, as after a real crash.
    pub fn crash(&self) -> io::Result<()> {
        let mut state = self.state();
        let pending = std::mem::take(&mut state.pending);
        for op in pending.into_values().flat_map(|ops| ops.into_iter().rev()) {
            match op {
                DirOp::Created(path) => {
                    std::fs::remove_file(&path).or_else(missing_is_fine)?;
                    state.durable.remove(&path);
                }
                DirOp::Renamed { from, to, replaced } => {
                    std::fs::rename(&to, &from)?;
                    let durable = state.durable.remove(&to).unwrap_or(0);
                    state.durable.insert(from, durable);
                    if let Some((bytes, durable)) = replaced {
                        std::fs::write(&to, bytes)?;
                        state.durable.insert(to, durable);
                    }
                }
                DirOp::Removed {
                    path,
                    bytes,
                    durable,
                } => {
                    std::fs::write(&path, bytes)?;
                    state.durable.insert(path, durable);
                }
            }
        }
        let mut durable: Vec<(PathBuf, u64)> = state.durable.drain().collect();
        durable.sort();
        for (path, mut len) in durable {
            let file = match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let now = file.metadata()?.len();
            let poisoned = state.poisoned.remove(&path);
            if let Some(at) = poisoned {
                len = len.min(at);
            } else if now > len {
                // Some of what was written since the last fsync made it.
                let kept = len + state.next() % (now - len + 1);
                if kept > len && state.next() % 4 == 0 {
                    let torn = (kept - len).min(8);
                    use std::os::unix::fs::FileExt;
                    file.write_all_at(&vec![0; torn as usize], kept - torn)?;
                }
                len = kept;
            }
            if now > len {
                file.set_len(len)?;
            }
            state.durable.insert(path, len.min(now));
        }
        state.poisoned.clear();
        Ok(())
    }
}

fn missing_is_fine(e: io::Error) -> io::Result<()> {
    match e.kind() {
        io::ErrorKind::NotFound => Ok(()),
        _ => Err(e),
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn DiskFile>,
    path: PathBuf,
    disk: FaultyDisk,
}

impl Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.disk.state();
        let room = state
            .plan
            .space
            .map_or(u64::MAX, |s| s.saturating_sub(state.written));
        if room == 0 {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let mut n = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let fails = state.plan.write_fails;
        let short = n > 1 && state.strikes(fails);
        if short {
            n = 1 + (state.next() % (n as u64 - 1)) as usize;
        }
        let written = self.inner.write(&buf[..n])?;
        state.written += written as u64;
        if short {
            return Err(injected("short write"));
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl DiskFile for FaultyFile {
    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.disk.state();
        let fails = state.plan.fsync_fails;
        if state.strikes(fails) {
            let durable = state.durable.get(&self.path).copied().unwrap_or(0);
            state.poisoned.entry(self.path.clone()).or_insert(durable);
            return Err(injected("fsync failed"));
        }
        self.inner.sync()?;
        let len = self.inner.len()?;
        state.durable.insert(self.path.clone(), len);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.sync()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        // A cut is taken as durable at once: bytes it removed never come back.
        let mut state = self.disk.state();
        if let Some(durable) = state.durable.get_mut(&self.path) {
            *durable = (*durable).min(len);
        }
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl FaultyDisk {
    fn open(
        &self,
        path: &Path,
        open: impl FnOnce(&RealDisk) -> io::Result<Box<dyn DiskFile>>,
    ) -> io::Result<Box<dyn DiskFile>> {
        let existed = path.exists();
        let previous = if existed {
            Some(std::fs::read(path)?)
        } else {
            None
        };
        let inner = open(&RealDisk)?;
        let mut state = self.state();
        match previous {
            None => {
                state.pending(path).push(DirOp::Created(path.to_path_buf()));
                state.durable.insert(path.to_path_buf(), 0);
            }
            Some(bytes) => {
                // A file that existed before this run is durable as it is.
                let len = bytes.len() as u64;
                state.durable.entry(path.to_path_buf()).or_insert(len);
            }
        }
        drop(state);
        Ok(Box::new(FaultyFile {
            inner,
            path: path.to_path_buf(),
            disk: self.clone(),
        }))
    }
}

impl Disk for FaultyDisk {
    fn append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        self.open(path, |real| real.append(path))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let created = self.open(path, |real| real.create(path))?;
        // Truncated: what it held is gone once the truncation is synced;
        // taken as gone now (the files lotline creates are new).
        self.state().durable.insert(path.to_path_buf(), 0);
        Ok(created)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let replaced = match std::fs::read(to) {
            Ok(bytes) => {
                let durable = self.state().durable.get(to).copied();
                Some((bytes.clone(), durable.unwrap_or(bytes.len() as u64)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        std::fs::rename(from, to)?;
        let mut state = self.state();
        let durable = state.durable.remove(from).unwrap_or(0);
        state.durable.insert(to.to_path_buf(), durable);
        if let Some(at) = state.poisoned.remove(from) {
            state.poisoned.insert(to.to_path_buf(), at);
        }
        let op = DirOp::Renamed {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            replaced,
        };
        state.pending(to).push(op);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let bytes = std::fs::read(path)?;
        std::fs::remove_file(path)?;
        let mut state = self.state();
        state.poisoned.remove(path);
        let durable = state.durable.remove(path).unwrap_or(bytes.len() as u64);
        let op = DirOp::Removed {
            path: path.to_path_buf(),
            bytes,
            durable,
        };
        state.pending(path).push(op);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        let fails = state.plan.dir_sync_fails;
        if state.strikes(fails) {
            return Err(injected("directory fsync failed"));
        }
        RealDisk.sync_dir(dir)?;
        state.pending.remove(dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array, RecordBatch};
    use arrow::datatypes::Int64Type;

    use super::*;
    use crate::storage::disk;
    use crate::storage::wal::{self, WalFile};

    #[test]
    fn a_crash_undoes_what_no_fsync_made_durable() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("old"), b"kept").unwrap();
        let disk = FaultyDisk::new(7, FaultPlan::default());
        // Durable: a file written, synced, its creation synced.
        let mut file = disk.create(&at("durable")).unwrap();
        file.write_all(b"abc").unwrap();
        file.sync().unwrap();
        file.write_all(b"def").unwrap(); // never synced
        drop(file);
        disk.sync_dir(dir.path()).unwrap();
        // Not durable: a creation, a rename over a file, a remove.
        disk::replace(&disk, &at("old"), &at("old.tmp"), b"new").unwrap();
        let mut lost = disk.create(&at("lost")).unwrap();
        lost.write_all(b"x").unwrap();
        lost.sync().unwrap();
        drop(lost);
        disk.remove(&at("durable")).unwrap();
        disk.crash().unwrap();
        // The synced bytes, and maybe some of the unsynced ones (zeroed at
        // the end when torn).
        let kept = std::fs::read(at("durable")).unwrap();
        assert!(kept.starts_with(b"abc") && kept.len() <= 6, "{kept:?}");
        assert!(!at("lost").exists());
        // `replace` fsyncs the directory: the new content survives.
        assert_eq!(std::fs::read(at("old")).unwrap(), b"new");
    }

    #[test]
    fn a_full_disk_and_failed_fsyncs_are_errors_and_repeat_from_a_seed() {
        let dir = tempfile::tempdir().unwrap();
        let plan = FaultPlan {
            space: Some(10),
            ..FaultPlan::default()
        };
        let disk = FaultyDisk::new(1, plan);
        let mut file = disk.create(&dir.path().join("f")).unwrap();
        let err = file.write_all(&[0; 16]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(file.len().unwrap(), 10);

        let run = |seed| {
            let disk = FaultyDisk::new(
                seed,
                FaultPlan {
                    fsync_fails: 300,
                    ..FaultPlan::default()
                },
            );
            let mut file = disk.create(&dir.path().join(format!("s{seed}"))).unwrap();
            (0..50).map(|_| file.sync().is_ok()).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3), "the same seed gives the same faults");
        assert_ne!(run(3), run(4));
        assert!(run(3).contains(&false) && run(3).contains(&true));
    }

    fn group(id: i64) -> Vec<u8> {
        let batch = RecordBatch::try_from_iter([(
            "id",
            Arc::new(Int64Array::from(vec![id])) as arrow::array::ArrayRef,
        )])
        .unwrap();
        let record = wal::encode_record(0, &[batch]).unwrap();
        wal::frame_group(&[&record])
    }

    /// Reads every WAL file as recovery does: only the last non-empty file
    /// may end in a torn group, which is cut. Returns the ids in log order
    /// and how many torn tails were cut.
    fn recover(disk: &FaultyDisk, dir: &std::path::Path, seed: u64) -> (Vec<i64>, usize) {
        let seqs = wal::list_files(dir).unwrap();
        let sizes: Vec<u64> = seqs
            .iter()
            .map(|&s| wal::file_len(&dir.join(wal::file_name(s))).unwrap())
            .collect();
        let (mut ids, mut cuts) = (Vec::new(), 0);
        for (i, seq) in seqs.iter().enumerate() {
            let path = dir.join(wal::file_name(*seq));
            let (records, cut) = wal::read_records(&path, &wal::any_group).unwrap();
            if let Some(cut) = cut {
                let later = sizes[i + 1..].iter().any(|&len| len > 0);
                assert!(!later, "seed {seed}: damage before the last file: {cut:?}");
                wal::truncate(disk, &path, cut.offset).unwrap();
                cuts += 1;
            }
            for record in records {
                let batch = &record.batches[0];
                ids.extend(batch.column(0).as_primitive::<Int64Type>().values().iter());
            }
        }
        (ids, cuts)
    }

    /// A power loss, then recovery and the checks: every acknowledged id
    /// once and in order, nothing never written. Returns the next WAL file
    /// number and the torn tails cut.
    fn crash_and_check(
        disk: &FaultyDisk,
        dir: &std::path::Path,
        seed: u64,
        attempted: &HashMap<i64, bool>,
        acknowledged: &[i64],
    ) -> (u64, usize) {
        let plan = disk.state().plan;
        disk.set_plan(FaultPlan::default());
        disk.crash().unwrap();
        let (ids, cuts) = recover(disk, dir, seed);
        let mut seen = std::collections::HashSet::new();
        for found in &ids {
            assert!(seen.insert(*found), "seed {seed}: id {found} twice");
            assert!(
                attempted.contains_key(found),
                "seed {seed}: id {found} never written"
            );
        }
        let kept: Vec<i64> = ids.iter().copied().filter(|i| attempted[i]).collect();
        assert_eq!(
            kept, acknowledged,
            "seed {seed}: acknowledged groups lost or out of order"
        );
        disk.set_plan(plan);
        let next = wal::list_files(dir).unwrap().last().map_or(1, |s| s + 1);
        (next, cuts)
    }

    /// The WAL under a seeded storm of failed fsyncs, short writes, failed
    /// directory fsyncs and power losses (after a failed append, after a
    /// failed file creation, in the middle of an append, at random, at the
    /// end): after every recovery each acknowledged group is there exactly
    /// once, in order, and nothing else but groups never acknowledged
    /// (an append the power cut may have reached the disk, whole).
    #[test]
    fn the_wal_keeps_every_acknowledged_group_once_under_faults_and_crashes() {
        let plan = FaultPlan {
            fsync_fails: 40,
            write_fails: 30,
            dir_sync_fails: 20,
            space: None,
        };
        let (mut crashes, mut faults, mut cuts) = (0, 0, 0);
        for seed in 0..12u64 {
            let dir = tempfile::tempdir().unwrap();
            let disk = FaultyDisk::new(seed, plan);
            let dice = FaultyDisk::new(seed ^ 0xC0FFEE, plan);
            let roll = |n: u64| dice.state().next() % n;
            let mut acknowledged: Vec<i64> = Vec::new();
            let mut attempted: HashMap<i64, bool> = HashMap::new();
            let mut next_seq = 1;
            let mut writer: Option<WalFile> = None;
            for id in 0..300i64 {
                if writer.is_none() {
                    match WalFile::create(&disk, dir.path(), next_seq) {
                        Ok(file) => writer = Some(file),
                        Err(_) => {
                            crashes += 1;
                            let (next, cut) =
                                crash_and_check(&disk, dir.path(), seed, &attempted, &acknowledged);
                            (next_seq, cuts) = (next, cuts + cut);
                            continue;
                        }
                    }
                    next_seq += 1;
                }
                let file = writer.as_mut().expect("opened above");
                let bytes = group(id);
                attempted.insert(id, false);
                // The power fails in the middle of one append in ten.
                let torn = roll(10) == 0;
                let ok = file.append_group(&[&bytes], !torn).is_ok() && !torn;
                if ok {
                    acknowledged.push(id);
                    attempted.insert(id, true);
                }
                // A failed append stops the writer (fail-stop); now and
                // then the power fails anyway.
                if !ok || roll(25) == 0 {
                    writer = None;
                    crashes += 1;
                    let (next, cut) =
                        crash_and_check(&disk, dir.path(), seed, &attempted, &acknowledged);
                    (next_seq, cuts) = (next, cuts + cut);
                }
            }
            drop(writer);
            crashes += 1;
            cuts += crash_and_check(&disk, dir.path(), seed, &attempted, &acknowledged).1;
            faults += disk.faults();
        }
        assert!(
            crashes > 50 && faults > 50 && cuts > 10,
            "the campaign injected too little: {crashes} crashes, {faults} faults, {cuts} torn tails"
        );
    }

    /// Manifest switches under faults and crashes: after every crash the
    /// manifest reads whole, and is the last one whose store returned `Ok`
    /// or a later one whose store failed after its rename (never older,
    /// never half).
    #[test]
    fn a_manifest_switch_is_whole_and_never_older_than_acknowledged() {
        use crate::storage::Manifest;
        let plan = FaultPlan {
            fsync_fails: 80,
            write_fails: 80,
            dir_sync_fails: 80,
            space: None,
        };
        let mut failures = 0;
        for seed in 0..8u64 {
            let dir = tempfile::tempdir().unwrap();
            let disk = FaultyDisk::new(seed, FaultPlan::default());
            let mut manifest = Manifest::open(&disk, dir.path()).unwrap();
            disk.sync_dir(dir.path()).unwrap();
            disk.set_plan(plan);
            let mut acknowledged = manifest.next_segment_id;
            for step in 1..=60u64 {
                manifest.next_segment_id = step;
                match manifest.store(&disk, dir.path()) {
                    Ok(()) => acknowledged = step,
                    Err(_) => failures += 1,
                }
                if step % 7 == 0 || manifest.next_segment_id != acknowledged {
                    disk.set_plan(FaultPlan::default());
                    disk.crash().unwrap();
                    let on_disk = Manifest::load(dir.path()).expect("a whole manifest");
                    let found = on_disk.next_segment_id;
                    assert!(
                        (acknowledged..=step).contains(&found),
                        "seed {seed}: manifest {found}, acknowledged {acknowledged}, last tried {step}"
                    );
                    acknowledged = found;
                    disk.set_plan(plan);
                }
            }
        }
        assert!(failures > 20, "too few injected failures: {failures}");
    }
}
