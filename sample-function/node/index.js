'use strict';
// Sample Lambda function (Node.js): a small "items" API behind an API Gateway HTTP API (payload
// format 2.0), storing its items in MongoDB through the mongo-sidecar extension.
//
//   POST   /items               create: {"name": "...", "price": 12.5, "tags": ["..."]}
//   GET    /items?limit=&tag=   list, newest first
//   GET    /items/{id}          get one
//   PATCH  /items/{id}          update any of name, price, tags
//   DELETE /items/{id}          delete
//
// The client comes from the layer (/opt/nodejs/node_modules/mongo-sidecar): this function bundles
// no MongoDB driver and has no dependencies. Environment: MONGODB_DATABASE (default "app"),
// ITEMS_COLLECTION (default "items"); the extension reads the connection string itself.

const { MongoSidecar, MongoSidecarError, ObjectId } = require('mongo-sidecar');

// Created once per execution environment, outside the handler, as MongoDB advises for a driver's
// client: it keeps its localhost connections to the sidecar alive across invocations, and the
// sidecar holds the execution environment's one pooled connection to MongoDB.
const items = new MongoSidecar()
  .db(process.env.MONGODB_DATABASE || 'app')
  .collection(process.env.ITEMS_COLLECTION || 'items');

const NAME_MAX_CHARS = 100;
const TAGS_MAX = 20;
const TAG_MAX_CHARS = 50;
const LIST_DEFAULT_LIMIT = 20;
const LIST_MAX_LIMIT = 100;
const ITEM_FIELDS = ['name', 'price', 'tags'];

// Route keys as an HTTP API writes them; the handler works out the same key from the path, so it
// also serves a Function URL or a direct invocation, which carry no routeKey.
const ROUTES = {
  'POST /items': createItem,
  'GET /items': listItems,
  'GET /items/{id}': getItem,
  'PATCH /items/{id}': updateItem,
  'DELETE /items/{id}': deleteItem,
};
const ITEMS_PATH = /^\/items(?:\/([^/]+))?$/;

/** An answer to send as it is: 4xx for what the caller got wrong. */
class HttpError extends Error {
  constructor(statusCode, message, headers = {}) {
    super(message);
    this.statusCode = statusCode;
    this.headers = headers;
  }
}

const badRequest = (message) => new HttpError(400, message);

exports.handler = async (event) => {
  try {
    return await route(event);
  } catch (err) {
    if (err instanceof HttpError) return json(err.statusCode, { error: err.message }, err.headers);
    if (err instanceof MongoSidecarError) return sidecarFailure(err);
    // Anything else is a bug here: let it fail the invocation, so it shows in the function's
    // Errors metric and log (API Gateway answers 500).
    throw err;
  }
};

function route(event) {
  const method = event.requestContext?.http?.method ?? '';
  const path = event.rawPath ?? '';
  const match = ITEMS_PATH.exec(path);
  if (!match) throw new HttpError(404, `no route for ${method} ${path}`);
  // An HTTP API route gives the id as a path parameter; without one, it is in the path.
  const id = event.pathParameters?.id ?? match[1];
  const pattern = id === undefined ? '/items' : '/items/{id}';
  const action = ROUTES[`${method} ${pattern}`];
  if (!action) {
    const allowed = Object.keys(ROUTES).filter((key) => key.endsWith(` ${pattern}`)).map((key) => key.split(' ')[0]);
    throw new HttpError(405, `${method} is not allowed on ${pattern}; use ${allowed.join(', ')}`, {
      allow: allowed.join(', '),
    });
  }
  return action(event, id);
}

// --- the five operations ---------------------------------------------------------------------

async function createItem(event) {
  const fields = checkItemFields(parseBody(event), { partial: false });
  const now = new Date();
  // The id is made here, so the answer needs no read back.
  const document = { _id: new ObjectId(), price: null, tags: [], ...fields, createdAt: now, updatedAt: now };
  await items.insertOne(document);
  const item = toItem(document);
  return json(201, item, { location: `/items/${item.id}` });
}

async function listItems(event) {
  const query = event.queryStringParameters ?? {};
  const limit = parseLimit(query.limit);
  // A repeated ?tag= arrives joined with commas: it is then one tag, which matches nothing.
  const byTag = query.tag === undefined ? {} : { tags: query.tag };
  const documents = await items.find(byTag, { sort: { createdAt: -1, _id: -1 }, limit });
  return json(200, { items: documents.map(toItem) });
}

async function getItem(event, id) {
  const document = await items.findOne({ _id: parseId(id) });
  if (document === null) throw notFound(id);
  return json(200, toItem(document));
}

async function updateItem(event, id) {
  const _id = parseId(id); // a malformed id is refused before the body is even read
  const fields = checkItemFields(parseBody(event), { partial: true });
  const document = await items.findOneAndUpdate(
    { _id },
    { $set: { ...fields, updatedAt: new Date() } },
    { returnDocument: 'after' },
  );
  if (document === null) throw notFound(id);
  return json(200, toItem(document));
}

async function deleteItem(event, id) {
  const { deletedCount } = await items.deleteOne({ _id: parseId(id) });
  if (deletedCount === 0) throw notFound(id);
  return { statusCode: 204 };
}

// --- input ---------------------------------------------------------------------------------

function parseBody(event) {
  if (event.body === undefined || event.body === null || event.body === '') {
    throw badRequest('a JSON body is required');
  }
  // API Gateway base64-encodes bodies it does not take for text (by their content type).
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('the body is not valid JSON');
  }
}

/** The item fields of a create (name required) or an update (any of them, at least one), or a
 * 400 that lists every problem found. */
function checkItemFields(body, { partial }) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('the body must be a JSON object');
  }
  const given = Object.keys(body);
  const unknown = given.filter((key) => !ITEM_FIELDS.includes(key));
  if (unknown.length > 0) {
    throw badRequest(`unknown field(s) ${unknown.join(', ')}: an item has only ${ITEM_FIELDS.join(', ')}`);
  }
  if (partial && given.length === 0) throw badRequest(`nothing to update: give any of ${ITEM_FIELDS.join(', ')}`);

  const problems = [];
  if (!partial && !given.includes('name')) problems.push('name is required');
  if (given.includes('name') && !isText(body.name, NAME_MAX_CHARS)) {
    problems.push(`name must be a non-blank string of at most ${NAME_MAX_CHARS} characters`);
  }
  if (given.includes('price') && !(Number.isFinite(body.price) && body.price >= 0)) {
    problems.push('price must be a non-negative number');
  }
  if (
    given.includes('tags') &&
    !(Array.isArray(body.tags) && body.tags.length <= TAGS_MAX && body.tags.every((tag) => isText(tag, TAG_MAX_CHARS)))
  ) {
    problems.push(`tags must be an array of at most ${TAGS_MAX} non-blank strings of at most ${TAG_MAX_CHARS} characters`);
  }
  if (problems.length > 0) throw badRequest(problems.join('; '));
  return body;
}

/** A non-blank string of at most `max` characters (code points, as Python counts them). */
function isText(value, max) {
  return typeof value === 'string' && value.trim() !== '' && [...value].length <= max;
}

function parseLimit(text) {
  if (text === undefined) return LIST_DEFAULT_LIMIT;
  const limit = /^[0-9]{1,3}$/.test(text) ? Number(text) : NaN;
  if (!(limit >= 1 && limit <= LIST_MAX_LIMIT)) throw badRequest(`limit must be an integer from 1 to ${LIST_MAX_LIMIT}`);
  return limit;
}

function parseId(id) {
  if (!ObjectId.isValid(id)) throw badRequest('an item id is 24 hexadecimal characters');
  return new ObjectId(id);
}

const notFound = (id) => new HttpError(404, `no item with id ${id}`);

// --- output --------------------------------------------------------------------------------

function toItem(document) {
  return {
    id: document._id.toHexString(),
    name: document.name,
    price: document.price ?? null,
    tags: document.tags ?? [],
    createdAt: isoDate(document.createdAt),
    updatedAt: isoDate(document.updatedAt),
  };
}

const isoDate = (value) => (value instanceof Date ? value.toISOString() : null);

function json(statusCode, body, headers = {}) {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/** The sidecar answered with an error, or could not be reached. Unreachable (status 0) or a 5xx
 * (the database is down or slow, the sidecar is overloaded or still connecting) is worth a retry:
 * 503. Any other refusal means this function sent something wrong: 500. The details go to the
 * log, only the error code to the caller. */
function sidecarFailure(err) {
  console.error(`mongo-sidecar call failed: status=${err.status} code=${err.code}: ${err.message}`);
  if (err.status === 0 || err.status >= 500) {
    const headers = err.retryAfter === undefined ? {} : { 'retry-after': String(err.retryAfter) };
    return json(503, { error: 'the database is unavailable; try again shortly', code: err.code }, headers);
  }
  return json(500, { error: 'internal error' });
}
