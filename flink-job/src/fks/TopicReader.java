package fks;

import org.apache.flink.api.connector.source.ReaderOutput;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.core.io.InputStatus;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Reads the partitions assigned to this subtask: advances production by the current rate
 * (spread evenly over all partitions), emits backlog records as fast as the pipeline
 * takes them, and reports FLIP-33 {@code pendingRecords} (the summed lag).
 */
final class TopicReader implements SourceReader<Long, TopicSplit> {
    private static final int BATCH = 64;
    private final SourceReaderContext ctx;
    private final RateSchedule rate;
    private final int partitions;
    private final List<TopicSplit> splits = new ArrayList<>();
    private volatile long pending;
    private int next;
    private ScheduledExecutorService timer;

    TopicReader(SourceReaderContext ctx, RateSchedule rate, int partitions) {
        this.ctx = ctx;
        this.rate = rate;
        this.partitions = partitions;
    }

    @Override
    public void start() {
        timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "topic-reader-timer");
            t.setDaemon(true);
            return t;
        });
        ctx.metricGroup().setPendingRecordsGauge(() -> pending);
        // The topic's production rate for this reader's partitions (what a Kafka broker's
        // bytes-in shows): summed over readers it is the scheduled rate, so the load step is
        // visible in Prometheus independently of how fast the job consumes.
        ctx.metricGroup().gauge("producedRecordsPerSecond",
                (org.apache.flink.metrics.Gauge<Double>) () -> rate.current() * splits.size() / partitions);
    }

    private void produce() {
        long now = System.currentTimeMillis();
        double perPartition = rate.current() / partitions;
        long lag = 0;
        for (TopicSplit s : splits) {
            if (now > s.producedUntilMs) {
                s.produced += perPartition * (now - s.producedUntilMs) / 1000.0;
                s.producedUntilMs = now;
            }
            lag += s.lag();
        }
        pending = lag;
    }

    @Override
    public InputStatus pollNext(ReaderOutput<Long> out) {
        produce();
        if (splits.isEmpty()) {
            return InputStatus.NOTHING_AVAILABLE;
        }
        for (int k = 0; k < splits.size(); k++) {
            TopicSplit s = splits.get((next + k) % splits.size());
            long lag = s.lag();
            if (lag > 0) {
                long n = Math.min(lag, BATCH);
                for (long i = 0; i < n; i++) {
                    out.collect(s.consumed * partitions + s.partition);
                    s.consumed++;
                }
                next = (next + k + 1) % splits.size();
                return InputStatus.MORE_AVAILABLE;
            }
        }
        return InputStatus.NOTHING_AVAILABLE;
    }

    @Override
    public List<TopicSplit> snapshotState(long checkpointId) {
        List<TopicSplit> out = new ArrayList<>();
        for (TopicSplit s : splits) {
            out.add(s.copy());
        }
        return out;
    }

    @Override
    public CompletableFuture<Void> isAvailable() {
        CompletableFuture<Void> f = new CompletableFuture<>();
        if (timer == null) {
            f.complete(null);
        } else {
            timer.schedule(() -> f.complete(null), 10, TimeUnit.MILLISECONDS);
        }
        return f;
    }

    @Override
    public void addSplits(List<TopicSplit> added) {
        long now = System.currentTimeMillis();
        for (TopicSplit s : added) {
            // a split restored from a checkpoint: production went on while the job restarted
            if (s.producedUntilMs <= 0) {
                s.producedUntilMs = now;
            }
            splits.add(s);
        }
    }

    @Override
    public void notifyNoMoreSplits() {}

    @Override
    public void close() {
        if (timer != null) {
            timer.shutdownNow();
        }
    }
}
