package items;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicInteger;

/** New ObjectIds, as hex: seconds since the epoch, 5 random bytes for this process, a counter. */
final class ObjectIds {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final byte[] PROCESS_UNIQUE = new byte[5];
    private static final AtomicInteger COUNTER = new AtomicInteger(RANDOM.nextInt());

    static {
        RANDOM.nextBytes(PROCESS_UNIQUE);
    }

    private ObjectIds() {}

    static String next() {
        long seconds = System.currentTimeMillis() / 1000;
        int count = COUNTER.getAndIncrement();
        byte[] id = new byte[12];
        for (int i = 0; i < 4; i++) {
            id[i] = (byte) (seconds >>> (24 - 8 * i));
        }
        System.arraycopy(PROCESS_UNIQUE, 0, id, 4, 5);
        for (int i = 0; i < 3; i++) {
            id[9 + i] = (byte) (count >>> (16 - 8 * i));
        }
        return HexFormat.of().formatHex(id);
    }
}
