# receiver.py: a webhook receiver that verifies quaycast's Standard Webhooks signature
# with nothing but Python's standard library.
#   WEBHOOK_SECRET=whsec_... python3 examples/receiver.py [PORT]     (or PORT=9000 in the environment)
import base64, hashlib, hmac, http.server, os, sys, time

SECRET = os.environ["WEBHOOK_SECRET"]  # the whsec_... shown when the endpoint was created
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))

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

PORT = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "9000"))
http.server.HTTPServer(("127.0.0.1", PORT), Hook).serve_forever()
