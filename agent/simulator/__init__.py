"""A built-in simulator of both AI platforms (EasyAI and Haiyi) on one port, for tests and `edge-agent demo`.

    from agent.simulator import Simulator, SimConfig
    sim = Simulator(SimConfig(latency=0.2, quirks={"wrap_data"}))
    url = sim.start()            # "http://127.0.0.1:PORT"; serves in a background thread
    sim.configure(fail_rate=0.3) # any SimConfig field, at runtime
    sim.record(), sim.tasks()    # what was accepted; current task states
    sim.requests()               # every platform API request served (method, path), oldest first
    sim.stop(); sim.start()      # an outage that ends: same port, tasks/files/record kept

Layout:
  config.py   SimConfig, the quirk and failure-kind names
  server.py   Simulator: routing, failure injection, downloads, /_sim/* routes, run_forever
  transport.py  the stdlib HTTP server and keep-alive request handler (bodies in, replies out)
  easyai.py   EasyAI routes and reply shapes (module docstring lists them)
  haiyi.py    Haiyi routes and reply shapes, including the generate/result shape the docs leave open
  state.py    the task board (GPU slots planned from the clock), rendered outputs, the record, the request log
  files.py    stored files and their signed, expiring URLs; reading the image references clients send
  imaging.py  the "GPU": Pillow effects, text-to-image, small videos (VP9 MP4 via OpenCV, GIF without OpenCV)
  wire.py     request/reply types, multipart parsing, error pages

Control routes (no auth): GET /_sim/health, GET /_sim/record, GET /_sim/tasks, GET /_sim/requests,
GET /_sim/received (what each request brought, see inbox.py), POST /_sim/upload (an owner's upload target:
multipart `file` -> {"success", "url", "filename", "file_size"}),
GET|POST /_sim/config (POST a JSON object of SimConfig fields; lists for quirks/failure_kinds/api_keys;
host/port refused).

Deterministic hooks for tests: a prompt containing FAIL makes the task fail (after half the run time),
SLOW makes it take 30x `latency`.

Failure kinds (`fail_rate` > 0, drawn per API request before any work; `seed` makes the draw repeatable):
  500       HTTP 500 JSON in the platform's error shape
  502html   HTTP 502 nginx HTML page          504html  HTTP 504 nginx HTML page
  503       HTTP 503 JSON                      429      HTTP 429 JSON with Retry-After: <retry_after_s>
  drop      connection closed, no reply        empty    HTTP 502 with an empty body
  code      Haiyi: HTTP 200 {"code": 10001, "msg": "system busy"}; EasyAI: same as 500
`drop_after_accept_rate`: the task is created and recorded with reply_dropped=True, then the connection is
closed without a reply (the at-least-once window). Request bodies over `max_upload_bytes`: nginx HTML 413.

Downloads: /files/<token><ext>?expires=<unix s, with ms for a lifetime under 1 s>&sig=<hmac> (expired: 403 XML
AccessDenied, forged: 403 XML SignatureDoesNotMatch, unknown: 404 XML NoSuchKey); ComfyUI style
/view?filename=&subfolder=&type=output and /api/view?type=output&filename= (no signature, never expire).
"""

from agent.simulator.config import FAILURE_KINDS, QUIRKS, SimConfig
from agent.simulator.server import Simulator, run_forever

__all__ = ["FAILURE_KINDS", "QUIRKS", "SimConfig", "Simulator", "run_forever"]
