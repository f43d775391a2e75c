package items;

import java.util.List;
import java.util.Map;

/**
 * Where the items are kept. A stored item is a map as the sidecar answers it in plain JSON: "_id"
 * the ObjectId's hex string, "createdAt" and "updatedAt" ISO-8601 strings. {@link SidecarItems}
 * is the one the function uses; the benchmark runs the same handler over the MongoDB driver.
 *
 * <p>Each call is bounded by {@code remainingMs}, the time the invocation has left.
 */
public interface Items {
    /** Stores the item; its "_id" and dates are given. */
    void insert(Map<String, Object> item, long remainingMs);

    /** At most {@code limit} items, newest first, only those tagged {@code tag} unless it is null. */
    List<Map<String, Object>> newestFirst(String tag, int limit, long remainingMs);

    /** The item, or null. */
    Map<String, Object> find(String id, long remainingMs);

    /** Sets {@code fields} and "updatedAt" on the item; the item after the update, or null. */
    Map<String, Object> update(String id, Map<String, Object> fields, String updatedAt, long remainingMs);

    /** Whether there was such an item to delete. */
    boolean delete(String id, long remainingMs);
}
