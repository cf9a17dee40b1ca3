// The seed's design as the peer for bench/run (issue 3): its SessionManager —
// ioredis, `session:<id>` holding JSON with SET ... EX 3600, GET to validate —
// behind node's http module, one process, as the seed runs it.
//   POST /login            -> 200 {"session_id": "..."} (stores the session)
//   GET  /verify           -> 200 session JSON | 401   (Authorization: Bearer <id>)
// REDIS_HOSTS=host:port[,host:port...], CLUSTER_ENABLED=true for IORedis.Cluster
// (as in the seed), PORT to listen on 127.0.0.1.
'use strict';
const http = require('http');
const crypto = require('crypto');
const IORedis = require('ioredis');

const hosts = (process.env.REDIS_HOSTS || '127.0.0.1:6379').split(',').map((h) => ({
  host: h.split(':')[0],
  port: parseInt(h.split(':')[1], 10),
}));

class SessionManager {
  constructor() {
    this.redis = process.env.CLUSTER_ENABLED === 'true' ? new IORedis.Cluster(hosts)
                                                        : new IORedis(hosts[0]);
  }
  async storeSession(sessionId, data) {
    await this.redis.set(`session:${sessionId}`, JSON.stringify(data), 'EX', 3600);
  }
  async getSession(sessionId) {
    const data = await this.redis.get(`session:${sessionId}`);
    return data ? JSON.parse(data) : null;
  }
}

const sessions = new SessionManager();
const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/login') {
      const id = crypto.randomBytes(32).toString('base64url');
      await sessions.storeSession(id, {userId: 'bench', roles: ['user'], createdAt: Date.now()});
      res.writeHead(200, {'Content-Type': 'application/json'});
      return res.end(JSON.stringify({session_id: id}));
    }
    if (req.method === 'GET' && req.url === '/verify') {
      const auth = req.headers.authorization || '';
      const session = auth.startsWith('Bearer ') ? await sessions.getSession(auth.slice(7)) : null;
      if (!session) {
        res.writeHead(401);
        return res.end();
      }
      res.writeHead(200, {'Content-Type': 'application/json'});
      return res.end(JSON.stringify(session));
    }
    res.writeHead(404);
    res.end();
  } catch (e) {
    res.writeHead(503);
    res.end();
  }
});
server.keepAliveTimeout = 60000;
server.listen(parseInt(process.env.PORT || '8090', 10), '127.0.0.1');
