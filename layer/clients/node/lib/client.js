'use strict';
// The driver-like surface: client -> db -> collection -> one method per Data API action. Each
// method's options are the action's body fields (sort, projection, limit, upsert, ...), sent as
// they are; the sidecar rejects fields an action does not take with a 400.

const transport = require('./transport');

class MongoSidecar {
  /**
   * @param {object} [options]
   * @param {string} [options.host] default MONGO_SIDECAR_HOST, else 127.0.0.1
   * @param {number} [options.port] default MONGO_SIDECAR_PORT, else 27080
   * @param {string} [options.socketPath] a Unix socket instead of TCP; default MONGO_SIDECAR_SOCKET
   * @param {string} [options.token] default MONGO_SIDECAR_TOKEN, else AWS_SESSION_TOKEN (read at each call)
   * @param {string} [options.dataSource] default: none sent, so the sidecar's default data source
   * @param {number} [options.timeoutMs] give up on a request after this long; default 0, no limit
   *   (the sidecar bounds every operation itself)
   * @param {number} [options.maxRetryWaitMs] longest wait before retrying a 503 Warming; default 1000
   * @param {(timing: {queue?: number, db?: number, total?: number}, about: {action: string, status: number}) => void}
   *   [options.onServerTiming] called with each answer's Server-Timing (milliseconds), before the
   *   call resolves or rejects
   */
  constructor(options = {}) {
    this.settings = {
      target: transport.resolveTarget(options),
      token: options.token,
      timeoutMs: options.timeoutMs || 0,
      maxRetryWaitMs: options.maxRetryWaitMs ?? transport.DEFAULT_MAX_RETRY_WAIT_MS,
      onServerTiming: options.onServerTiming,
    };
    this.dataSource = options.dataSource;
  }

  db(name) {
    return new Db(this, name);
  }

  /** Runs any action: `fields` are its body fields besides dataSource, database and collection. */
  action(name, database, collection, fields = {}) {
    const body = { dataSource: this.dataSource, ...fields, database, collection };
    return transport.callAction(this.settings, name, body);
  }

  /** The sidecar's GET /health body: `status` is "ready", "warming" or "unavailable". */
  health() {
    return transport.health(this.settings);
  }
}

class Db {
  constructor(client, name) {
    if (typeof name !== 'string' || name === '') throw new TypeError('a database name is required');
    this.client = client;
    this.databaseName = name;
  }

  collection(name) {
    return new Collection(this, name);
  }
}

class Collection {
  constructor(db, name) {
    if (typeof name !== 'string' || name === '') throw new TypeError('a collection name is required');
    this.client = db.client;
    this.dbName = db.databaseName;
    this.collectionName = name;
  }

  run(action, options, fields) {
    return this.client.action(action, this.dbName, this.collectionName, { ...options, ...fields });
  }

  async findOne(filter = {}, options = {}) {
    return (await this.run('findOne', options, { filter })).document;
  }

  async find(filter = {}, options = {}) {
    return (await this.run('find', options, { filter })).documents;
  }

  insertOne(document, options = {}) {
    return this.run('insertOne', options, { document });
  }

  insertMany(documents, options = {}) {
    return this.run('insertMany', options, { documents });
  }

  updateOne(filter, update, options = {}) {
    return this.run('updateOne', options, { filter, update });
  }

  updateMany(filter, update, options = {}) {
    return this.run('updateMany', options, { filter, update });
  }

  replaceOne(filter, replacement, options = {}) {
    return this.run('replaceOne', options, { filter, replacement });
  }

  deleteOne(filter, options = {}) {
    return this.run('deleteOne', options, { filter });
  }

  deleteMany(filter, options = {}) {
    return this.run('deleteMany', options, { filter });
  }

  async aggregate(pipeline, options = {}) {
    return (await this.run('aggregate', options, { pipeline })).documents;
  }

  async countDocuments(filter = {}, options = {}) {
    return (await this.run('countDocuments', options, { filter })).count;
  }

  async estimatedDocumentCount(options = {}) {
    return (await this.run('estimatedDocumentCount', options, {})).count;
  }

  async distinct(key, filter = {}, options = {}) {
    return (await this.run('distinct', options, { key, filter })).values;
  }

  async findOneAndUpdate(filter, update, options = {}) {
    return (await this.run('findOneAndUpdate', options, { filter, update })).document;
  }

  async findOneAndReplace(filter, replacement, options = {}) {
    return (await this.run('findOneAndReplace', options, { filter, replacement })).document;
  }

  async findOneAndDelete(filter, options = {}) {
    return (await this.run('findOneAndDelete', options, { filter })).document;
  }

  bulkWrite(operations, options = {}) {
    return this.run('bulkWrite', options, { operations });
  }
}

module.exports = { MongoSidecar, Db, Collection };
