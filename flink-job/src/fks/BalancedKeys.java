package fks;

import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;

/**
 * Keys that spread records evenly over key groups, hence over the keyed subtasks at any
 * parallelism (up to the key-group granularity: ranges of ⌊128/p⌋ or ⌈128/p⌉ groups).
 *
 * <p>Why: Flink maps a key to a key group by murmur hash, so 128 consecutive integers land
 * unevenly (the busiest of 8 subtasks gets 20 % of them instead of 12.5 %) and the busiest
 * subtask caps the whole shuffle: under backlog the job processes only 0.62 × 8 × C with
 * {@code io:<C>}. Here key i is the smallest long in key group {@code group(i)}, with
 * groups assigned round-robin (or spread out when there are fewer keys than groups). The
 * split is exact when the key count is a multiple of the max parallelism; otherwise some
 * groups hold one key more (128 keys over 120 groups give groups 0–7 twice the records).
 *
 * <p>A record picks its key from its offset in its partition ({@code v / partitions}), not
 * from {@code v}: every partition cycles through all keys, so the key mix stays even when the
 * source subtasks own unequal numbers of partitions (8 partitions at parallelism 6).
 */
final class BalancedKeys implements KeySelector<Long, Long> {
    private static final long serialVersionUID = 1L;
    /** Most distinct keys (the table is built in the client). */
    static final int MAX_KEYS = 1 << 20;

    private final long[] keys;
    private final int partitions;

    BalancedKeys(int count, int maxParallelism, int partitions) {
        if (count < 1 || count > MAX_KEYS) {
            throw new IllegalArgumentException("--keys " + count + ": expected 1.." + MAX_KEYS);
        }
        this.keys = table(count, maxParallelism);
        this.partitions = partitions;
    }

    /** The key of record {@code v} (= offset × partitions + partition). */
    @Override
    public Long getKey(Long v) {
        return keys[(int) ((v / partitions) % keys.length)];
    }

    /** The key group key index {@code i} of {@code n} must land in. */
    static int groupOf(int i, int n, int maxParallelism) {
        return n <= maxParallelism ? (int) ((long) i * maxParallelism / n) : i % maxParallelism;
    }

    static long[] table(int n, int maxParallelism) {
        // slots[g]: the key indexes still waiting for a key in group g, filled in order
        int[] next = new int[maxParallelism];
        int[][] slots = new int[maxParallelism][];
        int[] sizes = new int[maxParallelism];
        for (int i = 0; i < n; i++) {
            sizes[groupOf(i, n, maxParallelism)]++;
        }
        for (int g = 0; g < maxParallelism; g++) {
            slots[g] = new int[sizes[g]];
            sizes[g] = 0;
        }
        for (int i = 0; i < n; i++) {
            int g = groupOf(i, n, maxParallelism);
            slots[g][sizes[g]++] = i;
        }
        long[] out = new long[n];
        int left = n;
        for (long k = 0; left > 0; k++) {
            int g = KeyGroupRangeAssignment.assignToKeyGroup(k, maxParallelism);
            if (next[g] < slots[g].length) {
                out[slots[g][next[g]++]] = k;
                left--;
            }
        }
        return out;
    }
}
