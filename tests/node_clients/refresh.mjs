// openid-client (panva) refreshing tokens at a mock issuer, as a Node service would: discovery, then the refresh
// grant, whose ID token openid-client checks (signature against the JWKS, iss, aud, exp and iat by its own clock).
// Prints one JSON line: {"ok": true, "claims": {...}} or {"ok": false, "code": ..., "error": ...}.
import * as client from 'openid-client'

const config = await client.discovery(new URL(process.env.ISSUER), process.env.CLIENT_ID, undefined, client.None(),
  { execute: [client.allowInsecureRequests] })
try {
  const tokens = await client.refreshTokenGrant(config, process.env.REFRESH_TOKEN)
  console.log(JSON.stringify({ ok: true, claims: tokens.claims() }))
} catch (error) {
  console.log(JSON.stringify({ ok: false, code: error.code ?? null, error: error.message }))
}
