// An independent OPC UA client (node-opcua) calling a camera's Trigger method with the arguments
// given as JSON ([{"dataType": "String", "value": "P-1"}, ...]; [] for none), so the tests can see
// what another stack gets back. Prints the call's status and each argument's status.
// Usage: node call.js opc.tcp://127.0.0.1:4840/uniad NAMESPACE_URI CAMERA 'ARGUMENTS_JSON'
"use strict";
const { DataType } = require("node-opcua-client");
const { runClient } = require("./session");

const [url, namespaceUri, camera, argumentsJson] = process.argv.slice(2);
runClient(url, namespaceUri, async (session, ns) => {
  const inputArguments = JSON.parse(argumentsJson).map((a) => ({
    dataType: DataType[a.dataType],
    value: a.dataType === "ByteString" ? Buffer.from(a.value) : a.value,
  }));
  const result = await session.call({
    objectId: `ns=${ns};s=Cameras.${camera}`,
    methodId: `ns=${ns};s=Cameras.${camera}.Trigger`,
    inputArguments,
  });
  return {
    status: result.statusCode.name,
    inputArgumentResults: (result.inputArgumentResults || []).map((s) => s.name),
  };
});
