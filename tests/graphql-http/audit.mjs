// Runs every graphql-http server audit (GraphQL over HTTP conformance) against an endpoint.
// Usage: node tests/graphql-http/audit.mjs http://127.0.0.1:8080/graphql
// Prints each audit's id, name and result; exits 1 if a MUST audit fails (SHOULD and MAY
// failures are printed but allowed), 2 on a usage or fatal error.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <endpoint url>');
  process.exit(2);
}

let mustFailures = 0;
let otherFailures = 0;
for (const audit of serverAudits({ url })) {
  let result;
  try {
    result = await audit.fn();
  } catch (err) {
    // A fatal error (e.g. the server is unreachable) fails the audit.
    result = { status: 'error', reason: `fatal: ${err?.message ?? err}`, response: null };
  }
  if (result.status === 'ok') {
    console.log(`ok    ${audit.id} ${audit.name}`);
  } else {
    const must = audit.name.startsWith('MUST');
    if (must) mustFailures += 1;
    else otherFailures += 1;
    let body = '';
    try {
      body = result.response ? await result.response.text() : '';
    } catch {
      // The body may already have been read by the audit.
    }
    console.log(
      `${must ? 'FAIL ' : 'warn '} ${audit.id} ${audit.name}\n` +
        `      ${result.status}: ${result.reason}` +
        (result.response ? ` (HTTP ${result.response.status}${body ? `: ${body.slice(0, 300)}` : ''})` : ''),
    );
  }
}
console.log(`\n${mustFailures} MUST failure(s), ${otherFailures} SHOULD/MAY failure(s)`);
process.exit(mustFailures > 0 ? 1 : 0);
