package items;

import static com.mongodb.client.model.Filters.eq;

import com.mongodb.client.MongoClients;
import com.mongodb.client.MongoCollection;
import com.mongodb.client.model.FindOneAndUpdateOptions;
import com.mongodb.client.model.ReturnDocument;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bson.Document;
import org.bson.types.ObjectId;

/**
 * The items in one collection through the MongoDB Java driver, as a function without the sidecar
 * would keep them: the client is made once per execution environment, with the handler, and
 * connects at its first operation. Items come back in the form {@link Items} describes.
 */
public final class DriverItems implements Items {
    private final MongoCollection<Document> collection;

    DriverItems(String uri, String database, String collection) {
        this.collection = MongoClients.create(uri).getDatabase(database).getCollection(collection);
    }

    static DriverItems fromEnvironment() {
        return new DriverItems(System.getenv("MONGODB_URI"), env("MONGODB_DATABASE", "app"),
                env("ITEMS_COLLECTION", "items"));
    }

    @Override
    public void insert(Map<String, Object> item, long remainingMs) {
        Document document = new Document(item);
        document.put("_id", new ObjectId((String) item.get("_id")));
        document.put("createdAt", date(item.get("createdAt")));
        document.put("updatedAt", date(item.get("updatedAt")));
        collection.insertOne(document);
    }

    @Override
    public List<Map<String, Object>> newestFirst(String tag, int limit, long remainingMs) {
        List<Map<String, Object>> items = new ArrayList<>();
        collection.find(tag == null ? new Document() : eq("tags", tag))
                .sort(new Document("createdAt", -1).append("_id", -1))
                .limit(limit)
                .forEach(document -> items.add(stored(document)));
        return items;
    }

    @Override
    public Map<String, Object> find(String id, long remainingMs) {
        return stored(collection.find(eq("_id", new ObjectId(id))).first());
    }

    @Override
    public Map<String, Object> update(String id, Map<String, Object> fields, String updatedAt, long remainingMs) {
        Document set = new Document(fields).append("updatedAt", date(updatedAt));
        return stored(collection.findOneAndUpdate(eq("_id", new ObjectId(id)), new Document("$set", set),
                new FindOneAndUpdateOptions().returnDocument(ReturnDocument.AFTER)));
    }

    @Override
    public boolean delete(String id, long remainingMs) {
        return collection.deleteOne(eq("_id", new ObjectId(id))).getDeletedCount() > 0;
    }

    private static Date date(Object iso) {
        return Date.from(Instant.parse((String) iso));
    }

    /** A stored document with its ObjectId as hex and its dates as ISO-8601, or null. */
    private static Map<String, Object> stored(Document document) {
        if (document == null) {
            return null;
        }
        Map<String, Object> item = new LinkedHashMap<>(document);
        item.put("_id", document.getObjectId("_id").toHexString());
        for (String field : List.of("createdAt", "updatedAt")) {
            if (document.get(field) instanceof Date date) {
                item.put(field, ItemsHandler.isoDate(date.toInstant()));
            }
        }
        return item;
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }
}
