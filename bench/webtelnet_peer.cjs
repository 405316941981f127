// webtelnet (npm) as its own main.js runs it, minus the static web files, on 127.0.0.1 only:
//   node bench/webtelnet_peer.cjs <http-port, 0 = any> <telnet-port>
// Prints "PORT <n>" once it listens. Installed by ./dev bench into bench/.peers (never committed).
'use strict';
const http = require('http');
const socketio = require('socket.io');
const webtelnet = require('webtelnet');

const [webPort, telnetPort] = process.argv.slice(2).map(Number);
const server = http.createServer();
server.listen(webPort, '127.0.0.1', () => console.log('PORT ' + server.address().port));
webtelnet(socketio.listen(server), telnetPort, '127.0.0.1');
