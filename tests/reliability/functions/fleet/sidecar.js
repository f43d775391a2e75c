'use strict';
// The fleet's function with the layer's client: the extension holds the connections.
const { MongoSidecar } = require('mongo-sidecar');
const { makeHandler } = require('./workload');

const db = new MongoSidecar().db(process.env.MONGODB_DATABASE);

exports.handler = makeHandler(async () => db);
