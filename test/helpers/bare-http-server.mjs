// The least a Node.js HTTP server can be: node:http answering a fixed JSON body, on the port given as
// the first argument. A memory baseline: what the runtime itself keeps after a load, whatever the app.
import http from 'node:http';
import './collect-on-signal.mjs';

const port = Number(process.argv[2]);
http
  .createServer((_request, response) => {
    response.setHeader('content-type', 'application/json');
    response.end('{"value":4}');
  })
  .listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
