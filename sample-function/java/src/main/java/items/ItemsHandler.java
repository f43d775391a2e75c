package items;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.jr.ob.JSON;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Sample Lambda function (Java, runtime java21): a small "items" API behind an API Gateway HTTP
 * API (payload format 2.0), storing its items in MongoDB through the mongo-sidecar extension.
 *
 * <pre>
 *   POST   /items               create: {"name": "...", "price": 12.5, "tags": ["..."]}
 *   GET    /items?limit=&amp;tag=   list, newest first
 *   GET    /items/{id}          get one
 *   PATCH  /items/{id}          update any of name, price, tags
 *   DELETE /items/{id}          delete
 * </pre>
 *
 * <p>No MongoDB driver and no client library: {@link SidecarItems} calls the sidecar's Data API on
 * localhost with java.net.http.HttpClient. Environment: MONGODB_DATABASE (default "app"),
 * ITEMS_COLLECTION (default "items"); the extension reads the connection string itself. Answers,
 * including every error message, are the same as the Node.js and Python samples'.
 */
public class ItemsHandler implements RequestStreamHandler {
    static final int NAME_MAX_CHARS = 100;
    static final int TAGS_MAX = 20;
    static final int TAG_MAX_CHARS = 50;
    static final int LIST_DEFAULT_LIMIT = 20;
    static final int LIST_MAX_LIMIT = 100;
    static final List<String> ITEM_FIELDS = List.of("name", "price", "tags");

    private static final Pattern ITEMS_PATH = Pattern.compile("/items(?:/([^/]+))?");
    private static final Pattern LIMIT = Pattern.compile("[0-9]{1,3}");
    private static final Pattern OBJECT_ID = Pattern.compile("[0-9a-fA-F]{24}");
    private static final DateTimeFormatter ISO_MILLIS =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
    /** JSON as JavaScript and Python write it: a null is written, not left out. */
    static final JSON JSON_IO = JSON.std.with(JSON.Feature.WRITE_NULL_PROPERTIES);
    // As JSON.parse and json.loads read a body: the last of duplicate keys wins.
    private static final JSON BODY_JSON = JSON_IO.without(JSON.Feature.FAIL_ON_DUPLICATE_MAP_KEYS);

    /** Route keys as an HTTP API writes them, in this order in an Allow header. */
    private static final List<String> ROUTES =
            List.of("POST /items", "GET /items", "GET /items/{id}", "PATCH /items/{id}", "DELETE /items/{id}");

    private final Items items;

    /**
     * Lambda makes the handler once per execution environment, outside the invocations: the
     * HttpClient keeps its localhost connection to the sidecar alive across them, and the sidecar
     * holds the execution environment's one pooled connection to MongoDB.
     */
    public ItemsHandler() {
        this(SidecarItems.fromEnvironment());
    }

    /** The same handler over another store of items (the benchmark's MongoDB driver one). */
    protected ItemsHandler(Items items) {
        this.items = items;
    }

    /** An answer to send as it is: 4xx for what the caller got wrong. */
    static final class HttpError extends RuntimeException {
        final int statusCode;
        final Map<String, String> headers;

        HttpError(int statusCode, String message, Map<String, String> headers) {
            super(message, null, false, false);
            this.statusCode = statusCode;
            this.headers = headers;
        }

        static HttpError badRequest(String message) {
            return new HttpError(400, message, Map.of());
        }
    }

    /**
     * Any other exception is a bug here: it fails the invocation, so it shows in the function's
     * Errors metric and log (API Gateway answers 500).
     */
    @Override
    public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
        Map<String, Object> event = JSON_IO.mapFrom(input);
        Map<String, Object> answer;
        try {
            answer = route(event, context.getRemainingTimeInMillis());
        } catch (HttpError e) {
            answer = json(e.statusCode, Map.of("error", e.getMessage()), e.headers);
        } catch (SidecarException e) {
            answer = sidecarFailure(e);
        }
        output.write(JSON_IO.asBytes(answer));
    }

    private Map<String, Object> route(Map<String, Object> event, long remainingMs) {
        String method = string(child(child(event, "requestContext"), "http").get("method"), "");
        String path = string(event.get("rawPath"), "");
        Matcher match = ITEMS_PATH.matcher(path);
        if (!match.matches()) {
            throw new HttpError(404, "no route for " + method + " " + path, Map.of());
        }
        // An HTTP API route gives the id as a path parameter; without one, it is in the path.
        Map<String, Object> pathParameters = child(event, "pathParameters");
        String id = pathParameters.containsKey("id") ? string(pathParameters.get("id"), null) : match.group(1);
        String pattern = id == null ? "/items" : "/items/{id}";
        List<String> allowed = new ArrayList<>();
        for (String key : ROUTES) {
            if (!key.endsWith(" " + pattern)) {
                continue;
            }
            String routeMethod = key.substring(0, key.indexOf(' '));
            if (routeMethod.equals(method)) {
                return switch (key) {
                    case "POST /items" -> createItem(event, remainingMs);
                    case "GET /items" -> listItems(event, remainingMs);
                    case "GET /items/{id}" -> getItem(id, remainingMs);
                    case "PATCH /items/{id}" -> updateItem(event, id, remainingMs);
                    default -> deleteItem(id, remainingMs);
                };
            }
            allowed.add(routeMethod);
        }
        String allow = String.join(", ", allowed);
        throw new HttpError(405, method + " is not allowed on " + pattern + "; use " + allow, Map.of("allow", allow));
    }

    // --- the five operations -----------------------------------------------------------------

    private Map<String, Object> createItem(Map<String, Object> event, long remainingMs) {
        Map<String, Object> fields = checkItemFields(parseBody(event), false);
        String now = isoDate(Instant.now());
        // The id is made here, so the answer needs no read back.
        Map<String, Object> document = new LinkedHashMap<>();
        document.put("_id", ObjectIds.next());
        document.put("price", null);
        document.put("tags", List.of());
        document.putAll(fields);
        document.put("createdAt", now);
        document.put("updatedAt", now);
        items.insert(document, remainingMs);
        Map<String, Object> item = toItem(document);
        return json(201, item, Map.of("location", "/items/" + item.get("id")));
    }

    private Map<String, Object> listItems(Map<String, Object> event, long remainingMs) {
        Map<String, Object> query = child(event, "queryStringParameters");
        int limit = parseLimit(query.containsKey("limit") ? string(query.get("limit"), "") : null);
        // A repeated ?tag= arrives joined with commas: it is then one tag, which matches nothing.
        String tag = query.containsKey("tag") ? string(query.get("tag"), "") : null;
        List<Object> list = new ArrayList<>();
        for (Map<String, Object> document : items.newestFirst(tag, limit, remainingMs)) {
            list.add(toItem(document));
        }
        return json(200, Map.of("items", list), Map.of());
    }

    private Map<String, Object> getItem(String id, long remainingMs) {
        Map<String, Object> document = items.find(parseId(id), remainingMs);
        if (document == null) {
            throw notFound(id);
        }
        return json(200, toItem(document), Map.of());
    }

    private Map<String, Object> updateItem(Map<String, Object> event, String id, long remainingMs) {
        String objectId = parseId(id); // a malformed id is refused before the body is even read
        Map<String, Object> fields = checkItemFields(parseBody(event), true);
        Map<String, Object> document = items.update(objectId, fields, isoDate(Instant.now()), remainingMs);
        if (document == null) {
            throw notFound(id);
        }
        return json(200, toItem(document), Map.of());
    }

    private Map<String, Object> deleteItem(String id, long remainingMs) {
        if (!items.delete(parseId(id), remainingMs)) {
            throw notFound(id);
        }
        return Map.of("statusCode", 204);
    }

    // --- input -------------------------------------------------------------------------------

    private static Object parseBody(Map<String, Object> event) {
        Object body = event.get("body");
        if (!(body instanceof String text) || text.isEmpty()) {
            throw HttpError.badRequest("a JSON body is required");
        }
        try {
            // API Gateway base64-encodes bodies it does not take for text (by their content type).
            if (Boolean.TRUE.equals(event.get("isBase64Encoded"))) {
                text = StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(Base64.getDecoder().decode(text)))
                        .toString();
            }
            return readJson(text);
        } catch (IOException | IllegalArgumentException e) { // CharacterCodingException is an IOException
            throw HttpError.badRequest("the body is not valid JSON");
        }
    }

    /** One JSON value and nothing after it; objects keep their keys' order. */
    private static Object readJson(String text) throws IOException {
        try (JsonParser parser = BODY_JSON.getStreamingFactory().createParser(text)) {
            Object value = BODY_JSON.anyFrom(parser);
            if (parser.nextToken() != null) {
                throw new JsonParseException(parser, "data after the JSON value");
            }
            return value;
        }
    }

    /**
     * The item fields of a create (name required) or an update (any of them, at least one), or a
     * 400 that lists every problem found.
     */
    static Map<String, Object> checkItemFields(Object parsed, boolean partial) {
        if (!(parsed instanceof Map<?, ?> map)) {
            throw HttpError.badRequest("the body must be a JSON object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> body = (Map<String, Object>) map;
        List<String> unknown = body.keySet().stream().filter(key -> !ITEM_FIELDS.contains(key)).toList();
        if (!unknown.isEmpty()) {
            throw HttpError.badRequest("unknown field(s) " + String.join(", ", unknown) + ": an item has only "
                    + String.join(", ", ITEM_FIELDS));
        }
        if (partial && body.isEmpty()) {
            throw HttpError.badRequest("nothing to update: give any of " + String.join(", ", ITEM_FIELDS));
        }

        Map<String, Object> fields = new LinkedHashMap<>();
        List<String> problems = new ArrayList<>();
        if (!partial && !body.containsKey("name")) {
            problems.add("name is required");
        }
        if (body.containsKey("name")) {
            if (isText(body.get("name"), NAME_MAX_CHARS)) {
                fields.put("name", body.get("name"));
            } else {
                problems.add("name must be a non-blank string of at most " + NAME_MAX_CHARS + " characters");
            }
        }
        if (body.containsKey("price")) {
            Object price = body.get("price");
            double value = price instanceof Number number ? number.doubleValue() : Double.NaN;
            if (Double.isFinite(value) && value >= 0) {
                fields.put("price", javaScriptNumber(value));
            } else {
                problems.add("price must be a non-negative number");
            }
        }
        if (body.containsKey("tags")) {
            if (body.get("tags") instanceof List<?> tags && tags.size() <= TAGS_MAX
                    && tags.stream().allMatch(tag -> isText(tag, TAG_MAX_CHARS))) {
                fields.put("tags", tags);
            } else {
                problems.add("tags must be an array of at most " + TAGS_MAX + " non-blank strings of at most "
                        + TAG_MAX_CHARS + " characters");
            }
        }
        if (!problems.isEmpty()) {
            throw HttpError.badRequest(String.join("; ", problems));
        }
        return fields;
    }

    /** A non-blank string of at most {@code max} characters (code points, as Python counts them). */
    private static boolean isText(Object value, int max) {
        return value instanceof String text && !text.isBlank() && text.codePointCount(0, text.length()) <= max;
    }

    /** A number as JavaScript holds it: a double, written without ".0" when it is whole. */
    private static Object javaScriptNumber(double value) {
        boolean whole = value == Math.rint(value) && Math.abs(value) <= 9007199254740992.0;
        return whole ? (Object) (long) value : (Object) value;
    }

    private static int parseLimit(String text) {
        if (text == null) {
            return LIST_DEFAULT_LIMIT;
        }
        int limit = LIMIT.matcher(text).matches() ? Integer.parseInt(text) : 0;
        if (limit < 1 || limit > LIST_MAX_LIMIT) {
            throw HttpError.badRequest("limit must be an integer from 1 to " + LIST_MAX_LIMIT);
        }
        return limit;
    }

    private static String parseId(String id) {
        if (id == null || !OBJECT_ID.matcher(id).matches()) {
            throw HttpError.badRequest("an item id is 24 hexadecimal characters");
        }
        return id.toLowerCase();
    }

    private static HttpError notFound(String id) {
        return new HttpError(404, "no item with id " + id, Map.of());
    }

    // --- output ------------------------------------------------------------------------------

    /** What the API answers for a stored item: {@link Items} gives ids as hex, dates ISO-8601. */
    private static Map<String, Object> toItem(Map<String, Object> document) {
        Map<String, Object> item = new LinkedHashMap<>();
        item.put("id", document.get("_id"));
        item.put("name", document.get("name"));
        item.put("price", document.get("price"));
        item.put("tags", document.get("tags") == null ? List.of() : document.get("tags"));
        item.put("createdAt", document.get("createdAt") instanceof String date ? date : null);
        item.put("updatedAt", document.get("updatedAt") instanceof String date ? date : null);
        return item;
    }

    /** JavaScript's toISOString(): UTC, milliseconds and "Z". */
    static String isoDate(Instant moment) {
        return ISO_MILLIS.format(moment.truncatedTo(ChronoUnit.MILLIS));
    }

    private static Map<String, Object> json(int statusCode, Object body, Map<String, String> headers) {
        Map<String, String> allHeaders = new LinkedHashMap<>();
        allHeaders.put("content-type", "application/json");
        allHeaders.putAll(headers);
        try {
            return Map.of("statusCode", statusCode, "headers", allHeaders, "body", JSON_IO.asString(body));
        } catch (IOException e) {
            throw new IllegalStateException("an answer of maps, lists, strings and numbers is always JSON", e);
        }
    }

    /**
     * The sidecar answered with an error, or could not be reached. Unreachable (status 0) or a 5xx
     * (the database is down or slow, the sidecar is overloaded or still connecting) is worth a
     * retry: 503. Any other refusal means this function sent something wrong: 500. The details go
     * to the log, only the error code to the caller.
     */
    private static Map<String, Object> sidecarFailure(SidecarException e) {
        System.err.println("mongo-sidecar call failed: status=" + e.status + " code=" + e.code + ": " + e.getMessage());
        if (e.status == 0 || e.status >= 500) {
            Map<String, String> headers = e.retryAfter == null ? Map.of() : Map.of("retry-after", e.retryAfter);
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("error", "the database is unavailable; try again shortly");
            body.put("code", e.code);
            return json(503, body, headers);
        }
        return json(500, Map.of("error", "internal error"), Map.of());
    }

    // --- reading the event -------------------------------------------------------------------

    @SuppressWarnings("unchecked")
    private static Map<String, Object> child(Map<String, Object> parent, String key) {
        return parent.get(key) instanceof Map<?, ?> map ? (Map<String, Object>) map : Map.of();
    }

    private static String string(Object value, String fallback) {
        return value instanceof String text ? text : fallback;
    }
}
