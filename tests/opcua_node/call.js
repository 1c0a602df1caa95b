// An independent OPC UA client (node-opcua) calling a camera's Trigger method with the arguments
// given as JSON ([{"dataType": "String", "value": "P-1"}, ...]; [] for none), so the tests can see
// what another stack gets back. Prints the call's status and each argument's status.
// Usage: node call.js opc.tcp://127.0.0.1:4840/uniad NAMESPACE_URI CAMERA 'ARGUMENTS_JSON'
"use strict";
const { OPCUAClient, DataType, MessageSecurityMode, SecurityPolicy } = require("node-opcua-client");

async function main() {
  const [url, namespaceUri, camera, argumentsJson] = process.argv.slice(2);
  const client = OPCUAClient.create({
    endpointMustExist: false,
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 3, initialDelay: 200, maxDelay: 1000 },
  });
  await client.connect(url);
  const session = await client.createSession();
  try {
    const ns = (await session.readNamespaceArray()).indexOf(namespaceUri);
    if (ns < 0) throw new Error(`namespace ${namespaceUri} not on the server`);
    const inputArguments = JSON.parse(argumentsJson).map((a) => ({
      dataType: DataType[a.dataType],
      value: a.dataType === "ByteString" ? Buffer.from(a.value) : a.value,
    }));
    const result = await session.call({
      objectId: `ns=${ns};s=Cameras.${camera}`,
      methodId: `ns=${ns};s=Cameras.${camera}.Trigger`,
      inputArguments,
    });
    const out = {
      status: result.statusCode.name,
      inputArgumentResults: (result.inputArgumentResults || []).map((s) => s.name),
    };
    process.stdout.write("RESULT " + JSON.stringify(out) + "\n"); // node-opcua logs to stdout too
  } finally {
    await session.close();
    await client.disconnect();
  }
}

main().catch((err) => {
  process.stderr.write(`node-opcua client: ${err.message}\n`);
  process.exit(1);
});
