package fks;

import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.core.io.SimpleVersionedSerializer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Assigns partition p to reader p % parallelism (like Kafka's static assignment). Splits
 * already owned by readers live in the readers' state and are redistributed by Flink on
 * rescale; the enumerator only holds splits not handed out yet (its checkpoint).
 */
final class TopicEnumerator implements SplitEnumerator<TopicSplit, List<TopicSplit>> {
    private final SplitEnumeratorContext<TopicSplit> ctx;
    private final List<TopicSplit> pending;

    TopicEnumerator(SplitEnumeratorContext<TopicSplit> ctx, List<TopicSplit> pending) {
        this.ctx = ctx;
        this.pending = new ArrayList<>(pending);
    }

    @Override
    public void start() {}

    @Override
    public void handleSplitRequest(int subtaskId, String requesterHostname) {}

    @Override
    public void addSplitsBack(List<TopicSplit> splits, int subtaskId) {
        pending.addAll(splits);
        if (ctx.registeredReaders().containsKey(subtaskId)) {
            addReader(subtaskId);
        }
    }

    @Override
    public void addReader(int subtaskId) {
        int parallelism = Math.max(1, ctx.currentParallelism());
        Iterator<TopicSplit> it = pending.iterator();
        while (it.hasNext()) {
            TopicSplit s = it.next();
            if (s.partition % parallelism == subtaskId) {
                ctx.assignSplit(s, subtaskId);
                it.remove();
            }
        }
    }

    @Override
    public List<TopicSplit> snapshotState(long checkpointId) {
        List<TopicSplit> out = new ArrayList<>();
        for (TopicSplit s : pending) {
            out.add(s.copy());
        }
        return out;
    }

    @Override
    public void close() throws IOException {}

    /** Serializer of the enumerator checkpoint (the pending splits). */
    static final class CheckpointSerializer implements SimpleVersionedSerializer<List<TopicSplit>> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(List<TopicSplit> splits) throws IOException {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            DataOutputStream o = new DataOutputStream(b);
            o.writeInt(splits.size());
            for (TopicSplit s : splits) {
                TopicSplit.Serializer.write(o, s);
            }
            o.flush();
            return b.toByteArray();
        }

        @Override
        public List<TopicSplit> deserialize(int version, byte[] bytes) throws IOException {
            if (version != 1) {
                throw new IOException("unknown enumerator checkpoint version " + version);
            }
            DataInputStream i = new DataInputStream(new ByteArrayInputStream(bytes));
            int n = i.readInt();
            List<TopicSplit> out = new ArrayList<>(n);
            for (int k = 0; k < n; k++) {
                out.add(TopicSplit.Serializer.read(i));
            }
            return out;
        }
    }
}
