# The bash sample's handler: it records each event it receives in MongoDB by calling the
# mongo-sidecar extension's Data API on localhost with curl. That is all any runtime needs: one
# HTTP POST, with the function's own AWS_SESSION_TOKEN as the apiKey (the sidecar's default check).
#
# Event: any JSON value, e.g. {"source": "billing", "detail": {"invoice": "INV-1", "total": 12.5}}
# Answer: the sidecar's, {"insertedId": "<24 hex characters>"}; a refused call fails the invocation.
# Environment: MONGODB_DATABASE (default "app"), EVENTS_COLLECTION (default "events").

handler() {
  local event="$1"
  local sidecar="http://127.0.0.1:${MONGO_SIDECAR_PORT:-27080}"
  local received_at
  received_at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
  # The event is JSON already, so it is placed in the document as it is; the body is Extended
  # JSON, so {"$date": ...} stores a real date.
  local body
  body=$(printf '{"database":"%s","collection":"%s","document":{"receivedAt":{"$date":"%s"},"event":%s}}' \
    "${MONGODB_DATABASE:-app}" "${EVENTS_COLLECTION:-events}" "$received_at" "$event")
  # --fail-with-body: a 4xx/5xx answer exits non-zero (the invocation fails) and still prints the
  # sidecar's error body, which the bootstrap logs.
  curl -sS --fail-with-body -X POST "$sidecar/action/insertOne" \
    -H 'Content-Type: application/json' -H "apiKey: ${AWS_SESSION_TOKEN}" \
    --data-binary @- <<<"$body"
}
