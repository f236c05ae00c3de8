//! Notices a device that stops answering. Every call into a device is
//! registered before it is made; a thread of its own reports a call that
//! has not returned within the limit while it is still stuck (in the output
//! and in the kernel log, next to whatever the kernel says about it), and
//! ends the process if it never returns.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines into the kernel log (`/dev/kmsg`), so that a kernel report in the
/// console log can be tied to the case that caused it.
pub struct Kmsg(Option<File>);

impl Kmsg {
    pub fn open() -> Self {
        Self(OpenOptions::new().write(true).open("/dev/kmsg").ok())
    }

    pub fn available(&self) -> bool {
        self.0.is_some()
    }

    pub fn line(&self, text: &str) {
        if let Some(mut f) = self.0.as_ref() {
            // One write is one record; a failed marker must not stop the run.
            let _ = f.write_all(format!("{text}\n").as_bytes());
        }
    }
}

/// Which call is in flight.
#[derive(Clone, Debug)]
pub struct Call {
    pub side: &'static str,
    pub what: &'static str,
    pub seed: u64,
    pub case: u64,
    pub op: usize,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (seed {} case {} op {})",
            self.side, self.what, self.seed, self.case, self.op
        )
    }
}

struct InFlight {
    call: Call,
    since: Instant,
    reported: bool,
}

struct Shared {
    in_flight: Mutex<Option<InFlight>>,
    limit: Duration,
    give_up: Duration,
    kmsg: Kmsg,
}

pub struct Watchdog {
    shared: Arc<Shared>,
}

impl Watchdog {
    /// Reports calls taking longer than `limit`; exits the process (status
    /// 3) when one has not returned after `give_up`.
    pub fn start(limit: Duration, give_up: Duration) -> Self {
        let shared = Arc::new(Shared {
            in_flight: Mutex::new(None),
            limit,
            give_up,
            kmsg: Kmsg::open(),
        });
        let watcher = Arc::clone(&shared);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            watcher.check();
        });
        Self { shared }
    }

    /// Runs `f`, a call into a device, under watch; returns its result and
    /// how long it took.
    pub fn run<T>(&self, call: Call, f: impl FnOnce() -> T) -> (T, Duration) {
        let since = Instant::now();
        *self.lock() = Some(InFlight {
            call,
            since,
            reported: false,
        });
        let result = f();
        let took = since.elapsed();
        *self.lock() = None;
        (result, took)
    }

    pub fn limit(&self) -> Duration {
        self.shared.limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<InFlight>> {
        self.shared
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl Shared {
    fn check(&self) {
        let mut guard = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let Some(call) = guard.as_mut() else { return };
        let stuck = call.since.elapsed();
        if stuck >= self.limit && !call.reported {
            call.reported = true;
            let text = format!(
                "rvhost-fuzz: FINDING: {} has not answered after {} ms",
                call.call,
                stuck.as_millis()
            );
            println!("{text}");
            self.kmsg.line(&text);
        }
        if stuck >= self.give_up {
            let text = format!(
                "rvhost-fuzz: giving up: {} has not answered after {} s",
                call.call,
                stuck.as_secs()
            );
            println!("{text}");
            self.kmsg.line(&text);
            std::process::exit(3);
        }
    }
}
