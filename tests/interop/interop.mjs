// Interoperability of Bulwark's JWTs with the npm `jose` package, driven by
// tests/integration/jwt_interop_test.cpp:
//   node interop.mjs DIR
// reads DIR/cpp.json (tokens and JWKS made by the C++ code), verifies them with
// jwtVerify and checks that the tampered ones are rejected; then mints ES256
// and EdDSA tokens with SignJWT and writes them with their JWKS to
// DIR/jose.json for the C++ side to validate. Exit 0 only if every check held.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node interop.mjs DIR');
  process.exit(2);
}
const input = JSON.parse(readFileSync(join(dir, 'cpp.json'), 'utf8'));
const { issuer, audience, now } = input;
const jwks = createLocalJWKSet(input.jwks);
const verifyOptions = {
  issuer,
  audience,
  algorithms: ['ES256', 'EdDSA'],
  currentDate: new Date(now * 1000),
};
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

// 1. Tokens signed by Bulwark verify with jose, with the claims we put in.
for (const [alg, token] of Object.entries(input.tokens)) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, verifyOptions);
    check(protectedHeader.alg === alg, `jose verifies the C++ ${alg} token (alg ${protectedHeader.alg})`);
    check(protectedHeader.kid === input.kids[alg], `${alg} header kid`);
    check(payload.sub === input.expected.sub, `${alg} sub`);
    check(JSON.stringify(payload.roles) === JSON.stringify(input.expected.roles), `${alg} roles`);
    check(payload.exp === input.expected.exp && payload.iat === input.expected.iat, `${alg} exp/iat`);
  } catch (e) {
    check(false, `jose verifies the C++ ${alg} token: ${e.code ?? e.message}`);
  }
}
// ... and tampered ones do not.
for (const [what, token] of Object.entries(input.tampered)) {
  try {
    await jwtVerify(token, jwks, verifyOptions);
    check(false, `jose rejects the tampered token (${what})`);
  } catch (e) {
    check(true, `jose rejects the tampered token (${what}): ${e.code ?? e.message}`);
  }
}

// 2. Tokens minted by jose, for Bulwark's Validate.
const out = { keys: [], tokens: {} };
for (const alg of ['ES256', 'EdDSA']) {
  const kid = `jose-${alg.toLowerCase()}`;
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  out.keys.push({ ...jwk, kid, alg, use: 'sig' });
  out.tokens[alg] = await new SignJWT({ roles: ['admin', 'user'], preferred_username: 'alice' })
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject('jose-user')
    .setJti(`jti-${alg}`)
    .setIssuedAt(now)
    .setNotBefore(now - 5)
    .setExpirationTime(now + 300)
    .sign(privateKey);
  // Sanity: jose accepts what it minted.
  const own = createLocalJWKSet({ keys: [out.keys.at(-1)] });
  await jwtVerify(out.tokens[alg], own, verifyOptions);
}
writeFileSync(join(dir, 'jose.json'), JSON.stringify({ jwks: { keys: out.keys }, tokens: out.tokens }));
console.log(`wrote ${join(dir, 'jose.json')}`);

if (failures.length) {
  console.error(`${failures.length} interop check(s) failed`);
  process.exit(1);
}
