// A real OpenID Connect provider for the single sign-on tests (oidc-provider from npm).
//
//   node tests/auth/oidc_provider.mjs REDIRECT_URI POST_LOGOUT_URI
//
// Listens on 127.0.0.1 on a free port and prints {"issuer": ...} as its first line of output.
// One confidential client ("board", secret "board-secret") with PKCE required; the accounts
// below sign in on a plain HTML form (password "pw") and carry a `groups` claim in the ID token.
// For the refusal tests, POST /_test/next-token with {"mode": "tamper"} makes the next token
// response carry an ID token whose payload was changed after signing, and {"mode": "lapse"}
// issues the next tokens two hours in the past (so the ID token has expired).
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const [redirectUri, postLogoutUri] = process.argv.slice(2);
const ACCOUNTS = {
  sgt: { name: 'Sgt. Single Sign-On', groups: ['staff', '311-sgt-75'] },
  officer: { name: 'P.O. Unit A', groups: ['311-officer-75-A'] },
  visitor: { name: 'Nobody Mapped', groups: ['staff', 'parking'] },
  admin: { name: 'Admin Person', groups: ['311-admin'] },
};
const PASSWORD = 'pw';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

let nextMode = null;

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'board',
      client_secret: 'board-secret',
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [postLogoutUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: ['test-cookie-key-not-secret'] },
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'groups'],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    conformIdTokenClaims: false, // the groups claim in the ID token itself
    ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Session: 3600,
           Interaction: 600, Grant: 3600 },
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // A first-party client: no consent screen, the grant is made at sign-in.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile groups');
      await grant.save();
      return grant;
    },
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, name: account.name, preferred_username: id, groups: account.groups };
        },
      };
    },
  });
  const handle = provider.callback();

  const form = (uid, message = '') => `<!DOCTYPE html><html><head><title>Test provider</title>
</head><body><h1>Test identity provider</h1><p id="message">${escape(message)}</p>
<form method="post" action="/interaction/${escape(uid)}/login">
<label>User <input name="login" autofocus></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button></form></body></html>`;

  const readBody = (req) => new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; if (data.length > 1e5) req.destroy(); });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });

  async function interaction(req, res, url) {
    const [, , uid, action] = url.pathname.split('/');
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(form(uid));
      return;
    }
    if (action !== 'login') throw new Error('unknown interaction action');
    const body = new URLSearchParams(await readBody(req));
    const login = body.get('login');
    if (!ACCOUNTS[login] || body.get('password') !== PASSWORD) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(form(uid, 'Wrong user or password'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } },
      { mergeWithLastSubmission: false });
  }

  // The token endpoint, asked through this server itself, with its answer's ID token altered.
  async function tampered(req, res) {
    const body = await readBody(req);
    const answer = await fetch(`${issuer}/token`, {
      method: 'POST', body, headers: {
        'content-type': req.headers['content-type'], authorization: req.headers.authorization,
      },
    });
    const tokens = await answer.json();
    if (tokens.id_token) {
      const [head, payload, signature] = tokens.id_token.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
      claims.groups = ['311-admin'];
      const forged = Buffer.from(JSON.stringify(claims)).toString('base64url');
      tokens.id_token = [head, forged, signature].join('.');
    }
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(tokens));
  }

  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    try {
      if (url.pathname === '/_test/next-token' && req.method === 'POST') {
        nextMode = JSON.parse(await readBody(req)).mode;
        res.writeHead(204);
        res.end();
        return;
      }
      if (url.pathname.startsWith('/interaction/')) {
        await interaction(req, res, url);
        return;
      }
      if (url.pathname === '/token' && nextMode) {
        const mode = nextMode;
        nextMode = null;
        if (mode === 'tamper') {
          await tampered(req, res);
          return;
        }
        if (mode === 'lapse') {
          const realNow = Date.now;
          Date.now = () => realNow() - 2 * 3600 * 1000;
          res.on('finish', () => { Date.now = realNow; });
        }
      }
      handle(req, res);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`test provider: ${err.message}`);
    }
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
