package fks;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

/**
 * The flink-keda-scaler test/demo job: topic source (N partitions, controllable rate,
 * FLIP-33 pendingRecords) → keyBy → count per key in ValueState (with configurable CPU work
 * per record) → discarding sink. Operators carry uids so state survives rescales.
 *
 * <p>Args (all optional, {@code --name value}): {@code --name} job name (fks-load-job),
 * {@code --partitions} splits (8), {@code --rate} initial records/s (100), {@code --rate-file}
 * path re-read every second, {@code --keys} distinct keys (128), {@code --work} CPU
 * iterations per record (0).
 */
public final class LoadJob {
    public static void main(String[] args) throws Exception {
        String name = arg(args, "name", "fks-load-job");
        int partitions = Integer.parseInt(arg(args, "partitions", "8"));
        double rate = Double.parseDouble(arg(args, "rate", "100"));
        String rateFile = arg(args, "rate-file", "");
        long keys = Long.parseLong(arg(args, "keys", "128"));
        int work = Integer.parseInt(arg(args, "work", "0"));
        if (partitions < 1 || keys < 1 || work < 0 || rate < 0) {
            throw new IllegalArgumentException("partitions, keys >= 1; work, rate >= 0");
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.fromSource(new TopicSource(partitions, rate, rateFile), WatermarkStrategy.noWatermarks(), "topic")
                .uid("topic")
                .name("topic")
                .keyBy(v -> v % keys)
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

    /** Counts records per key in ValueState after burning {@code work} iterations of CPU. */
    static final class CountPerKey extends KeyedProcessFunction<Long, Long, Long> {
        private static final long serialVersionUID = 1L;
        private final int work;
        private transient ValueState<Long> count;
        private transient long sink;

        CountPerKey(int work) {
            this.work = work;
        }

        @Override
        public void processElement(Long v, Context ctx, Collector<Long> out) throws Exception {
            if (count == null) {
                count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
            }
            long x = v;
            for (int i = 0; i < work; i++) {
                x = x * 6364136223846793005L + 1442695040888963407L;
                x ^= (x >>> 29);
            }
            sink += x;
            Long c = count.value();
            c = c == null ? 1L : c + 1L;
            count.update(c);
            out.collect(c);
        }
    }
}
