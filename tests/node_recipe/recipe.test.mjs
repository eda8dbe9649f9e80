// mockpanel's image from Node's testcontainers: the recipe of docs/any-language.md, run by the suite
// (tests/test_container_modules.py) with `node --test`. MOCKPANEL_IMAGE names the image.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { GenericContainer, Wait } from "testcontainers";

const PORTS = { auth: 8000, s3: 9000, webhooks: 4000, client: 3000 };

// The recipe: the image, an admin token of our own (published ports are reachable from the network), the image's
// health check as the wait strategy, and each server's URL from its mapped port.
async function startMockpanel({ image = "mockpanel:latest", servers = ["auth", "s3"], loopbackOnly = false } = {}) {
  const adminToken = randomBytes(24).toString("base64url");
  const container = new GenericContainer(image)
    .withEnvironment({ MOCKPANEL_ADMIN_TOKEN: adminToken })
    .withCommand(["serve", "--only", servers.join(",")])
    .withExposedPorts(...servers.map((name) => PORTS[name]))
    .withWaitStrategy(Wait.forHealthCheck())
    .withStartupTimeout(120_000);
  if (loopbackOnly) {  // this suite's rule: test traffic stays on 127.0.0.1
    for (const binding of Object.values(container.hostConfig.PortBindings)) binding[0].HostIp = "127.0.0.1";
  }
  const started = await container.start();
  const url = (name) => `http://${loopbackOnly ? "127.0.0.1" : started.getHost()}:${started.getMappedPort(PORTS[name])}`;
  return { container: started, url, adminToken };
}

test("a Node suite starts mockpanel, logs in, stores an object and flips a fault", async () => {
  const mocks = await startMockpanel({ image: process.env.MOCKPANEL_IMAGE, loopbackOnly: true });
  try {
    const login = await fetch(`${mocks.url("auth")}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "alice@example.com", password: "password123" }),
    });
    assert.equal(login.status, 200);
    const { access_token: token, user } = await login.json();
    assert.equal(user.email, "alice@example.com");
    assert.equal(token.split(".").length, 3);

    const object = `${mocks.url("s3")}/node-bucket/hello.txt`;  // the seed's unsigned PUT and GET
    assert.equal((await fetch(object, { method: "PUT", body: "hello from node" })).status, 200);
    assert.equal(await (await fetch(object)).text(), "hello from node");

    const control = `${mocks.url("auth")}/__mockpanel/faults`;
    assert.equal((await fetch(control)).status, 401);  // without the token: refused
    const set = await fetch(control, {
      method: "PATCH",
      headers: { authorization: `Bearer ${mocks.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ fail_next: 1, fail_next_code: 503 }),
    });
    assert.equal(set.status, 200);
    assert.equal((await fetch(`${mocks.url("auth")}/health`)).status, 503);
    assert.equal((await fetch(`${mocks.url("auth")}/health`)).status, 200);
  } finally {
    await mocks.container.stop();
  }
});
