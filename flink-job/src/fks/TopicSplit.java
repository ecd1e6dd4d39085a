package fks;

import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.flink.core.io.SimpleVersionedSerializer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;

/**
 * One partition of the modelled topic. Records are "produced" into the partition at the
 * rate schedule (produced grows with wall-clock time, also while the job restarts) and
 * consumed as fast as the pipeline allows; produced - consumed is the partition's lag.
 */
public final class TopicSplit implements SourceSplit {
    final int partition;
    /** Records produced so far (fractional: the rate is spread over all partitions). */
    double produced;
    /** Records consumed (emitted) so far = the committed offset. */
    long consumed;
    /** Wall-clock ms up to which production has been accounted. */
    long producedUntilMs;

    TopicSplit(int partition, double produced, long consumed, long producedUntilMs) {
        this.partition = partition;
        this.produced = produced;
        this.consumed = consumed;
        this.producedUntilMs = producedUntilMs;
    }

    @Override
    public String splitId() {
        return "partition-" + partition;
    }

    long lag() {
        return Math.max(0L, (long) Math.floor(produced) - consumed);
    }

    TopicSplit copy() {
        return new TopicSplit(partition, produced, consumed, producedUntilMs);
    }

    /** Binary serializer (version 1) for splits in checkpoints. */
    static final class Serializer implements SimpleVersionedSerializer<TopicSplit> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(TopicSplit s) throws IOException {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            DataOutputStream o = new DataOutputStream(b);
            write(o, s);
            o.flush();
            return b.toByteArray();
        }

        @Override
        public TopicSplit deserialize(int version, byte[] bytes) throws IOException {
            if (version != 1) {
                throw new IOException("unknown TopicSplit serializer version " + version);
            }
            return read(new DataInputStream(new ByteArrayInputStream(bytes)));
        }

        static void write(DataOutputStream o, TopicSplit s) throws IOException {
            o.writeInt(s.partition);
            o.writeDouble(s.produced);
            o.writeLong(s.consumed);
            o.writeLong(s.producedUntilMs);
        }

        static TopicSplit read(DataInputStream i) throws IOException {
            return new TopicSplit(i.readInt(), i.readDouble(), i.readLong(), i.readLong());
        }
    }
}
