'use strict';
// The fleet's function, written once for both data paths: `openDb()` resolves to either the
// layer's mongo-sidecar client or the MongoDB driver's Db. The calls used here (findOne,
// insertOne, updateOne) take and return the same shapes in both.
//
// Two kinds of invocation, as a Lambda function commonly gets:
//   an API request  {"sku": "sku-3", "qty": 1}: a read, then a write, one after the other;
//   an SQS batch    {"Records": [{"body": "{\"sku\":...,\"qty\":...}"}, ...]}: every record at
//                   once (Promise.all), each an update, then one write for the batch.

exports.makeHandler = (openDb) => async (event) => {
  const db = await openDb();
  const stock = db.collection('stock');
  const orders = db.collection('orders');
  if (Array.isArray(event.Records)) {
    const lines = event.Records.map((record) => JSON.parse(record.body));
    const updates = await Promise.all(
      lines.map(({ sku, qty }) => stock.updateOne({ _id: sku }, { $inc: { reserved: qty } })),
    );
    await orders.insertOne({ lines, at: new Date() });
    return { processed: lines.length, matched: updates.reduce((sum, u) => sum + u.matchedCount, 0) };
  }
  const item = await stock.findOne({ _id: event.sku });
  if (item === null) return { statusCode: 404 };
  await orders.insertOne({ lines: [{ sku: event.sku, qty: event.qty }], at: new Date() });
  return { statusCode: 201, sku: item._id };
};
