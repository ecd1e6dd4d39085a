package fks;

import java.io.Serializable;

/**
 * What the keyed operator spends per record, from {@code --work}:
 *
 * <ul>
 *   <li>{@code cpu:<N>} (or a bare {@code <N>}, the historical form): CPU-bound, N iterations
 *       of an LCG per record, spinning on the task thread (400000 ≈ 0.7 ms on the lab machine:
 *       machine-dependent, capacity grows with free cores, not with parallelism);
 *   <li>{@code io:<C>}: I/O-bound, each subtask processes at most C records/s by waiting (an
 *       external lookup per record, see {@link IoPacer}): capacity is parallelism × C on any
 *       machine and the wait costs no CPU;
 *   <li>{@code 0}, {@code cpu:0} or {@code none}: no work (the default).
 * </ul>
 */
final class Work implements Serializable {
    private static final long serialVersionUID = 1L;
    /** Upper bound of {@code io:<C>}: above it the ≥ 1 ms park batches hold 1000+ records. */
    static final double MAX_IO_RATE = 1_000_000.0;

    enum Mode {
        NONE,
        CPU,
        IO
    }

    final Mode mode;
    /** {@link Mode#CPU}: LCG iterations per record. */
    final long cpuIterations;
    /** {@link Mode#IO}: records/s one subtask can process. */
    final double ioRecordsPerSecond;

    private Work(Mode mode, long cpuIterations, double ioRecordsPerSecond) {
        this.mode = mode;
        this.cpuIterations = cpuIterations;
        this.ioRecordsPerSecond = ioRecordsPerSecond;
    }

    /** Parses a {@code --work} value; the exception message names the argument and the forms. */
    static Work parse(String spec) {
        String s = spec.trim();
        try {
            if (s.equals("none")) {
                return new Work(Mode.NONE, 0, 0);
            }
            if (s.startsWith("io:")) {
                double c = Double.parseDouble(s.substring(3));
                if (!(c > 0 && c <= MAX_IO_RATE)) {
                    throw bad(spec, "io:<C> needs 0 < C <= " + (long) MAX_IO_RATE + " records/s");
                }
                return new Work(Mode.IO, 0, c);
            }
            long n = Long.parseLong(s.startsWith("cpu:") ? s.substring(4) : s);
            if (n < 0) {
                throw bad(spec, "cpu:<N> needs N >= 0 iterations");
            }
            return new Work(n == 0 ? Mode.NONE : Mode.CPU, n, 0);
        } catch (NumberFormatException e) {
            throw bad(spec, "not a number");
        }
    }

    private static IllegalArgumentException bad(String spec, String why) {
        String shown = spec.length() > 40 ? spec.substring(0, 40) + "…" : spec;
        return new IllegalArgumentException("--work '" + shown + "': " + why
                + " (expected io:<records/s per subtask>, cpu:<iterations per record>, <iterations> or none)");
    }

    /** Spends the CPU of one record (a no-op unless {@link Mode#CPU}); returns a value to keep. */
    long burn(long seed) {
        long x = seed;
        for (long i = 0; i < cpuIterations; i++) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            x ^= (x >>> 29);
        }
        return x;
    }

    @Override
    public String toString() {
        switch (mode) {
            case CPU:
                return "cpu:" + cpuIterations;
            case IO:
                return "io:" + ioRecordsPerSecond;
            default:
                return "none";
        }
    }
}
