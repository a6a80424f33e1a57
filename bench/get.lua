-- bench/gateway.sh: an allowed cross-origin GET, proxied to the upstream.
wrk.method = "GET"
wrk.headers["Origin"] = "https://app.example.com"
