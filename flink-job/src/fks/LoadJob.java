package fks;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

/**
 * The flink-keda-scaler test/demo job: topic source (N partitions, controllable rate,
 * FLIP-33 pendingRecords) → keyBy → count per key in ValueState (with a configurable cost
 * per record) → discarding sink. Operators carry uids so state survives rescales.
 *
 * <p>Args (all optional, {@code --name value}): {@code --name} job name (fks-load-job),
 * {@code --partitions} splits (8), {@code --rate} initial records/s (100), {@code --rate-file}
 * path re-read every second, {@code --max-parallelism} key groups (128), {@code --keys}
 * distinct keys (= max parallelism; spread over the key groups by {@link BalancedKeys}, evenly
 * when a multiple of the max parallelism), {@code --work}
 * the keyed operator's cost per record ({@link Work}): {@code io:<C>} waits so that one
 * subtask processes at most C records/s (I/O-bound, capacity = parallelism × C),
 * {@code cpu:<N>} or a bare {@code <N>} spins N iterations (CPU-bound), default none.
 */
public final class LoadJob {
    public static void main(String[] args) throws Exception {
        String name = arg(args, "name", "fks-load-job");
        int partitions = Integer.parseInt(arg(args, "partitions", "8"));
        double rate = Double.parseDouble(arg(args, "rate", "100"));
        String rateFile = arg(args, "rate-file", "");
        int maxParallelism = Integer.parseInt(arg(args, "max-parallelism", "128"));
        // one key per key group unless told otherwise
        int keys = Integer.parseInt(arg(args, "keys", String.valueOf(maxParallelism)));
        Work work = Work.parse(arg(args, "work", "none"));
        if (partitions < 1 || rate < 0 || maxParallelism < 1 || maxParallelism > 32768) {
            throw new IllegalArgumentException(
                    "--partitions >= 1, --rate >= 0, --max-parallelism 1..32768");
        }
        BalancedKeys keyOf = new BalancedKeys(keys, maxParallelism, partitions);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        // explicit, so the key table above matches the key groups the job runs with
        env.setMaxParallelism(maxParallelism);
        env.fromSource(new TopicSource(partitions, rate, rateFile), WatermarkStrategy.noWatermarks(), "topic")
                .uid("topic")
                .name("topic")
                .keyBy(keyOf)
                .process(new CountPerKey(work))
                .uid("count")
                .name("count")
                .sinkTo(new DiscardingSink<>())
                .uid("sink")
                .name("sink");
        env.execute(name);
    }

    private static String arg(String[] args, String key, String dflt) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals("--" + key)) {
                return args[i + 1];
            }
        }
        return dflt;
    }

    /** Counts records per key in ValueState after paying the record's {@link Work}. */
    static final class CountPerKey extends KeyedProcessFunction<Long, Long, Long> {
        private static final long serialVersionUID = 1L;
        private final Work work;
        private transient ValueState<Long> count;
        private transient IoPacer pacer;
        private transient long sink;

        CountPerKey(Work work) {
            this.work = work;
        }

        @Override
        public void processElement(Long v, Context ctx, Collector<Long> out) throws Exception {
            if (count == null) {
                count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
                if (work.mode == Work.Mode.IO) {
                    IoPacer p = new IoPacer(work.ioRecordsPerSecond);
                    // the time spent waiting: compare with accumulateBusyTimeMs (Flink counts it as busy)
                    getRuntimeContext().getMetricGroup().gauge("ioWaitMs", (Gauge<Long>) p::parkedMs);
                    pacer = p;
                }
            }
            if (pacer != null) {
                pacer.charge();
            } else {
                sink += work.burn(v);
            }
            Long c = count.value();
            c = c == null ? 1L : c + 1L;
            count.update(c);
            out.collect(c);
        }
    }
}
