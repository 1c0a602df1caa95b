// An independent OPC UA client (node-opcua): reads variables of the station's server and prints
// them as one JSON object, so the tests can compare them with asyncua's reads and the JSONL log.
// Usage: node read.js opc.tcp://127.0.0.1:4840/uniad NAMESPACE_URI Cameras.top.Score ...
"use strict";
const { AttributeIds } = require("node-opcua-client");
const { runClient } = require("./session");

function plain(value) {
  if (Array.isArray(value) && value.length === 2 && value.every(Number.isInteger)) {
    return value[0] * 2 ** 32 + value[1]; // node-opcua's UInt64 is [high, low]
  }
  if (value instanceof Date) return value.getTime() / 1000;
  if (typeof value === "number" && Number.isNaN(value)) return "NaN";
  return value;
}

const [url, namespaceUri, ...keys] = process.argv.slice(2);
runClient(url, namespaceUri, async (session, ns) => {
  const read = await session.read(
    keys.map((key) => ({ nodeId: `ns=${ns};s=${key}`, attributeId: AttributeIds.Value })),
  );
  const out = { namespaceIndex: ns, values: {} };
  keys.forEach((key, i) => {
    const dv = read[i];
    out.values[key] = {
      value: plain(dv.value.value),
      status: dv.statusCode.name,
      sourceTimestamp: dv.sourceTimestamp ? dv.sourceTimestamp.getTime() / 1000 : null,
    };
  });
  return out;
});
