// hono's built-in cors middleware on @hono/node-server.
// Usage: node hono_cors.cjs correct|broken PORT [TRUSTED]
const { Hono } = require("hono");
const { cors } = require("hono/cors");
const { serve } = require("@hono/node-server");

// TRUSTED (optional) replaces the correct config's origin, for pages on loopback.
const [mode, port, trusted = "https://app.example.com"] = process.argv.slice(2);
const configs = {
  correct: {
    origin: [trusted],
    credentials: true,
    allowMethods: ["GET", "POST", "PUT"],
    allowHeaders: ["Content-Type", "Authorization"],
  },
  // A hand-written origin check that only compares the end of the string
  // (`https://evilexample.com` passes), and hono's default allowHeaders,
  // which echoes whatever Access-Control-Request-Headers asks for.
  broken: {
    origin: (origin) => (origin.endsWith("example.com") ? origin : null),
    credentials: true,
  },
};
const app = new Hono();
app.use("/api", cors(configs[mode]));
app.all("/api", (c) => c.json({ ok: true }));
serve({ fetch: app.fetch, port: Number(port), hostname: "127.0.0.1" }, () => console.log("ready"));
