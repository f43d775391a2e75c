'use strict';
// The fleet's function, written once for both data paths: `openDb()` resolves to either the
// layer's mongo-sidecar client or the MongoDB driver's Db. The calls used here (findOne,
// insertOne) take and return the same shapes in both.
//
// Two kinds of invocation, as a Lambda function commonly gets:
//   an API request  {"sku": "sku-3", "qty": 1}: a read, then a write, one after the other;
//   an SQS batch    {"Records": [{"body": "{\"sku\":...,\"qty\":...}"}, ...]}: every record at
//                   once (Promise.all), each a read then a write.
// The writes are inserts: the test server (FerretDB on SQLite) answers concurrent
// read-modify-write updates with "database is locked", which says nothing about the data path.

exports.makeHandler = (openDb) => async (event) => {
  const db = await openDb();
  const stock = db.collection('stock');
  const orders = db.collection('orders');

  async function order(sku, qty) {
    const item = await stock.findOne({ _id: sku });
    if (item === null) return false;
    await orders.insertOne({ sku, qty, at: new Date() });
    return true;
  }

  if (Array.isArray(event.Records)) {
    const lines = event.Records.map((record) => JSON.parse(record.body));
    const found = await Promise.all(lines.map(({ sku, qty }) => order(sku, qty)));
    return { processed: found.filter(Boolean).length };
  }
  return (await order(event.sku, event.qty)) ? { statusCode: 201 } : { statusCode: 404 };
};
