'use strict';
// Every action, through the client, against the real sidecar and FerretDB.

const assert = require('node:assert/strict');
const { after, before, test } = require('node:test');

const { MongoSidecar, ObjectId } = require('../index');
const { startSidecar } = require('../test-support/sidecar');

let sidecar;
let db;

before(async () => {
  sidecar = await startSidecar();
  db = new MongoSidecar({ port: sidecar.port, token: sidecar.token, timeoutMs: 10000 }).db('client_node_actions');
});

after(async () => {
  assert.equal(await sidecar.stop(), 0, 'the sidecar exits 0 on SIGTERM');
});

/** A collection of its own for each test, emptied first. */
async function fresh(name) {
  const coll = db.collection(name);
  await coll.deleteMany({});
  return coll;
}

test('insertOne returns the generated _id as an ObjectId, and findOne finds the document', async () => {
  const coll = await fresh('insert_one');
  const { insertedId } = await coll.insertOne({ name: 'ada', born: 1815 });
  assert.ok(insertedId instanceof ObjectId);
  const found = await coll.findOne({ _id: insertedId });
  assert.deepEqual(found, { _id: insertedId, name: 'ada', born: 1815 });
});

test('findOne answers null when nothing matches, and takes projection, sort and skip', async () => {
  const coll = await fresh('find_one');
  assert.equal(await coll.findOne({ _id: 'missing' }), null);
  await coll.insertMany([{ _id: 1, n: 3, tag: 'x' }, { _id: 2, n: 1, tag: 'y' }, { _id: 3, n: 2, tag: 'z' }]);
  assert.deepEqual(await coll.findOne({}, { sort: { n: 1 }, projection: { tag: 1, _id: 0 } }), { tag: 'y' });
  assert.deepEqual(await coll.findOne({}, { sort: { n: -1 }, skip: 1 }), { _id: 3, n: 2, tag: 'z' });
});

test('find returns an array and takes filter, sort, skip, limit and projection', async () => {
  const coll = await fresh('find');
  await coll.insertMany(Array.from({ length: 6 }, (_, i) => ({ _id: i, n: i, even: i % 2 === 0 })));
  const docs = await coll.find({ even: true }, { sort: { n: -1 }, skip: 1, limit: 2, projection: { even: 0 } });
  assert.deepEqual(docs, [{ _id: 2, n: 2 }, { _id: 0, n: 0 }]);
  assert.deepEqual(await coll.find({ n: { $gt: 100 } }), []);
});

test('insertMany returns the ids in order, generated ones as ObjectIds', async () => {
  const coll = await fresh('insert_many');
  const { insertedIds } = await coll.insertMany([{ _id: 'a' }, { name: 'generated' }, { _id: 7 }]);
  assert.equal(insertedIds.length, 3);
  assert.equal(insertedIds[0], 'a');
  assert.ok(insertedIds[1] instanceof ObjectId);
  assert.equal(insertedIds[2], 7);
  assert.equal(await coll.countDocuments(), 3);
});

test('updateOne changes one document and reports the counts; upsert reports upsertedId', async () => {
  const coll = await fresh('update_one');
  await coll.insertMany([{ _id: 1, n: 0 }, { _id: 2, n: 0 }]);
  assert.deepEqual(await coll.updateOne({ n: 0 }, { $inc: { n: 5 } }), { matchedCount: 1, modifiedCount: 1 });
  assert.equal(await coll.countDocuments({ n: 5 }), 1);
  const upserted = await coll.updateOne({ _id: 9 }, { $set: { n: 9 } }, { upsert: true });
  assert.deepEqual(upserted, { matchedCount: 0, modifiedCount: 0, upsertedId: 9 });
  assert.deepEqual(await coll.findOne({ _id: 9 }), { _id: 9, n: 9 });
});

test('updateMany changes every matching document', async () => {
  const coll = await fresh('update_many');
  await coll.insertMany([{ _id: 1, k: 'a' }, { _id: 2, k: 'a' }, { _id: 3, k: 'b' }]);
  assert.deepEqual(await coll.updateMany({ k: 'a' }, { $set: { seen: true } }), { matchedCount: 2, modifiedCount: 2 });
  assert.deepEqual(await coll.distinct('_id', { seen: true }), [1, 2]);
});

test('replaceOne replaces the whole document', async () => {
  const coll = await fresh('replace_one');
  await coll.insertOne({ _id: 1, a: 1, b: 2 });
  assert.deepEqual(await coll.replaceOne({ _id: 1 }, { c: 3 }), { matchedCount: 1, modifiedCount: 1 });
  assert.deepEqual(await coll.findOne({ _id: 1 }), { _id: 1, c: 3 });
});

test('deleteOne deletes one document and deleteMany the rest', async () => {
  const coll = await fresh('delete');
  await coll.insertMany([{ k: 1 }, { k: 1 }, { k: 1 }, { k: 2 }]);
  assert.deepEqual(await coll.deleteOne({ k: 1 }), { deletedCount: 1 });
  assert.deepEqual(await coll.deleteMany({ k: 1 }), { deletedCount: 2 });
  assert.deepEqual(await coll.find({}, { projection: { _id: 0 } }), [{ k: 2 }]);
});

test('aggregate runs a pipeline and returns the documents', async () => {
  const coll = await fresh('aggregate');
  await coll.insertMany([{ g: 'a', n: 1 }, { g: 'a', n: 2 }, { g: 'b', n: 5 }]);
  const groups = await coll.aggregate([
    { $match: { n: { $gte: 1 } } },
    { $group: { _id: '$g', total: { $sum: '$n' } } },
    { $sort: { _id: 1 } },
  ]);
  assert.deepEqual(groups, [{ _id: 'a', total: 3 }, { _id: 'b', total: 5 }]);
});

test('countDocuments counts matches and honours limit and skip', async () => {
  const coll = await fresh('count_documents');
  await coll.insertMany(Array.from({ length: 5 }, (_, i) => ({ i })));
  assert.equal(await coll.countDocuments(), 5);
  assert.equal(await coll.countDocuments({ i: { $lt: 2 } }), 2);
  assert.equal(await coll.countDocuments({}, { skip: 1, limit: 3 }), 3);
});

test('estimatedDocumentCount counts the collection', async () => {
  const coll = await fresh('estimated_count');
  await coll.insertMany([{}, {}, {}]);
  assert.equal(await coll.estimatedDocumentCount(), 3);
});

test('distinct returns the distinct values of a key under a filter', async () => {
  const coll = await fresh('distinct');
  await coll.insertMany([{ c: 'red', n: 1 }, { c: 'blue', n: 2 }, { c: 'red', n: 3 }, { c: 'green', n: 0 }]);
  const values = await coll.distinct('c', { n: { $gt: 0 } });
  assert.deepEqual([...values].sort(), ['blue', 'red']);
});

test('findOneAndUpdate returns the document before, or after with returnDocument "after"', async () => {
  const coll = await fresh('find_one_and_update');
  await coll.insertOne({ _id: 1, n: 1 });
  assert.deepEqual(await coll.findOneAndUpdate({ _id: 1 }, { $inc: { n: 1 } }), { _id: 1, n: 1 });
  // (FerretDB 1.24 does not implement a projection on findAndModify.)
  assert.deepEqual(
    await coll.findOneAndUpdate({ _id: 1 }, { $inc: { n: 1 } }, { returnDocument: 'after' }),
    { _id: 1, n: 3 },
  );
  assert.deepEqual(
    await coll.findOneAndUpdate({ _id: 2 }, { $set: { n: 0 } }, { upsert: true, returnDocument: 'after' }),
    { _id: 2, n: 0 },
  );
  assert.equal(await coll.findOneAndUpdate({ _id: 'none' }, { $set: { n: 0 } }), null);
});

test('findOneAndReplace replaces the first document in sort order', async () => {
  const coll = await fresh('find_one_and_replace');
  await coll.insertMany([{ _id: 1, n: 2 }, { _id: 2, n: 1 }]);
  const after = await coll.findOneAndReplace({}, { replaced: true }, { sort: { n: 1 }, returnDocument: 'after' });
  assert.deepEqual(after, { _id: 2, replaced: true });
  assert.deepEqual(await coll.findOne({ _id: 1 }), { _id: 1, n: 2 });
});

test('findOneAndDelete returns the deleted document', async () => {
  const coll = await fresh('find_one_and_delete');
  await coll.insertMany([{ _id: 1, n: 1 }, { _id: 2, n: 2 }]);
  assert.deepEqual(await coll.findOneAndDelete({}, { sort: { n: -1 } }), { _id: 2, n: 2 });
  assert.equal(await coll.countDocuments(), 1);
  assert.equal(await coll.findOneAndDelete({ _id: 'none' }), null);
});

test('bulkWrite runs mixed operations and reports every count and the upserted ids by index', async () => {
  const coll = await fresh('bulk_write');
  await coll.insertMany([{ _id: 1, n: 1 }, { _id: 2, n: 2 }, { _id: 3, n: 3 }]);
  const result = await coll.bulkWrite([
    { insertOne: { document: { _id: 4, n: 4 } } },
    { updateOne: { filter: { _id: 1 }, update: { $set: { n: 10 } } } },
    { updateMany: { filter: { n: { $gte: 3 } }, update: { $set: { big: true } } } },
    { replaceOne: { filter: { _id: 2 }, replacement: { n: 20 } } },
    { deleteOne: { filter: { _id: 3 } } },
    { updateOne: { filter: { _id: 5 }, update: { $set: { n: 5 } }, upsert: true } },
    { deleteMany: { filter: { n: { $gt: 100 } } } },
  ]);
  assert.deepEqual(result, {
    insertedCount: 1,
    matchedCount: 5,
    modifiedCount: 5,
    deletedCount: 1,
    upsertedCount: 1,
    upsertedIds: { 5: 5 },
  });
  assert.deepEqual(await coll.find({}, { sort: { _id: 1 } }), [
    { _id: 1, n: 10, big: true },
    { _id: 2, n: 20 },
    { _id: 4, n: 4, big: true },
    { _id: 5, n: 5 },
  ]);
});

test('a client-generated ObjectId is stored as an ObjectId and matches in a filter', async () => {
  const coll = await fresh('client_object_id');
  const id = new ObjectId();
  assert.deepEqual(await coll.insertOne({ _id: id }), { insertedId: id });
  assert.deepEqual(await coll.findOne({ _id: new ObjectId(id.toHexString()) }), { _id: id });
  assert.equal(await coll.findOne({ _id: id.toHexString() }), null, 'a hex string is not an ObjectId');
});
