'use strict';
// mongo-sidecar: a thin client for the mongo-sidecar Lambda extension, which serves the Atlas
// Data API on localhost over one pooled MongoDB connection. No dependencies.

const { MongoSidecar, Db, Collection } = require('./lib/client');
const { MongoSidecarError } = require('./lib/errors');
const types = require('./lib/bson-types');
const ejson = require('./lib/ejson');

module.exports = {
  MongoSidecar,
  Db,
  Collection,
  MongoSidecarError,
  ...types,
  EJSON: { stringify: ejson.stringify, parse: ejson.parse },
};
