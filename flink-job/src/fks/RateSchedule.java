package fks;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * The production rate in records/s for the whole topic: a fixed value, or the number in a
 * file re-read at most once per second (so tests can apply a load step at runtime). A
 * missing or unparsable file keeps the last good value.
 */
final class RateSchedule implements Serializable {
    private static final long serialVersionUID = 1L;
    private final double initial;
    private final String file;
    private transient double last = -1;
    private transient long readAtMs;

    RateSchedule(double initial, String file) {
        this.initial = initial;
        this.file = file;
    }

    double current() {
        if (last < 0) {
            last = initial;
        }
        long now = System.currentTimeMillis();
        if (file != null && !file.isEmpty() && now - readAtMs >= 1000) {
            readAtMs = now;
            try {
                Path p = Paths.get(file);
                if (Files.exists(p)) {
                    String s = new String(Files.readAllBytes(p), StandardCharsets.UTF_8).trim();
                    if (!s.isEmpty()) {
                        last = Math.max(0.0, Double.parseDouble(s));
                    }
                }
            } catch (Exception e) {
                // keep the last good value
            }
        }
        return last;
    }
}
