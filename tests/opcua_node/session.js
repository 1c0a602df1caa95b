// One node-opcua session for the test clients (read.js, call.js): connect without security,
// resolve the station's namespace index, run `work(session, ns)`, print its result as one
// "RESULT {json}" line (node-opcua logs to stdout too), always close, exit 1 with one line.
"use strict";
const { OPCUAClient, MessageSecurityMode, SecurityPolicy } = require("node-opcua-client");

async function withSession(url, namespaceUri, work) {
  const client = OPCUAClient.create({
    endpointMustExist: false,
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 3, initialDelay: 200, maxDelay: 1000 },
  });
  await client.connect(url);
  const session = await client.createSession();
  try {
    const namespaces = await session.readNamespaceArray();
    const ns = namespaces.indexOf(namespaceUri);
    if (ns < 0) throw new Error(`namespace ${namespaceUri} not on the server: ${namespaces}`);
    const out = await work(session, ns);
    process.stdout.write("RESULT " + JSON.stringify(out) + "\n");
  } finally {
    await session.close();
    await client.disconnect();
  }
}

function runClient(url, namespaceUri, work) {
  withSession(url, namespaceUri, work).catch((err) => {
    process.stderr.write(`node-opcua client: ${err.message}\n`);
    process.exit(1);
  });
}

module.exports = { runClient };
