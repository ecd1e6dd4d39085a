package fks;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.core.io.SimpleVersionedSerializer;

import java.util.ArrayList;
import java.util.List;

/**
 * A FLIP-27 source modelling a topic with N partitions (splits): records are produced at a
 * controllable rate and consumed as fast as the job allows. Unbounded.
 */
public final class TopicSource
        implements Source<Long, TopicSplit, List<TopicSplit>>, ResultTypeQueryable<Long> {
    private static final long serialVersionUID = 1L;
    private final int partitions;
    private final RateSchedule rate;

    public TopicSource(int partitions, double initialRate, String rateFile) {
        this.partitions = partitions;
        this.rate = new RateSchedule(initialRate, rateFile);
    }

    @Override
    public Boundedness getBoundedness() {
        return Boundedness.CONTINUOUS_UNBOUNDED;
    }

    @Override
    public SourceReader<Long, TopicSplit> createReader(SourceReaderContext ctx) {
        return new TopicReader(ctx, rate, partitions);
    }

    @Override
    public SplitEnumerator<TopicSplit, List<TopicSplit>> createEnumerator(
            SplitEnumeratorContext<TopicSplit> ctx) {
        List<TopicSplit> all = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            all.add(new TopicSplit(p, 0.0, 0L, 0L));
        }
        return new TopicEnumerator(ctx, all);
    }

    @Override
    public SplitEnumerator<TopicSplit, List<TopicSplit>> restoreEnumerator(
            SplitEnumeratorContext<TopicSplit> ctx, List<TopicSplit> checkpoint) {
        return new TopicEnumerator(ctx, checkpoint);
    }

    @Override
    public SimpleVersionedSerializer<TopicSplit> getSplitSerializer() {
        return new TopicSplit.Serializer();
    }

    @Override
    public SimpleVersionedSerializer<List<TopicSplit>> getEnumeratorCheckpointSerializer() {
        return new TopicEnumerator.CheckpointSerializer();
    }

    @Override
    public TypeInformation<Long> getProducedType() {
        return Types.LONG;
    }
}
