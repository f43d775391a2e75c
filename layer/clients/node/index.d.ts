// Types for mongo-sidecar, the thin client of the mongo-sidecar Lambda extension.

/// <reference types="node" />

export type Document = { [key: string]: any };
export type Filter = Document;
export type UpdateSpec = Document | Document[];
export type Sort = { [key: string]: 1 | -1 | Document };

export interface MongoSidecarOptions {
  /** Default MONGO_SIDECAR_HOST, else 127.0.0.1. */
  host?: string;
  /** Default MONGO_SIDECAR_PORT, else 27080. */
  port?: number;
  /** A Unix socket instead of TCP. Default MONGO_SIDECAR_SOCKET. */
  socketPath?: string;
  /** Default MONGO_SIDECAR_TOKEN, else AWS_SESSION_TOKEN, read at each call; none: no header. */
  token?: string;
  /** Default: none sent, so the sidecar uses its default data source. */
  dataSource?: string;
  /** Give up on a request after this many milliseconds. Default 0: no limit. */
  timeoutMs?: number;
  /** Longest wait before the one retry of a 503 Warming. Default 1000. */
  maxRetryWaitMs?: number;
  /** Called with each answer's Server-Timing, before the call resolves or rejects. */
  onServerTiming?: (timing: ServerTiming | undefined, about: { action: string; status: number }) => void;
}

/** Where the sidecar spent an answer's time, in milliseconds (its Server-Timing header). */
export interface ServerTiming {
  /** Waiting for a database connection. */
  queue?: number;
  /** In the database. */
  db?: number;
  /** All of it, from the request's arrival to the answer. */
  total?: number;
  [metric: string]: number | undefined;
}

interface CommonOptions {
  hint?: string | Document;
  collation?: Document;
  comment?: any;
  let?: Document;
  maxTimeMS?: number;
  dataSource?: string;
}

export interface FindOneOptions extends CommonOptions {
  projection?: Document;
  sort?: Sort;
  skip?: number;
}

export interface FindOptions extends FindOneOptions {
  limit?: number;
  batchSize?: number;
}

export interface InsertOneOptions {
  bypassDocumentValidation?: boolean;
  comment?: any;
  dataSource?: string;
}

export interface InsertManyOptions extends InsertOneOptions {
  ordered?: boolean;
}

export interface UpdateOptions extends CommonOptions {
  upsert?: boolean;
  arrayFilters?: Document[];
  bypassDocumentValidation?: boolean;
}

export interface ReplaceOptions extends CommonOptions {
  upsert?: boolean;
  bypassDocumentValidation?: boolean;
}

export type DeleteOptions = CommonOptions;

export interface AggregateOptions extends CommonOptions {
  allowDiskUse?: boolean;
  bypassDocumentValidation?: boolean;
  batchSize?: number;
}

export interface CountDocumentsOptions extends CommonOptions {
  limit?: number;
  skip?: number;
}

export interface EstimatedDocumentCountOptions {
  comment?: any;
  maxTimeMS?: number;
  dataSource?: string;
}

export type DistinctOptions = CommonOptions;

export interface FindOneAndDeleteOptions extends CommonOptions {
  projection?: Document;
  sort?: Sort;
}

export interface FindOneAndReplaceOptions extends FindOneAndDeleteOptions {
  upsert?: boolean;
  returnDocument?: 'before' | 'after';
  bypassDocumentValidation?: boolean;
}

export interface FindOneAndUpdateOptions extends FindOneAndReplaceOptions {
  arrayFilters?: Document[];
}

export interface BulkWriteOptions {
  ordered?: boolean;
  bypassDocumentValidation?: boolean;
  dataSource?: string;
}

export type AnyBulkWriteOperation =
  | { insertOne: { document: Document } }
  | { updateOne: { filter: Filter; update: UpdateSpec; upsert?: boolean; arrayFilters?: Document[]; hint?: string | Document; collation?: Document } }
  | { updateMany: { filter: Filter; update: UpdateSpec; upsert?: boolean; arrayFilters?: Document[]; hint?: string | Document; collation?: Document } }
  | { replaceOne: { filter: Filter; replacement: Document; upsert?: boolean; hint?: string | Document; collation?: Document } }
  | { deleteOne: { filter: Filter; hint?: string | Document; collation?: Document } }
  | { deleteMany: { filter: Filter; hint?: string | Document; collation?: Document } };

export interface InsertOneResult { insertedId: any }
export interface InsertManyResult { insertedIds: any[] }
export interface UpdateResult { matchedCount: number; modifiedCount: number; upsertedId?: any }
export interface DeleteResult { deletedCount: number }
export interface BulkWriteResult {
  insertedCount: number;
  matchedCount: number;
  modifiedCount: number;
  deletedCount: number;
  upsertedCount: number;
  /** The index of each upserting operation (as a string key) to the new document's _id. */
  upsertedIds: { [index: string]: any };
}

export class MongoSidecar {
  constructor(options?: MongoSidecarOptions);
  readonly dataSource: string | undefined;
  db(name: string): Db;
  /** Any action; `fields` are its body fields besides dataSource, database and collection. */
  action(name: string, database: string, collection: string, fields?: Document): Promise<Document>;
  /** The sidecar's GET /health body; `status` is "ready", "warming" or "unavailable". */
  health(): Promise<Document>;
}

export class Db {
  readonly client: MongoSidecar;
  readonly databaseName: string;
  collection<T extends Document = Document>(name: string): Collection<T>;
}

export class Collection<T extends Document = Document> {
  readonly client: MongoSidecar;
  readonly dbName: string;
  readonly collectionName: string;
  findOne(filter?: Filter, options?: FindOneOptions): Promise<T | null>;
  find(filter?: Filter, options?: FindOptions): Promise<T[]>;
  insertOne(document: Document, options?: InsertOneOptions): Promise<InsertOneResult>;
  insertMany(documents: Document[], options?: InsertManyOptions): Promise<InsertManyResult>;
  updateOne(filter: Filter, update: UpdateSpec, options?: UpdateOptions): Promise<UpdateResult>;
  updateMany(filter: Filter, update: UpdateSpec, options?: UpdateOptions): Promise<UpdateResult>;
  replaceOne(filter: Filter, replacement: Document, options?: ReplaceOptions): Promise<UpdateResult>;
  deleteOne(filter: Filter, options?: DeleteOptions): Promise<DeleteResult>;
  deleteMany(filter: Filter, options?: DeleteOptions): Promise<DeleteResult>;
  aggregate<R extends Document = Document>(pipeline: Document[], options?: AggregateOptions): Promise<R[]>;
  countDocuments(filter?: Filter, options?: CountDocumentsOptions): Promise<number>;
  estimatedDocumentCount(options?: EstimatedDocumentCountOptions): Promise<number>;
  distinct(key: string, filter?: Filter, options?: DistinctOptions): Promise<any[]>;
  findOneAndUpdate(filter: Filter, update: UpdateSpec, options?: FindOneAndUpdateOptions): Promise<T | null>;
  findOneAndReplace(filter: Filter, replacement: Document, options?: FindOneAndReplaceOptions): Promise<T | null>;
  findOneAndDelete(filter: Filter, options?: FindOneAndDeleteOptions): Promise<T | null>;
  bulkWrite(operations: AnyBulkWriteOperation[], options?: BulkWriteOptions): Promise<BulkWriteResult>;
}

export class MongoSidecarError extends Error {
  /** The HTTP status; 0 when no answer came (not reached, connection broken, no answer in time). */
  readonly status: number;
  /** The body's error_code (InvalidParameter, InvalidSession, DuplicateKey, Warming, ...), or
   * SidecarUnreachable / ClientTimeout. */
  readonly code: string;
  /** MongoDB's numeric error code (11000 for a duplicate key), when the database refused. */
  readonly serverCode?: number;
  readonly codeName?: string;
  /** The whole error body (parsed JSON, or text). */
  readonly body?: any;
  /** Retry-After seconds, when the sidecar sent one. */
  readonly retryAfter?: number;
  /** What is known of a failed write: 'unknown' (it may or may not have been applied), 'applied'
   * (applied, though not acknowledged as asked), or undefined (not applied, or not a write). */
  readonly outcome?: 'unknown' | 'applied' | string;
  /** The answer's Server-Timing, when it had one. */
  readonly serverTiming?: ServerTiming;
}

export class ObjectId {
  /** 24 hex characters, 12 bytes, another ObjectId, or nothing for a new id. */
  constructor(id?: string | ObjectId | Uint8Array);
  readonly hex: string;
  static isValid(id: unknown): boolean;
  static createFromHexString(hex: string): ObjectId;
  toHexString(): string;
  toString(): string;
  toJSON(): string;
  getTimestamp(): Date;
  equals(other: ObjectId | string): boolean;
}

export class Decimal128 {
  constructor(value: string);
  readonly value: string;
  static fromString(value: string): Decimal128;
  toString(): string;
  toJSON(): string;
}

export class Binary {
  constructor(buffer: Uint8Array, subType?: number);
  readonly buffer: Buffer;
  readonly subType: number;
  static fromUUID(uuid: string): Binary;
  toUUID(): string;
  equals(other: unknown): boolean;
  toString(encoding?: BufferEncoding): string;
  toJSON(): string;
  static readonly SUBTYPE_DEFAULT: 0;
  static readonly SUBTYPE_FUNCTION: 1;
  static readonly SUBTYPE_UUID_OLD: 3;
  static readonly SUBTYPE_UUID: 4;
  static readonly SUBTYPE_MD5: 5;
  static readonly SUBTYPE_ENCRYPTED: 6;
  static readonly SUBTYPE_COLUMN: 7;
  static readonly SUBTYPE_SENSITIVE: 8;
  static readonly SUBTYPE_VECTOR: 9;
  static readonly SUBTYPE_USER_DEFINED: 128;
}

export class BSONRegExp {
  constructor(pattern: string, options?: string);
  readonly pattern: string;
  readonly options: string;
}

export class Timestamp {
  constructor(value: { t: number; i: number });
  readonly t: number;
  readonly i: number;
  equals(other: unknown): boolean;
}

export class MinKey {}
export class MaxKey {}

export class Code {
  constructor(code: string, scope?: Document);
  readonly code: string;
  readonly scope?: Document;
}

export const EJSON: {
  /** JavaScript values as Extended JSON text, as the client sends them. */
  stringify(value: any): string;
  /** Canonical (or relaxed) Extended JSON text as JavaScript values. */
  parse(text: string): any;
};
