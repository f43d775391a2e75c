// Sample Lambda function (Go, runtime provided.al2023): a small "items" API behind an API Gateway
// HTTP API (payload format 2.0), storing its items in MongoDB through the mongo-sidecar extension.
//
//	POST   /items               create: {"name": "...", "price": 12.5, "tags": ["..."]}
//	GET    /items?limit=&tag=   list, newest first
//	GET    /items/{id}          get one
//	PATCH  /items/{id}          update any of name, price, tags
//	DELETE /items/{id}          delete
//
// No MongoDB driver and no client library: each operation is one HTTP POST to the sidecar's Data
// API on localhost with net/http. The binary is its own runtime (aws-lambda-go), deployed as
// `bootstrap`. Environment: MONGODB_DATABASE (default "app"), ITEMS_COLLECTION (default "items");
// the extension reads the connection string itself. Answers, including every error message, are
// the same as the Node.js and Python samples'.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

const (
	nameMaxChars     = 100
	tagsMax          = 20
	tagMaxChars      = 50
	listDefaultLimit = 20
	listMaxLimit     = 100
)

var itemFields = []string{"name", "price", "tags"}

// Created once per execution environment, outside the handler: the http.Client keeps its
// localhost connection to the sidecar alive across invocations, and the sidecar holds the
// execution environment's one pooled connection to MongoDB.
var items = newSidecarCollection(envOr("MONGODB_DATABASE", "app"), envOr("ITEMS_COLLECTION", "items"))

func main() {
	lambda.Start(handler)
}

// Route keys as an HTTP API writes them, in this order in an Allow header; route works out the
// same key from the path, so the function also serves a Function URL or a direct invocation.
var routes = []struct {
	key    string
	action func(context.Context, events.APIGatewayV2HTTPRequest, string) (response, error)
}{
	{"POST /items", createItem},
	{"GET /items", listItems},
	{"GET /items/{id}", getItem},
	{"PATCH /items/{id}", updateItem},
	{"DELETE /items/{id}", deleteItem},
}

var (
	itemsPath = regexp.MustCompile(`^/items(?:/([^/]+))?$`)
	limitText = regexp.MustCompile(`^[0-9]{1,3}$`)
	objectID  = regexp.MustCompile(`^[0-9a-fA-F]{24}$`)
)

type response = events.APIGatewayV2HTTPResponse

// httpError is an answer to send as it is: 4xx for what the caller got wrong.
type httpError struct {
	status  int
	message string
	headers map[string]string
}

func (e *httpError) Error() string { return e.message }

func badRequest(message string) error { return &httpError{status: 400, message: message} }

// handler answers every request; an error it returns is a bug here, and fails the invocation so
// that it shows in the function's Errors metric and log (API Gateway answers 500).
func handler(ctx context.Context, event events.APIGatewayV2HTTPRequest) (response, error) {
	answer, err := route(ctx, event)
	var refused *httpError
	var failed *sidecarError
	switch {
	case errors.As(err, &refused):
		return jsonResponse(refused.status, map[string]string{"error": refused.message}, refused.headers), nil
	case errors.As(err, &failed):
		return sidecarFailure(failed), nil
	}
	return answer, err
}

func route(ctx context.Context, event events.APIGatewayV2HTTPRequest) (response, error) {
	method, path := event.RequestContext.HTTP.Method, event.RawPath
	match := itemsPath.FindStringSubmatch(path)
	if match == nil {
		return response{}, &httpError{status: 404, message: fmt.Sprintf("no route for %s %s", method, path)}
	}
	// An HTTP API route gives the id as a path parameter; without one, it is in the path.
	id, hasID := event.PathParameters["id"]
	if !hasID && match[1] != "" {
		id, hasID = match[1], true
	}
	pattern := "/items"
	if hasID {
		pattern = "/items/{id}"
	}
	var allowed []string
	for _, r := range routes {
		routeMethod, routePattern, _ := strings.Cut(r.key, " ")
		if routePattern != pattern {
			continue
		}
		if routeMethod == method {
			return r.action(ctx, event, id)
		}
		allowed = append(allowed, routeMethod)
	}
	allow := strings.Join(allowed, ", ")
	return response{}, &httpError{status: 405, message: fmt.Sprintf("%s is not allowed on %s; use %s", method, pattern, allow),
		headers: map[string]string{"allow": allow}}
}

// --- the five operations ---------------------------------------------------------------------

func createItem(ctx context.Context, event events.APIGatewayV2HTTPRequest, _ string) (response, error) {
	body, err := parseBody(event)
	if err != nil {
		return response{}, err
	}
	fields, err := checkItemFields(body, false)
	if err != nil {
		return response{}, err
	}
	now := isoDate(time.Now())
	// The id is made here, so the answer needs no read back.
	document := storedItem{ID: newObjectID(), Name: fields["name"], Price: fields["price"], Tags: fields["tags"],
		CreatedAt: now, UpdatedAt: now}
	if document.Tags == nil {
		document.Tags = []string{}
	}
	if err := items.call(ctx, "insertOne", map[string]any{"document": document.asExtendedJSON()}, nil); err != nil {
		return response{}, err
	}
	item := toItem(document)
	return jsonResponse(201, item, map[string]string{"location": "/items/" + item.ID}), nil
}

func listItems(ctx context.Context, event events.APIGatewayV2HTTPRequest, _ string) (response, error) {
	query := event.QueryStringParameters
	limit, err := parseLimit(query)
	if err != nil {
		return response{}, err
	}
	// A repeated ?tag= arrives joined with commas: it is then one tag, which matches nothing.
	filter := map[string]any{}
	if tag, ok := query["tag"]; ok {
		filter["tags"] = tag
	}
	var answer struct {
		Documents []storedItem `json:"documents"`
	}
	// Written out: a Go map would sort the keys, and the order of a sort's keys matters.
	newestFirst := json.RawMessage(`{"createdAt": -1, "_id": -1}`)
	err = items.call(ctx, "find", map[string]any{"filter": filter, "sort": newestFirst, "limit": limit}, &answer)
	if err != nil {
		return response{}, err
	}
	list := make([]item, 0, len(answer.Documents))
	for _, document := range answer.Documents {
		list = append(list, toItem(document))
	}
	return jsonResponse(200, map[string]any{"items": list}, nil), nil
}

func getItem(ctx context.Context, _ events.APIGatewayV2HTTPRequest, id string) (response, error) {
	oid, err := parseID(id)
	if err != nil {
		return response{}, err
	}
	var answer struct {
		Document *storedItem `json:"document"`
	}
	if err := items.call(ctx, "findOne", map[string]any{"filter": byID(oid)}, &answer); err != nil {
		return response{}, err
	}
	if answer.Document == nil {
		return response{}, notFound(id)
	}
	return jsonResponse(200, toItem(*answer.Document), nil), nil
}

func updateItem(ctx context.Context, event events.APIGatewayV2HTTPRequest, id string) (response, error) {
	oid, err := parseID(id) // a malformed id is refused before the body is even read
	if err != nil {
		return response{}, err
	}
	body, err := parseBody(event)
	if err != nil {
		return response{}, err
	}
	fields, err := checkItemFields(body, true)
	if err != nil {
		return response{}, err
	}
	set := map[string]any{"updatedAt": map[string]string{"$date": isoDate(time.Now())}}
	for name, value := range fields {
		set[name] = value
	}
	var answer struct {
		Document *storedItem `json:"document"`
	}
	request := map[string]any{"filter": byID(oid), "update": map[string]any{"$set": set}, "returnDocument": "after"}
	if err := items.call(ctx, "findOneAndUpdate", request, &answer); err != nil {
		return response{}, err
	}
	if answer.Document == nil {
		return response{}, notFound(id)
	}
	return jsonResponse(200, toItem(*answer.Document), nil), nil
}

func deleteItem(ctx context.Context, _ events.APIGatewayV2HTTPRequest, id string) (response, error) {
	oid, err := parseID(id)
	if err != nil {
		return response{}, err
	}
	var answer struct {
		DeletedCount int64 `json:"deletedCount"`
	}
	if err := items.call(ctx, "deleteOne", map[string]any{"filter": byID(oid)}, &answer); err != nil {
		return response{}, err
	}
	if answer.DeletedCount == 0 {
		return response{}, notFound(id)
	}
	return response{StatusCode: 204}, nil
}

// --- input -----------------------------------------------------------------------------------

// jsonObject is a JSON object with its keys in the order they came, as JavaScript and Python
// keep them (error messages list unknown fields in that order).
type jsonObject struct {
	keys   []string
	values map[string]any
}

func parseBody(event events.APIGatewayV2HTTPRequest) (any, error) {
	if event.Body == "" {
		return nil, badRequest("a JSON body is required")
	}
	text := []byte(event.Body)
	// API Gateway base64-encodes bodies it does not take for text (by their content type).
	if event.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(event.Body)
		if err != nil || !utf8.Valid(decoded) {
			return nil, badRequest("the body is not valid JSON")
		}
		text = decoded
	}
	value, err := decodeJSON(text)
	if err != nil {
		return nil, badRequest("the body is not valid JSON")
	}
	return value, nil
}

// decodeJSON reads one JSON value and nothing after it: numbers as json.Number, and an object at
// the top as a jsonObject.
func decodeJSON(text []byte) (any, error) {
	decoder := json.NewDecoder(bytes.NewReader(text))
	decoder.UseNumber()
	var value any
	if err := decoder.Decode(&value); err != nil {
		return nil, err
	}
	if _, err := decoder.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	object, isObject := value.(map[string]any)
	if !isObject {
		return value, nil
	}
	keys, err := objectKeys(text)
	if err != nil {
		return nil, err
	}
	return jsonObject{keys: keys, values: object}, nil
}

// objectKeys lists the keys of the object `text` holds, each once, in their first place.
func objectKeys(text []byte) ([]string, error) {
	decoder := json.NewDecoder(bytes.NewReader(text))
	if _, err := decoder.Token(); err != nil { // the opening brace
		return nil, err
	}
	var keys []string
	seen := map[string]bool{}
	for decoder.More() {
		token, err := decoder.Token()
		if err != nil {
			return nil, err
		}
		key := token.(string)
		if !seen[key] {
			seen[key] = true
			keys = append(keys, key)
		}
		var skipped json.RawMessage
		if err := decoder.Decode(&skipped); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// checkItemFields gives the item fields of a create (name required) or an update (any of them,
// at least one), or a 400 that lists every problem found.
func checkItemFields(body any, partial bool) (map[string]any, error) {
	object, isObject := body.(jsonObject)
	if !isObject {
		return nil, badRequest("the body must be a JSON object")
	}
	var unknown []string
	for _, key := range object.keys {
		if !slices.Contains(itemFields, key) {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		return nil, badRequest(fmt.Sprintf("unknown field(s) %s: an item has only %s",
			strings.Join(unknown, ", "), strings.Join(itemFields, ", ")))
	}
	if partial && len(object.keys) == 0 {
		return nil, badRequest("nothing to update: give any of " + strings.Join(itemFields, ", "))
	}

	fields := map[string]any{}
	var problems []string
	name, hasName := object.values["name"]
	if !partial && !hasName {
		problems = append(problems, "name is required")
	}
	if hasName {
		if text, ok := name.(string); ok && isText(text, nameMaxChars) {
			fields["name"] = text
		} else {
			problems = append(problems, fmt.Sprintf("name must be a non-blank string of at most %d characters", nameMaxChars))
		}
	}
	if price, hasPrice := object.values["price"]; hasPrice {
		if number, ok := nonNegativeNumber(price); ok {
			fields["price"] = number
		} else {
			problems = append(problems, "price must be a non-negative number")
		}
	}
	if tags, hasTags := object.values["tags"]; hasTags {
		if list, ok := tagList(tags); ok {
			fields["tags"] = list
		} else {
			problems = append(problems, fmt.Sprintf(
				"tags must be an array of at most %d non-blank strings of at most %d characters", tagsMax, tagMaxChars))
		}
	}
	if len(problems) > 0 {
		return nil, badRequest(strings.Join(problems, "; "))
	}
	return fields, nil
}

// isText: a non-blank string of at most max characters (code points, as Python counts them).
func isText(value string, max int) bool {
	return strings.TrimSpace(value) != "" && utf8.RuneCountInString(value) <= max
}

// nonNegativeNumber reads a price as JavaScript would: a float64, where a number too large for
// one is infinite and so refused.
func nonNegativeNumber(value any) (float64, bool) {
	number, isNumber := value.(json.Number)
	if !isNumber {
		return 0, false
	}
	parsed, err := strconv.ParseFloat(string(number), 64)
	if err != nil || math.IsInf(parsed, 0) || parsed < 0 {
		return 0, false
	}
	return parsed, true
}

func tagList(value any) ([]string, bool) {
	list, isList := value.([]any)
	if !isList || len(list) > tagsMax {
		return nil, false
	}
	tags := make([]string, 0, len(list))
	for _, entry := range list {
		tag, ok := entry.(string)
		if !ok || !isText(tag, tagMaxChars) {
			return nil, false
		}
		tags = append(tags, tag)
	}
	return tags, true
}

func parseLimit(query map[string]string) (int, error) {
	text, given := query["limit"]
	if !given {
		return listDefaultLimit, nil
	}
	limit := 0
	if limitText.MatchString(text) {
		limit, _ = strconv.Atoi(text)
	}
	if limit < 1 || limit > listMaxLimit {
		return 0, badRequest(fmt.Sprintf("limit must be an integer from 1 to %d", listMaxLimit))
	}
	return limit, nil
}

func parseID(id string) (string, error) {
	if !objectID.MatchString(id) {
		return "", badRequest("an item id is 24 hexadecimal characters")
	}
	return strings.ToLower(id), nil
}

func notFound(id string) error {
	return &httpError{status: 404, message: "no item with id " + id}
}

func byID(oid string) map[string]any {
	return map[string]any{"_id": map[string]string{"$oid": oid}}
}

// --- output ----------------------------------------------------------------------------------

// storedItem is an item as the sidecar answers it in plain JSON: the ObjectId as its hex string,
// dates as ISO-8601 strings (milliseconds, "Z").
type storedItem struct {
	ID        string `json:"_id"`
	Name      any    `json:"name"`
	Price     any    `json:"price"`
	Tags      any    `json:"tags"`
	CreatedAt any    `json:"createdAt"`
	UpdatedAt any    `json:"updatedAt"`
}

// asExtendedJSON is the document to insert, with its id and dates typed as Extended JSON.
func (s storedItem) asExtendedJSON() any {
	return struct {
		ID        map[string]string `json:"_id"`
		Name      any               `json:"name"`
		Price     any               `json:"price"`
		Tags      any               `json:"tags"`
		CreatedAt map[string]any    `json:"createdAt"`
		UpdatedAt map[string]any    `json:"updatedAt"`
	}{map[string]string{"$oid": s.ID}, s.Name, s.Price, s.Tags,
		map[string]any{"$date": s.CreatedAt}, map[string]any{"$date": s.UpdatedAt}}
}

type item struct {
	ID        string `json:"id"`
	Name      any    `json:"name"`
	Price     any    `json:"price"`
	Tags      any    `json:"tags"`
	CreatedAt any    `json:"createdAt"`
	UpdatedAt any    `json:"updatedAt"`
}

func toItem(document storedItem) item {
	tags := document.Tags
	if tags == nil {
		tags = []any{}
	}
	return item{ID: document.ID, Name: document.Name, Price: document.Price, Tags: tags,
		CreatedAt: dateOrNull(document.CreatedAt), UpdatedAt: dateOrNull(document.UpdatedAt)}
}

func dateOrNull(value any) any {
	if date, isString := value.(string); isString {
		return date
	}
	return nil
}

// isoDate is JavaScript's toISOString(): UTC, milliseconds and "Z".
func isoDate(moment time.Time) string {
	return moment.UTC().Format("2006-01-02T15:04:05.000Z")
}

func jsonResponse(status int, body any, headers map[string]string) response {
	text, err := json.Marshal(body)
	if err != nil {
		panic(err) // only strings, numbers, lists and maps: cannot fail
	}
	all := map[string]string{"content-type": "application/json"}
	for name, value := range headers {
		all[name] = value
	}
	return response{StatusCode: status, Headers: all, Body: string(text)}
}

// sidecarFailure: the sidecar answered with an error, or could not be reached. Unreachable
// (status 0) or a 5xx (the database is down or slow, the sidecar is overloaded or still
// connecting) is worth a retry: 503. Any other refusal means this function sent something wrong:
// 500. The details go to the log, only the error code to the caller.
func sidecarFailure(err *sidecarError) response {
	log.Printf("mongo-sidecar call failed: status=%d code=%s: %s", err.status, err.code, err.message)
	if err.status == 0 || err.status >= 500 {
		headers := map[string]string{}
		if err.retryAfter != "" {
			headers["retry-after"] = err.retryAfter
		}
		return jsonResponse(503, map[string]string{"error": "the database is unavailable; try again shortly",
			"code": err.code}, headers)
	}
	return jsonResponse(500, map[string]string{"error": "internal error"}, nil)
}

// --- the sidecar -----------------------------------------------------------------------------

// sidecarCollection calls the sidecar's Data API for one collection: POST /action/NAME with the
// function's own AWS_SESSION_TOKEN as the apiKey (the sidecar's default check).
type sidecarCollection struct {
	client     *http.Client
	actionURL  string
	database   string
	collection string
}

type sidecarError struct {
	status     int // 0: the sidecar could not be reached
	code       string
	message    string
	retryAfter string
}

func (e *sidecarError) Error() string { return e.message }

func newSidecarCollection(database, collection string) *sidecarCollection {
	// The default transport keeps connections alive; one idle connection is all a handler needs.
	return &sidecarCollection{
		client:     &http.Client{},
		actionURL:  "http://127.0.0.1:" + envOr("MONGO_SIDECAR_PORT", "27080") + "/action/",
		database:   database,
		collection: collection,
	}
}

// call sends one action and decodes its answer into `answer` (unless nil). The invocation's
// context bounds the call; the sidecar bounds the operation by the invocation's deadline too.
func (s *sidecarCollection) call(ctx context.Context, action string, fields map[string]any, answer any) error {
	body := map[string]any{"database": s.database, "collection": s.collection}
	for name, value := range fields {
		body[name] = value
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	request, err := http.NewRequestWithContext(ctx, http.MethodPost, s.actionURL+action, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	request.Header.Set("Content-Type", "application/json")
	request.Header.Set("apiKey", sidecarToken())
	reply, err := s.client.Do(request)
	if err != nil {
		return &sidecarError{code: "SidecarUnreachable", message: err.Error()}
	}
	defer reply.Body.Close()
	text, err := io.ReadAll(reply.Body) // read to the end, so the connection is reused
	if err != nil {
		return &sidecarError{code: "SidecarUnreachable", message: err.Error()}
	}
	if reply.StatusCode != http.StatusOK {
		var refusal struct {
			Error string `json:"error"`
			Code  string `json:"error_code"`
		}
		if json.Unmarshal(text, &refusal) != nil || refusal.Code == "" {
			refusal.Code = fmt.Sprintf("HTTP%d", reply.StatusCode)
			refusal.Error = string(text)
		}
		return &sidecarError{status: reply.StatusCode, code: refusal.Code, message: refusal.Error,
			retryAfter: reply.Header.Get("Retry-After")}
	}
	if answer == nil {
		return nil
	}
	decoder := json.NewDecoder(bytes.NewReader(text))
	decoder.UseNumber()
	return decoder.Decode(answer)
}

func sidecarToken() string {
	if token := os.Getenv("MONGO_SIDECAR_TOKEN"); token != "" {
		return token
	}
	return os.Getenv("AWS_SESSION_TOKEN")
}

// --- helpers ---------------------------------------------------------------------------------

// An ObjectId: seconds since the epoch, 5 random bytes for this process, a counter.
var (
	processUnique = randomBytes(5)
	idCounter     atomic.Uint32
)

func init() {
	idCounter.Store(binary.BigEndian.Uint32(append([]byte{0}, randomBytes(3)...)))
}

func newObjectID() string {
	var id [12]byte
	binary.BigEndian.PutUint32(id[0:4], uint32(time.Now().Unix()))
	copy(id[4:9], processUnique)
	count := idCounter.Add(1)
	id[9], id[10], id[11] = byte(count>>16), byte(count>>8), byte(count)
	return hex.EncodeToString(id[:])
}

func randomBytes(n int) []byte {
	out := make([]byte, n)
	if _, err := rand.Read(out); err != nil {
		panic(err)
	}
	return out
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
