//! Wall-clock time in microseconds, as cheap as the CPU allows.
//!
//! Every subsegment reads the clock twice, and the system clock costs about
//! 30 ns a read, the largest single cost of a subsegment. Where the kernel
//! itself keeps time with the CPU's time-stamp counter (so it is invariant
//! and synchronised across cores), a read is the counter scaled from an
//! anchor taken once, when the sender starts: about 10 ns. The scale is
//! measured against the system clock by [`calibrate`], which the sender
//! thread calls every round; until the first calibration, and wherever the
//! counter is not the kernel's clock source, reads go to the system clock.
//!
//! Each calibration re-measures the scale over the whole time since the
//! anchor, so the error shrinks as the process lives on, and a step or slew of
//! the system clock is followed within one round.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds per counter tick (f64 bits); zero until calibrated, or when
/// the counter is not usable.
static MICROS_PER_TICK: AtomicU64 = AtomicU64::new(0);

/// The shortest span over which the scale is measured: a pair of reads can
/// be a microsecond apart, which is 100 ppm of 10 ms.
const MIN_CALIBRATION_MICROS: u64 = 10_000;

/// Microseconds since the Unix epoch.
pub(crate) fn now_micros() -> u64 {
    let scale = f64::from_bits(MICROS_PER_TICK.load(Ordering::Relaxed));
    match anchor() {
        Some(anchor) if scale > 0.0 => anchor.micros + (ticks().saturating_sub(anchor.ticks) as f64 * scale) as u64,
        _ => system_micros(),
    }
}

/// Measures the counter's rate against the system clock since the anchor
/// (the first call takes the anchor); cheap enough to call every round.
pub(crate) fn calibrate() {
    let Some(anchor) = anchor() else { return };
    let (micros, ticks) = paired_read();
    let (elapsed_micros, elapsed_ticks) = (micros.saturating_sub(anchor.micros), ticks.wrapping_sub(anchor.ticks));
    if elapsed_micros >= MIN_CALIBRATION_MICROS && elapsed_ticks > 0 {
        let scale = elapsed_micros as f64 / elapsed_ticks as f64;
        MICROS_PER_TICK.store(scale.to_bits(), Ordering::Relaxed);
    }
}

fn system_micros() -> u64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    // Not `as_micros`: its u128 arithmetic costs a third of the read itself.
    elapsed.as_secs() * 1_000_000 + u64::from(elapsed.subsec_micros())
}

/// A system clock reading and the counter at the same moment.
#[derive(Clone, Copy)]
struct Anchor {
    micros: u64,
    ticks: u64,
}

/// The anchor, taken at the first call; `None` where the counter is not usable.
fn anchor() -> Option<Anchor> {
    static ANCHOR: OnceLock<Option<Anchor>> = OnceLock::new();
    *ANCHOR.get_or_init(|| {
        counter_is_clock_source().then(|| {
            let (micros, ticks) = paired_read();
            Anchor { micros, ticks }
        })
    })
}

/// The system clock with the counter read as close to it as possible: the
/// pair from the tightest of a few attempts, so an interrupt between the two
/// reads does not skew the scale.
fn paired_read() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..5 {
        let before = ticks();
        let micros = system_micros();
        let after = ticks();
        let width = after.wrapping_sub(before);
        if width < best.0 {
            best = (width, micros, before + width / 2);
        }
    }
    (best.1, best.2)
}

/// Whether the kernel keeps time with the time-stamp counter, which it does
/// only when the counter is invariant and synchronised across cores.
fn counter_is_clock_source() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|source| source.trim() == "tsc")
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn ticks() -> u64 {
    // SAFETY: RDTSC reads a register and has no preconditions on x86_64;
    // `counter_is_clock_source` decides whether its value is used as time.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_agree_with_the_system_clock_before_and_after_calibration() {
        let close = |read: u64| read.abs_diff(system_micros()) < 2_000;
        assert!(close(now_micros()), "before calibration");
        std::thread::sleep(std::time::Duration::from_millis(15));
        calibrate();
        if anchor().is_some() {
            assert!(f64::from_bits(MICROS_PER_TICK.load(Ordering::Relaxed)) > 0.0, "calibrated after 15 ms");
        }
        let mut previous = now_micros();
        assert!(close(previous), "after calibration: {previous} against {}", system_micros());
        for _ in 0..1_000 {
            let read = now_micros();
            assert!(read >= previous, "reads go forward");
            previous = read;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(close(now_micros()), "20 ms later");
    }
}
