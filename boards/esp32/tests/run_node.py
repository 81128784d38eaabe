# Run under `node host/vboard.mjs exec`: the node tests under MicroPython.
import json
import sys

sys.path.insert(0, "/fw")
sys.path.insert(0, "/tests")
import node_test  # noqa: E402

p, bad = node_test.run()
print(json.dumps({"passed": p, "failed": len(bad), "failures": bad[:20], "platform": sys.platform}))
import vhost  # noqa: E402
vhost.exit(1 if bad else 0)
