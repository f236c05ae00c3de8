//! The far side of the `virtio-echo` workload: a thread on the tap's packet
//! socket sends request frames into the tap, waits for the guest's answers
//! and times each round trip with `Instant` (far side → tap → the device's
//! RX → guest → the device's TX → tap → far side), keeping `depth` requests
//! in flight. The first `warmup` round trips are not timed. An answer that
//! does not come in time ([`ANSWER_TIMEOUT`]) ends the run with an error,
//! through [`RunAbort`], rather than leaving it to the watchdog.

use crate::latency::Latency;
use crate::vcpu::RunAbort;
use anyhow::{anyhow, Context, Result};
use rvmm_abi::echo;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the far side waits for an answer: round trips take
/// milliseconds even under TCG, so this means the frame was lost.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting far side looks whether it was told to stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// What the far side does.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Round trips in all (the guest answers as many requests).
    pub frames: u32,
    /// Round trips before the timed ones.
    pub warmup: u32,
    /// Frame size in bytes.
    pub size: usize,
    /// Requests in flight at once.
    pub depth: u32,
    /// How long to wait for an answer ([`ANSWER_TIMEOUT`]).
    pub answer_timeout: Duration,
}

/// Why the far side gave up.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request {seq} got no answer within {waited:?} (a frame was lost on the way through the data path)")]
    NoAnswer { seq: u32, waited: Duration },
    #[error("answer {got} came when answer {expected} was due (answers come in request order)")]
    OutOfOrder { got: u32, expected: u32 },
    #[error("answer {seq} differs from its request beyond the kind byte")]
    Garbled { seq: u32 },
    #[error("the packet socket on the tap: {0}")]
    Socket(#[from] std::io::Error),
}

/// Which requests are out and when each left, and the round trips timed.
#[derive(Debug)]
struct Ledger {
    options: Options,
    /// The next request's number.
    next: u32,
    /// Requests sent and not yet answered, oldest first.
    in_flight: VecDeque<(u32, Instant)>,
    round_trips: Vec<Duration>,
    /// When the first timed request left.
    timed_from: Option<Instant>,
    /// When the last answer came.
    last_answer: Option<Instant>,
}

impl Ledger {
    fn new(options: Options) -> Self {
        Self {
            options,
            next: 0,
            in_flight: VecDeque::new(),
            round_trips: Vec::with_capacity(options.frames.saturating_sub(options.warmup) as usize),
            timed_from: None,
            last_answer: None,
        }
    }

    /// The next request to send, if one may go now.
    fn next_to_send(&self) -> Option<u32> {
        let room = (self.in_flight.len() as u32) < self.options.depth;
        (room && self.next < self.options.frames).then_some(self.next)
    }

    /// Request `next_to_send()` left at `at`.
    fn sent(&mut self, at: Instant) {
        if self.next == self.options.warmup {
            self.timed_from = Some(at);
        }
        self.in_flight.push_back((self.next, at));
        self.next += 1;
    }

    /// The oldest request still unanswered.
    fn oldest(&self) -> Option<(u32, Instant)> {
        self.in_flight.front().copied()
    }

    /// Answer `seq` came at `at`: it must be the oldest request's.
    fn answered(&mut self, seq: u32, at: Instant) -> Result<(), RequestError> {
        match self.in_flight.front() {
            Some(&(expected, sent)) if expected == seq => {
                self.in_flight.pop_front();
                if seq >= self.options.warmup {
                    self.round_trips.push(at.duration_since(sent));
                }
                self.last_answer = Some(at);
                Ok(())
            }
            _ => Err(RequestError::OutOfOrder {
                got: seq,
                expected: self.oldest().map_or(self.next, |(s, _)| s),
            }),
        }
    }

    fn done(&self) -> bool {
        self.next == self.options.frames && self.in_flight.is_empty()
    }

    /// The timed round trips, once done.
    fn latency(&self) -> Option<Latency> {
        let window = self.last_answer?.duration_since(self.timed_from?);
        Latency::of(&self.round_trips, self.options.depth, window)
    }
}

/// Request `seq` as it goes into the tap.
fn request(seq: u32, size: usize) -> Vec<u8> {
    let mut frame = nettest::frame(seq, size);
    echo::make_request(&mut frame, seq);
    frame
}

/// The far side's thread.
pub struct Requester {
    thread: JoinHandle<Result<Option<Latency>, RequestError>>,
    stop: Arc<AtomicBool>,
}

impl Requester {
    /// Starts the far side on `sniffer` (the packet socket on the tap); it
    /// sends its first request once `up()` says the guest's RX queue is.
    /// A failure ends the run through `abort`.
    pub fn start(
        sniffer: OwnedFd,
        up: impl Fn() -> bool + Send + 'static,
        options: Options,
        abort: RunAbort,
    ) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rvmm-echo-far".into())
            .spawn(move || {
                let outcome = request_all(&sniffer, up, options, &stopped);
                if let Err(e) = &outcome {
                    abort.abort(format!("virtio-echo's far side: {e}"));
                }
                outcome
            })
            .context("spawning virtio-echo's far side")?;
        Ok(Self { thread, stop })
    }

    /// The timed round trips, once the far side has its last answer; when
    /// the guest did not finish well (`guest_ok` false) the far side is
    /// stopped instead and there are none.
    pub fn finish(self, guest_ok: bool) -> Result<Option<Latency>> {
        if !guest_ok {
            self.stop.store(true, Ordering::Relaxed);
        }
        let outcome = self
            .thread
            .join()
            .map_err(|_| anyhow!("virtio-echo's far side panicked"))?;
        match outcome {
            Ok(latency) => Ok(latency),
            Err(_) if !guest_ok => Ok(None),
            Err(e) => Err(anyhow!("virtio-echo's far side: {e}")),
        }
    }
}

/// Sends every request and takes every answer; `None` when told to stop
/// first.
fn request_all(
    sniffer: &OwnedFd,
    up: impl Fn() -> bool,
    options: Options,
    stop: &AtomicBool,
) -> Result<Option<Latency>, RequestError> {
    while !up() {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut ledger = Ledger::new(options);
    let mut buf = vec![0u8; options.size.max(echo::MIN_FRAME) + 1];
    while !ledger.done() {
        while let Some(seq) = ledger.next_to_send() {
            let frame = request(seq, options.size);
            let at = Instant::now();
            send(sniffer, &frame)?;
            ledger.sent(at);
        }
        let Some((oldest, sent)) = ledger.oldest() else {
            continue;
        };
        let left = options.answer_timeout.saturating_sub(sent.elapsed());
        if left.is_zero() {
            return Err(RequestError::NoAnswer {
                seq: oldest,
                waited: options.answer_timeout,
            });
        }
        let readable = wait_readable(sniffer, left.min(STOP_CHECK))?;
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if !readable {
            continue;
        }
        let n = recv(sniffer, &mut buf)?;
        let at = Instant::now();
        let Some(seq) = echo::answered(&buf[..n]) else {
            // Not an answer (the socket sees only our EtherType, but
            // whatever else comes is none of the far side's business).
            continue;
        };
        ledger.answered(seq, at)?;
        let mut expected = request(seq, options.size);
        echo::answer(&mut expected).expect("a request frame");
        if buf[..n] != expected[..] {
            return Err(RequestError::Garbled { seq });
        }
    }
    Ok(ledger.latency())
}

fn send(sniffer: &OwnedFd, frame: &[u8]) -> Result<(), RequestError> {
    // SAFETY: sends our buffer on the packet socket bound to the tap.
    let n = unsafe { libc::send(sniffer.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// Whether a frame waits on the socket, after at most `timeout`.
fn wait_readable(sniffer: &OwnedFd, timeout: Duration) -> Result<bool, RequestError> {
    let mut fd = libc::pollfd {
        fd: sniffer.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: polls one pollfd of ours.
    let ret = unsafe { libc::poll(&mut fd, 1, ms) };
    match ret {
        0 => Ok(false),
        n if n > 0 => Ok(true),
        _ => {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e.into())
            }
        }
    }
}

/// One frame off the socket (it is readable), truncated to `buf`.
fn recv(sniffer: &OwnedFd, buf: &mut [u8]) -> Result<usize, RequestError> {
    // SAFETY: receives into our buffer; does not block.
    let n = unsafe {
        libc::recv(
            sniffer.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    fn options(frames: u32, warmup: u32, depth: u32) -> Options {
        Options {
            frames,
            warmup,
            size: 64,
            depth,
            answer_timeout: Duration::from_millis(200),
        }
    }

    #[test]
    fn keeps_depth_requests_in_flight_and_times_after_the_warmup() {
        let mut ledger = Ledger::new(options(5, 2, 2));
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut now = 0;
        let mut answered = 0;
        while !ledger.done() {
            while ledger.next_to_send().is_some() {
                ledger.sent(ms(now));
            }
            assert!(ledger.in_flight.len() <= 2);
            // Each answer 10 ms after the last event.
            now += 10;
            let (seq, _) = ledger.oldest().unwrap();
            assert_eq!(seq, answered);
            ledger.answered(seq, ms(now)).unwrap();
            answered += 1;
        }
        assert_eq!(answered, 5);
        // Requests 0 and 1 left at 0 ms, 2 at 10, 3 at 20, 4 at 30; answers
        // at 10, 20, 30, 40, 50: timed are 2, 3, 4 (20 ms each), from 10 ms
        // to 50 ms.
        let l = ledger.latency().unwrap();
        assert_eq!((l.transactions, l.depth), (3, 2));
        assert_eq!(
            (l.p50_us, l.p99_us, l.mean_us),
            (20_000.0, 20_000.0, 20_000.0)
        );
        assert!((l.per_second - 75.0).abs() < 1e-9, "{}", l.per_second);
    }

    #[test]
    fn depth_one_waits_for_each_answer() {
        let mut ledger = Ledger::new(options(3, 0, 1));
        let t = Instant::now();
        assert_eq!(ledger.next_to_send(), Some(0));
        ledger.sent(t);
        assert_eq!(ledger.next_to_send(), None);
        ledger.answered(0, t).unwrap();
        assert_eq!(ledger.next_to_send(), Some(1));
    }

    #[test]
    fn an_answer_out_of_turn_is_an_error() {
        let mut ledger = Ledger::new(options(4, 0, 2));
        let t = Instant::now();
        ledger.sent(t);
        ledger.sent(t);
        let err = ledger.answered(1, t).unwrap_err();
        assert!(matches!(
            err,
            RequestError::OutOfOrder {
                got: 1,
                expected: 0
            }
        ));
        ledger.answered(0, t).unwrap();
        // Twice the same answer.
        let err = ledger.answered(0, t).unwrap_err();
        assert!(matches!(
            err,
            RequestError::OutOfOrder {
                got: 0,
                expected: 1
            }
        ));
    }

    #[test]
    fn requests_are_test_frames_marked_as_requests() {
        let frame = request(9, 64);
        assert_eq!(frame.len(), 64);
        assert_eq!(
            frame[..echo::KIND_OFFSET],
            nettest::frame(9, 64)[..echo::KIND_OFFSET]
        );
        let mut answer = frame.clone();
        assert_eq!(echo::answer(&mut answer), Ok(9));
        assert_eq!(echo::answered(&answer), Some(9));
    }

    /// A connected pair of sequenced-packet sockets (the far side's, the guest's):
    /// each send is one frame, and a closed end reads as an empty one.
    fn socket_pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: socketpair fills two fds, which we then own.
        let ret =
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, fds.as_mut_ptr()) };
        assert_eq!(ret, 0);
        // SAFETY: both fds are fresh and ours.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    /// A guest on `socket` answering every request but number `lose`'s,
    /// and changing `garble`'s last byte, until the far side goes away.
    fn guest(
        socket: OwnedFd,
        lose: Option<u32>,
        garble: Option<u32>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while wait_readable(&socket, Duration::from_secs(2)).unwrap_or(false) {
                let Ok(n) = recv(&socket, &mut buf) else {
                    return;
                };
                let frame = &mut buf[..n];
                let Ok(seq) = echo::answer(frame) else {
                    return;
                };
                if Some(seq) == garble {
                    frame[n - 1] ^= 1;
                }
                if Some(seq) != lose && send(&socket, frame).is_err() {
                    return;
                }
            }
        })
    }

    fn far_side(
        options: Options,
        lose: Option<u32>,
        garble: Option<u32>,
    ) -> Result<Option<Latency>, RequestError> {
        let (far, near) = socket_pair();
        let guest = guest(near, lose, garble);
        let outcome = request_all(&far, || true, options, &AtomicBool::new(false));
        drop(far);
        guest.join().unwrap();
        outcome
    }

    #[test]
    fn times_every_answered_round_trip() {
        let l = far_side(options(50, 10, 3), None, None).unwrap().unwrap();
        assert_eq!((l.transactions, l.depth), (40, 3));
        assert!(0.0 < l.p50_us && l.p50_us <= l.p99_us, "{l:?}");
        assert!(l.per_second > 0.0);
    }

    #[test]
    fn a_lost_answer_fails_the_run_naming_its_request() {
        let started = Instant::now();
        let err = far_side(options(20, 0, 1), Some(7), None).unwrap_err();
        assert!(
            matches!(err, RequestError::NoAnswer { seq: 7, .. }),
            "{err}"
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(
            err.to_string()
                .starts_with("request 7 got no answer within 200ms"),
            "{err}"
        );
    }

    #[test]
    fn a_garbled_answer_fails_the_run() {
        let err = far_side(options(20, 0, 2), None, Some(4)).unwrap_err();
        assert!(matches!(err, RequestError::Garbled { seq: 4 }), "{err}");
    }

    #[test]
    fn a_stopped_far_side_measures_nothing() {
        let (far, _near) = socket_pair();
        let stop = AtomicBool::new(true);
        let outcome = request_all(&far, || false, options(5, 0, 1), &stop).unwrap();
        assert_eq!(outcome, None);
    }
}
