//! Linux only: the SQLite writer's two threads on one core, in `SCHED_BATCH`.
//!
//! The binary opts in by opening its store with [`share_one_core`] as the writer thread's
//! setup ([`crate::Store::open_with_writer_setup`]). It runs on the writer thread before
//! that thread opens the writer connection, so sqlx's connection thread, started from it,
//! inherits both settings. Why (see `backend/writer_thread.rs`): a statement's round trip
//! between the two threads costs about 3.5 µs on a shared core and 40–50 µs across cores on
//! a 2-vCPU VM, and every write statement is one.
//!
//! Best effort: a system that refuses either call leaves the writes as correct, only slower.

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};

/// Pins the calling thread to one core and puts it in `SCHED_BATCH`; the threads it starts
/// afterwards inherit both. Meant as the writer thread's setup.
pub fn share_one_core() {
    pin_to_one_core();
    no_wake_up_preemption();
}

/// Pins the calling thread to the last core it may run on (the first is where the kernel
/// tends to put everything else).
fn pin_to_one_core() {
    let me = Pid::from_raw(0);
    let Ok(allowed) = sched_getaffinity(me) else { return };
    let Some(last) = (0..CpuSet::count()).rev().find(|&cpu| allowed.is_set(cpu).unwrap_or(false))
    else {
        return;
    };
    let mut one = CpuSet::new();
    if one.set(last).is_ok() {
        let _ = sched_setaffinity(me, &one);
    }
}

/// Puts the calling thread in `SCHED_BATCH`, where a thread that wakes does not preempt the
/// one running. The writer thread and the connection's thread share a core and wake each
/// other once per statement; preempting at the wake-up switched to a thread that at once
/// found the channel's lock still held by the one it preempted, spun on it and slept again
/// (measured: `SCHED_BATCH` took a payment's writes from 1.5 to 1.2 ms of that core).
fn no_wake_up_preemption() {
    let _ = set_thread_priority_and_policy(
        thread_native_id(),
        // Nice 0: the batch policy alone, the same share of the core as before.
        ThreadPriority::Os(ThreadPriorityOsValue::default()),
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    );
}

#[cfg(test)]
mod tests {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;

    fn allowed_cpus() -> usize {
        let set = sched_getaffinity(Pid::from_raw(0)).expect("affinity");
        (0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).count()
    }

    /// `sched_getscheduler` of the calling thread, read from procfs (field 41 of `stat`).
    fn policy() -> u32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        // The command name may hold spaces: count the fields after its closing parenthesis.
        let after_name = &stat[stat.rfind(')').expect("name") + 2..];
        after_name.split(' ').nth(38).expect("policy field").parse().expect("number")
    }

    #[test]
    fn the_writer_thread_and_the_threads_it_starts_keep_to_one_core_in_batch_scheduling() {
        const SCHED_BATCH: u32 = 3;
        let (mine, child) = std::thread::spawn(|| {
            super::share_one_core();
            // What sqlx's connection thread gets: it is started from the set-up thread.
            let here = (allowed_cpus(), policy());
            (here, std::thread::spawn(|| (allowed_cpus(), policy())).join().expect("child"))
        })
        .join()
        .expect("set-up thread");
        assert_eq!((mine, child), ((1, SCHED_BATCH), (1, SCHED_BATCH)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_whose_writer_shares_one_core_writes_and_reads_back() {
        let dir = tempfile::tempdir().expect("dir");
        let config = crate::StoreConfig::sqlite_in(dir.path());
        let store = crate::Store::open_with_writer_setup(&config, super::share_one_core)
            .await
            .expect("open");
        let tenant = crate::TenantId::parse("ten_pinned").expect("id");
        let now = crate::Timestamp::from_unix_ms(1_764_000_000_000);
        store.ensure_tenant(&tenant, "pinned", now).await.expect("write");
        assert_eq!(store.latest_seq(&tenant).await.expect("read"), 0);
        store.close().await;
    }
}
