// express + cors (npm `cors`), as its README configures it.
// Usage: node express_cors.cjs correct|broken PORT [TRUSTED]
const express = require("express");
const cors = require("cors");

// TRUSTED (optional) replaces the correct config's origin, for pages on loopback.
const [mode, port, trusted = "https://app.example.com"] = process.argv.slice(2);
const configs = {
  // An allow-list of exact origins, with credentials, listed methods and headers.
  correct: {
    origin: [trusted],
    credentials: true,
    methods: ["GET", "POST", "PUT"],
    allowedHeaders: ["Content-Type", "Authorization"],
  },
  // `origin: true` reflects every Origin; with credentials every site reads the API.
  broken: { origin: true, credentials: true },
};
const app = express();
app.use(cors(configs[mode]));
app.all("/api", (req, res) => res.json({ ok: true }));
app.listen(Number(port), "127.0.0.1", () => console.log("ready"));
