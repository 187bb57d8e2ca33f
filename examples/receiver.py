# receiver.py: a webhook receiver that verifies quaycast's Standard Webhooks signature
# with nothing but Python's standard library.
#
#   python3 examples/receiver.py [PORT] [--secret whsec_...] [--host 127.0.0.1]
#
# PORT defaults to $PORT, then 9000 (0: any free port); the secret — the whsec_... shown when the
# endpoint was created — to $WEBHOOK_SECRET, which keeps it out of the process list. It prints one
# line per delivery and answers 204 to a valid signature, 401 otherwise.
import argparse, base64, hashlib, hmac, http.server, os, sys, time

args = argparse.ArgumentParser(description="Verify and print quaycast deliveries.")
args.add_argument("port", nargs="?", type=int, default=int(os.environ.get("PORT", "9000")),
                  help="port to listen on (default: $PORT, then 9000; 0: any free port)")
args.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET"),
                  help="the endpoint's secret, whsec_... (default: $WEBHOOK_SECRET)")
args.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
opts = args.parse_args()
if not opts.secret:
    args.error("no secret: give --secret whsec_... or set WEBHOOK_SECRET")
KEY = base64.b64decode(opts.secret.removeprefix("whsec_"))

class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        msg_id, ts = self.headers["webhook-id"], self.headers["webhook-timestamp"]
        signed = f"{msg_id}.{ts}.".encode() + body
        expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
        sigs = [s.split(",", 1)[1] for s in self.headers["webhook-signature"].split() if s.startswith("v1,")]
        ok = any(hmac.compare_digest(expected, s) for s in sigs) and abs(time.time() - int(ts)) <= 300
        print(self.headers["Quaycast-Event-Type"], msg_id, "signature ok" if ok else "BAD SIGNATURE", body.decode(), flush=True)
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args):  # the line above says what arrived
        pass

server = http.server.HTTPServer((opts.host, opts.port), Hook)
print(f"receiver.py: listening on http://{opts.host}:{server.server_address[1]}/", file=sys.stderr, flush=True)
server.serve_forever()
