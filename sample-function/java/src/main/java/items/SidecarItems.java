package items;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;

/**
 * The items in one collection, through the sidecar's Data API: each call is one POST to
 * http://127.0.0.1:27080/action/NAME with the function's own AWS_SESSION_TOKEN as the apiKey (the
 * sidecar's default check). The answers are plain JSON: ObjectIds as hex, dates as ISO-8601.
 */
public final class SidecarItems implements Items {
    private final HttpClient http = plainHttpClient();
    private final String actionUrl;
    private final String database;
    private final String collection;

    SidecarItems(int port, String database, String collection) {
        this.actionUrl = "http://127.0.0.1:" + port + "/action/";
        this.database = database;
        this.collection = collection;
    }

    /**
     * A client for plain HTTP on loopback: HTTP/1.1 (the default, HTTP/2, would try an h2c upgrade
     * on each new connection), and an SSL context never initialised, as no TLS is spoken: the
     * default one would load the JDK's trust store at the cold start (about 400 classes).
     */
    private static HttpClient plainHttpClient() {
        try {
            return HttpClient.newBuilder()
                    .version(HttpClient.Version.HTTP_1_1)
                    .sslContext(SSLContext.getInstance("TLS"))
                    .sslParameters(new SSLParameters())
                    .build();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("a JDK without TLS", e);
        }
    }

    static SidecarItems fromEnvironment() {
        return new SidecarItems(Integer.parseInt(env("MONGO_SIDECAR_PORT", "27080")),
                env("MONGODB_DATABASE", "app"), env("ITEMS_COLLECTION", "items"));
    }

    @Override
    public void insert(Map<String, Object> item, long remainingMs) {
        Map<String, Object> document = new LinkedHashMap<>(item);
        document.put("_id", Map.of("$oid", item.get("_id")));
        document.put("createdAt", Map.of("$date", item.get("createdAt")));
        document.put("updatedAt", Map.of("$date", item.get("updatedAt")));
        call("insertOne", Map.of("document", document), remainingMs);
    }

    @Override
    public List<Map<String, Object>> newestFirst(String tag, int limit, long remainingMs) {
        Map<String, Object> sort = new LinkedHashMap<>(); // the order of a sort's keys matters
        sort.put("createdAt", -1);
        sort.put("_id", -1);
        Map<String, Object> filter = tag == null ? Map.of() : Map.of("tags", tag);
        Object documents = call("find", Map.of("filter", filter, "sort", sort, "limit", limit), remainingMs)
                .get("documents");
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> list = (List<Map<String, Object>>) documents;
        return list;
    }

    @Override
    public Map<String, Object> find(String id, long remainingMs) {
        return document(call("findOne", Map.of("filter", byId(id)), remainingMs));
    }

    @Override
    public Map<String, Object> update(String id, Map<String, Object> fields, String updatedAt, long remainingMs) {
        Map<String, Object> set = new LinkedHashMap<>(fields);
        set.put("updatedAt", Map.of("$date", updatedAt));
        Map<String, Object> request = Map.of("filter", byId(id), "update", Map.of("$set", set),
                "returnDocument", "after");
        return document(call("findOneAndUpdate", request, remainingMs));
    }

    @Override
    public boolean delete(String id, long remainingMs) {
        Object deleted = call("deleteOne", Map.of("filter", byId(id)), remainingMs).get("deletedCount");
        return ((Number) deleted).longValue() > 0;
    }

    private static Map<String, Object> byId(String id) {
        return Map.of("_id", Map.of("$oid", id));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> document(Map<String, Object> answer) {
        return (Map<String, Object>) answer.get("document");
    }

    /** One action; its answer, or a SidecarException. */
    private Map<String, Object> call(String action, Map<String, Object> fields, long remainingMs) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("database", database);
        body.put("collection", collection);
        body.putAll(fields);
        HttpResponse<byte[]> response;
        try {
            HttpRequest request = HttpRequest.newBuilder(URI.create(actionUrl + action))
                    .header("Content-Type", "application/json")
                    .header("apiKey", token())
                    .timeout(Duration.ofMillis(Math.max(remainingMs, 1)))
                    .POST(HttpRequest.BodyPublishers.ofByteArray(ItemsHandler.JSON_IO.asBytes(body)))
                    .build();
            response = http.send(request, HttpResponse.BodyHandlers.ofByteArray());
        } catch (IOException e) {
            throw new SidecarException(0, "SidecarUnreachable", causes(e), null);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SidecarException(0, "SidecarUnreachable", "interrupted", null);
        }
        Map<String, Object> answer;
        try {
            answer = ItemsHandler.JSON_IO.mapFrom(response.body());
        } catch (IOException e) {
            answer = Map.of();
        }
        if (response.statusCode() != 200) {
            Object code = answer.get("error_code");
            throw new SidecarException(response.statusCode(),
                    code instanceof String text ? text : "HTTP" + response.statusCode(),
                    String.valueOf(answer.get("error")),
                    response.headers().firstValue("Retry-After").orElse(null));
        }
        return answer;
    }

    private static String token() {
        return env("MONGO_SIDECAR_TOKEN", System.getenv("AWS_SESSION_TOKEN"));
    }

    /** The exception and its causes: HttpClient's ConnectException says "Connection refused" only in its cause. */
    private static String causes(Throwable error) {
        StringBuilder text = new StringBuilder(error.toString());
        for (Throwable cause = error.getCause(); cause != null; cause = cause.getCause()) {
            text.append(": ").append(cause);
        }
        return text.toString();
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }
}
