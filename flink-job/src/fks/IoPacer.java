package fks;

import java.util.concurrent.locks.LockSupport;

/**
 * The I/O-bound cost of {@code --work io:<C>}: one subtask processes at most C records/s by
 * waiting, as if each record made an external lookup of 1/C s. Each record adds 1/C s to a
 * debt; once the debt reaches {@link #MIN_PARK_NANOS} the task thread parks for it and
 * subtracts the time it actually parked (over-sleep becomes credit for the next records, an
 * early wake-up stays owed), so the long-run rate is C however coarse the timer is, and the
 * wait costs no CPU. The thread waits inside {@code processElement}: Flink counts it as busy
 * (neither idle nor back-pressured), exactly as it would a blocking client call. Idle gaps
 * between records do not pay the debt, so busy time = records × 1/C at any load.
 *
 * <p>Not thread-safe: one per subtask, used from the task thread only.
 */
final class IoPacer {
    /** Parks are batched to at least 1 ms: shorter parks are dominated by timer slack. */
    static final long MIN_PARK_NANOS = 1_000_000L;
    /**
     * Most credit carried from over-sleeping. A wake-up on a busy 2-core machine can come tens
     * of ms late; crediting it keeps the rate at C (measured 0.999 × C at load average 11,
     * against 0.99 × C with a 10 ms cap), while the cap keeps a pathological stall (a paused
     * VM) from turning into a long burst of free records.
     */
    static final long MAX_CREDIT_NANOS = 100_000_000L;

    private final double costNanos;
    private double debtNanos;
    private long parkedNanos;

    IoPacer(double recordsPerSecond) {
        this.costNanos = 1e9 / recordsPerSecond;
    }

    /** Charges one record; parks when the accumulated debt is at least 1 ms. */
    void charge() {
        debtNanos += costNanos;
        if (debtNanos < MIN_PARK_NANOS) {
            return;
        }
        long start = System.nanoTime();
        LockSupport.parkNanos((long) debtNanos);
        long parked = System.nanoTime() - start;
        parkedNanos += parked;
        debtNanos = Math.max(debtNanos - parked, -MAX_CREDIT_NANOS);
    }

    /** Milliseconds parked so far (the operator's {@code ioWaitMs} gauge). */
    long parkedMs() {
        return parkedNanos / 1_000_000L;
    }
}
