// Sample Lambda function (Node.js) that stores and reads items through the mongo-sidecar
// extension's localhost Data API.
//
// Events: {"op":"insert","collection":"items","document":{...}}
//         {"op":"find","collection":"items","filter":{...},"projection":{...}}
// Returns the sidecar's JSON answer; a sidecar error becomes a function error.
"use strict";

const http = require("node:http");

const SIDECAR_HOST = "127.0.0.1";
const SIDECAR_PORT = Number(process.env.MONGO_SIDECAR_PORT || 27080);
const DATABASE = process.env.MONGODB_DATABASE || "app";
const DATA_SOURCE = "mongodb-atlas";

// Module scope: created once per execution environment, so connections to the sidecar are
// reused across invocations.
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

const ACTIONS = {
  insert: (event) => ["insertOne", { document: event.document }],
  find: (event) => ["findOne", { filter: event.filter || {}, projection: event.projection }],
};

function callSidecar(action, body) {
  const payload = JSON.stringify({
    dataSource: DATA_SOURCE,
    database: DATABASE,
    ...body,
  });
  const options = {
    host: SIDECAR_HOST,
    port: SIDECAR_PORT,
    path: `/action/${action}`,
    method: "POST",
    agent,
    headers: {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(payload),
      apiKey: process.env.MONGO_SIDECAR_TOKEN || process.env.AWS_SESSION_TOKEN || "",
    },
  };
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode >= 400) {
          reject(new Error(`sidecar ${action} answered ${res.statusCode}: ${text}`));
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(new Error(`sidecar ${action} answered invalid JSON: ${text}`));
        }
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

exports.handler = async (event) => {
  const action = ACTIONS[event.op];
  if (!action) {
    throw new Error(`unknown op ${JSON.stringify(event.op)}: expected "insert" or "find"`);
  }
  const [name, body] = action(event);
  return callSidecar(name, { collection: event.collection, ...body });
};
