'use strict';
// The fleet's function with the MongoDB Node.js driver in-process, as MongoDB advises for
// Lambda: one client, made once outside the handler, at the driver's default settings.
const { MongoClient } = require('mongodb');
const { makeHandler } = require('./workload');

const client = new MongoClient(process.env.MONGODB_URI);
const clientPromise = client.connect();

exports.handler = makeHandler(async () => (await clientPromise).db(process.env.MONGODB_DATABASE));
